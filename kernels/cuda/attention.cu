// Paged attention: flash-attention prefill on tensor cores (WMMA) and split-K
// flash decoding, both reading the paged KV layout of engine/kv_cache.h.
#include <mma.h>

#include <cmath>

#include "kernels/cuda/common.cuh"

namespace mnemos::kernels::cuda {

using namespace detail;

namespace {

// ===========================================================================
// Decode
// ===========================================================================

constexpr int dec_warps = 4;
constexpr int dec_tile = 32;  // tokens per warp step: one token per lane for the scores

struct decode_args {
    attention_shape shape;
    paged_kv_view kv;
    int32_t layer;
    paged_batch batch;
    const float* q;
    float* out;
    int32_t chunk;     // tokens per block
    int32_t n_chunks;  // chunks of max_kv_len (grid.x); 1 = no workspace, write out directly
    float* part_o;     // [n_seq, n_head, n_chunks, head_dim]
    float* part_lse;   // [n_seq, n_head, n_chunks]
};

// grid (n_chunks, n_head_kv, n_seq), 4 warps. Each warp takes 32-token tiles
// of the chunk in turn: K rows go through shared memory (lane = token for the
// scores), V rows are read coalesced (lane = head dims) for the weighted sum.
// The g <= MAXG query heads of the GQA group are handled together.
template <int HD, int MAXG>
__global__ void __launch_bounds__(dec_warps* warp_size) decode_kernel(decode_args a) {
    constexpr int dpl = HD / warp_size;  // head dims per lane in the V sum
    constexpr int kld = HD + 2;          // K row stride in shared memory (halves): skews the banks
    static_assert(sizeof(__half) * dec_warps * dec_tile * kld >= sizeof(float) * MAXG * HD);
    __shared__ float qs[MAXG][HD];
    // K tiles during the loop, then the block's merged output os [MAXG][HD].
    __shared__ __align__(16) __half ks[dec_warps][dec_tile * kld];
    __shared__ float wm[dec_warps][MAXG], wl[dec_warps][MAXG];
    float(*os)[HD] = reinterpret_cast<float(*)[HD]>(&ks[0][0]);

    const int lane = threadIdx.x % warp_size, warp = threadIdx.x / warp_size;
    const int b = blockIdx.z, kh = blockIdx.y, chunk = blockIdx.x;
    const int g = a.shape.n_head / a.shape.n_head_kv;
    const int32_t kv_len = a.batch.kv_len[b];
    const int64_t t0 = static_cast<int64_t>(chunk) * a.chunk;
    const int64_t t1 = t0 + a.chunk < kv_len ? t0 + a.chunk : kv_len;
    const int h0 = kh * g;

    if (t0 >= kv_len) {
        // Nothing to attend to: an empty sequence gets zeros (from chunk 0 when there is no merge).
        if (kv_len <= 0 && chunk == 0 && a.n_chunks == 1)
            for (int i = threadIdx.x; i < g * HD; i += blockDim.x)
                a.out[(static_cast<int64_t>(b) * a.shape.n_head + h0) * HD + i] = 0.0f;
        return;
    }
    const int32_t* pages = a.batch.page_indices + a.batch.page_indptr[b];

    for (int i = threadIdx.x; i < MAXG * HD; i += blockDim.x) {
        const int j = i / HD, d = i % HD;
        qs[j][d] = j < g ? round_f16(a.q[(static_cast<int64_t>(b) * a.shape.n_head + h0 + j) * HD + d]) : 0.0f;
    }
    __syncthreads();

    float m[MAXG], l[MAXG], acc[MAXG][dpl];
#pragma unroll
    for (int j = 0; j < MAXG; ++j) {
        m[j] = -INFINITY;
        l[j] = 0.0f;
#pragma unroll
        for (int i = 0; i < dpl; ++i) acc[j][i] = 0.0f;
    }
    __half* kw = ks[warp];
    const int64_t head_off = static_cast<int64_t>(kh) * HD;

    for (int64_t tile = t0 + static_cast<int64_t>(warp) * dec_tile; tile < t1; tile += dec_warps * dec_tile) {
        const int n_valid = static_cast<int>(t1 - tile < dec_tile ? t1 - tile : dec_tile);
        // K tile -> shared (16-byte global loads, 4-byte shared stores).
        constexpr int vec_per_row = HD / 8;
        for (int idx = lane; idx < dec_tile * vec_per_row; idx += warp_size) {
            const int r = idx / vec_per_row, c = (idx % vec_per_row) * 8;
            if (r >= n_valid) break;  // idx grows with r
            const uint4 v = *reinterpret_cast<const uint4*>(a.kv.base + k_row_offset(a.kv, pages, a.layer, tile + r) +
                                                            head_off + c);
            uint32_t* dst = reinterpret_cast<uint32_t*>(kw + r * kld + c);
            dst[0] = v.x, dst[1] = v.y, dst[2] = v.z, dst[3] = v.w;
        }
        __syncwarp();
        float s[MAXG];
#pragma unroll
        for (int j = 0; j < MAXG; ++j) s[j] = 0.0f;
        if (lane < n_valid) {
            const __half2* kr = reinterpret_cast<const __half2*>(kw + lane * kld);
#pragma unroll 4
            for (int d2 = 0; d2 < HD / 2; ++d2) {
                const float2 kf = __half22float2(kr[d2]);
#pragma unroll
                for (int j = 0; j < MAXG; ++j) s[j] += qs[j][2 * d2] * kf.x + qs[j][2 * d2 + 1] * kf.y;
            }
        }
        float p[MAXG];
#pragma unroll
        for (int j = 0; j < MAXG; ++j) {
            const float sj = lane < n_valid ? s[j] * a.shape.scale : -INFINITY;
            const float m_new = fmaxf(m[j], warp_max(sj));  // finite: n_valid >= 1
            const float alpha = __expf(m[j] - m_new);
            p[j] = lane < n_valid ? round_f16(__expf(sj - m_new)) : 0.0f;
            l[j] = l[j] * alpha + warp_sum(p[j]);
            m[j] = m_new;
#pragma unroll
            for (int i = 0; i < dpl; ++i) acc[j][i] *= alpha;
        }
        for (int r = 0; r < n_valid; ++r) {
            const __half* vr = reinterpret_cast<const __half*>(
                a.kv.base + k_row_offset(a.kv, pages, a.layer, tile + r) + a.kv.v_offset + head_off + lane * dpl);
            float vf[dpl];
            if constexpr (dpl == 4) {
                const uint2 bits = *reinterpret_cast<const uint2*>(vr);
                const float2 v0 = __half22float2(*reinterpret_cast<const __half2*>(&bits.x));
                const float2 v1 = __half22float2(*reinterpret_cast<const __half2*>(&bits.y));
                vf[0] = v0.x, vf[1] = v0.y, vf[2] = v1.x, vf[3] = v1.y;
            } else if constexpr (dpl == 2) {
                const float2 v0 = __half22float2(*reinterpret_cast<const __half2*>(vr));
                vf[0] = v0.x, vf[1] = v0.y;
            } else {
#pragma unroll
                for (int i = 0; i < dpl; ++i) vf[i] = __half2float(vr[i]);
            }
#pragma unroll
            for (int j = 0; j < MAXG; ++j) {
                const float pj = __shfl_sync(0xffffffffu, p[j], r);
#pragma unroll
                for (int i = 0; i < dpl; ++i) acc[j][i] += pj * vf[i];
            }
        }
        __syncwarp();
    }

    // Merge the warps: M = max of the warps' maxima, each warp's sums scaled by exp(m_w - M).
    if (lane == 0)
#pragma unroll
        for (int j = 0; j < MAXG; ++j) wm[warp][j] = m[j], wl[warp][j] = l[j];
    __syncthreads();  // every warp is done with ks: os may take its place
    for (int i = threadIdx.x; i < MAXG * HD; i += blockDim.x) os[i / HD][i % HD] = 0.0f;
    __syncthreads();
    float big_m[MAXG], big_l[MAXG];
#pragma unroll
    for (int j = 0; j < MAXG; ++j) {
        big_m[j] = -INFINITY;
        for (int w = 0; w < dec_warps; ++w) big_m[j] = fmaxf(big_m[j], wm[w][j]);
        big_l[j] = 0.0f;
        for (int w = 0; w < dec_warps; ++w)
            big_l[j] += wm[w][j] == -INFINITY ? 0.0f : wl[w][j] * __expf(wm[w][j] - big_m[j]);
        if (m[j] != -INFINITY) {
            const float f = __expf(m[j] - big_m[j]);
#pragma unroll
            for (int i = 0; i < dpl; ++i) atomicAdd(&os[j][lane * dpl + i], acc[j][i] * f);
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < g * HD; i += blockDim.x) {
        const int j = i / HD, d = i % HD;
        float lj = 0.0f, mj = 0.0f;
#pragma unroll
        for (int jj = 0; jj < MAXG; ++jj)
            if (jj == j) lj = big_l[jj], mj = big_m[jj];
        const float o = os[j][d] / lj;
        const int64_t bh = static_cast<int64_t>(b) * a.shape.n_head + h0 + j;
        if (a.n_chunks == 1) {
            a.out[bh * HD + d] = o;
        } else {
            a.part_o[(bh * a.n_chunks + chunk) * HD + d] = o;
            if (d == 0) a.part_lse[bh * a.n_chunks + chunk] = mj + logf(lj);
        }
    }
}

// grid (n_head, n_seq), head_dim threads: out = sum_c w_c o_c / sum_c w_c, w_c = exp(lse_c - max lse).
__global__ void decode_merge_kernel(decode_args a) {
    const int h = blockIdx.x, b = blockIdx.y, d = threadIdx.x;
    const int hd = a.shape.head_dim;
    const int32_t kv_len = a.batch.kv_len[b];
    const int n_c = kv_len <= 0 ? 0 : static_cast<int>((static_cast<int64_t>(kv_len) + a.chunk - 1) / a.chunk);
    const int64_t bh = static_cast<int64_t>(b) * a.shape.n_head + h;
    const float* lse = a.part_lse + bh * a.n_chunks;
    float mx = -INFINITY;
    for (int c = 0; c < n_c; ++c) mx = fmaxf(mx, lse[c]);
    float num = 0.0f, den = 0.0f;
    for (int c = 0; c < n_c; ++c) {
        const float w = __expf(lse[c] - mx);
        num += w * a.part_o[(bh * a.n_chunks + c) * hd + d];
        den += w;
    }
    a.out[bh * hd + d] = n_c == 0 ? 0.0f : num / den;
}

template <int HD>
cudaError_t launch_decode(const decode_args& a, int g, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>(a.n_chunks), static_cast<unsigned>(a.shape.n_head_kv),
                    static_cast<unsigned>(a.batch.n_seq));
    const int threads = dec_warps * warp_size;
    if (g <= 1)
        decode_kernel<HD, 1><<<grid, threads, 0, stream>>>(a);
    else if (g <= 2)
        decode_kernel<HD, 2><<<grid, threads, 0, stream>>>(a);
    else if (g <= 4)
        decode_kernel<HD, 4><<<grid, threads, 0, stream>>>(a);
    else if (g <= 8)
        decode_kernel<HD, 8><<<grid, threads, 0, stream>>>(a);
    else
        decode_kernel<HD, 16><<<grid, threads, 0, stream>>>(a);
    MNEMOS_CUDA_CHECK_LAUNCH();
    if (a.n_chunks > 1) {
        decode_merge_kernel<<<dim3(static_cast<unsigned>(a.shape.n_head), static_cast<unsigned>(a.batch.n_seq)), HD, 0,
                              stream>>>(a);
        MNEMOS_CUDA_CHECK_LAUNCH();
    }
    return cudaSuccess;
}

// ===========================================================================
// Prefill
// ===========================================================================

constexpr int pf_bm = 64;  // query rows (token, head of the group) per block
constexpr int pf_bn = 32;  // keys per step
constexpr int pf_warps = 4;

struct prefill_args {
    attention_shape shape;
    paged_kv_view kv;
    int32_t layer;
    paged_batch batch;
    const int32_t* q_indptr;
    const float* q;
    float* out;
};

template <int HD>
struct prefill_smem {
    static constexpr int qld = HD + 8, kld = HD + 8, sld = pf_bn + 4, pld = pf_bn + 8, old = HD + 4;
    static constexpr size_t q_off = 0;
    static constexpr size_t k_off = q_off + sizeof(__half) * pf_bm * qld;
    static constexpr size_t v_off = k_off + sizeof(__half) * pf_bn * kld;
    static constexpr size_t s_off = v_off + sizeof(__half) * pf_bn * kld;
    static constexpr size_t p_off = s_off + sizeof(float) * pf_bm * sld;
    static constexpr size_t o_off = p_off + sizeof(__half) * pf_bm * pld;
    static constexpr size_t bytes = o_off + sizeof(float) * pf_bm * old;
    static_assert(k_off % 32 == 0 && v_off % 32 == 0 && s_off % 32 == 0 && p_off % 32 == 0 && o_off % 32 == 0);
};

// grid (ceil(max_q_len * g / 64), n_head_kv, n_seq), 4 warps; warp w owns
// query rows 16w .. 16w+15 of the block: S = Q K^T and O += P V on WMMA
// f16 fragments, the online softmax in f32 with one lane per key.
template <int HD>
__global__ void __launch_bounds__(pf_warps* warp_size) prefill_kernel(prefill_args a) {
    using namespace nvcuda;
    using L = prefill_smem<HD>;
    extern __shared__ __align__(128) unsigned char smem[];
    __half* qs = reinterpret_cast<__half*>(smem + L::q_off);
    __half* ks = reinterpret_cast<__half*>(smem + L::k_off);
    __half* vs = reinterpret_cast<__half*>(smem + L::v_off);
    float* ss = reinterpret_cast<float*>(smem + L::s_off);
    __half* ps = reinterpret_cast<__half*>(smem + L::p_off);
    float* os = reinterpret_cast<float*>(smem + L::o_off);

    const int tid = threadIdx.x, lane = tid % warp_size, warp = tid / warp_size;
    const int b = blockIdx.z, kh = blockIdx.y;
    const int g = a.shape.n_head / a.shape.n_head_kv;
    const int32_t q_begin = a.q_indptr[b];
    const int32_t n_q = a.q_indptr[b + 1] - q_begin;
    const int64_t rows_total = static_cast<int64_t>(n_q) * g;
    const int64_t row0 = static_cast<int64_t>(blockIdx.x) * pf_bm;
    if (row0 >= rows_total) return;
    const int32_t kv_len = a.batch.kv_len[b];
    const int64_t first_pos = static_cast<int64_t>(kv_len) - n_q;  // position of query row 0
    const int32_t* pages = a.batch.page_indices + a.batch.page_indptr[b];
    const int64_t head_off = static_cast<int64_t>(kh) * HD;

    // Q tile (rounded to f16) and O = 0.
    for (int idx = tid; idx < pf_bm * (HD / 4); idx += blockDim.x) {
        const int rr = idx / (HD / 4), c = (idx % (HD / 4)) * 4;
        const int64_t row = row0 + rr;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (row < rows_total) {
            const int64_t tok = q_begin + row / g;
            const int64_t h = static_cast<int64_t>(kh) * g + row % g;
            v = *reinterpret_cast<const float4*>(a.q + (tok * a.shape.n_head + h) * HD + c);
        }
        __half2* dst = reinterpret_cast<__half2*>(qs + rr * L::qld + c);
        dst[0] = __floats2half2_rn(v.x, v.y);
        dst[1] = __floats2half2_rn(v.z, v.w);
    }
    for (int idx = tid; idx < pf_bm * L::old; idx += blockDim.x) os[idx] = 0.0f;
    const int64_t last_row = row0 + pf_bm - 1 < rows_total - 1 ? row0 + pf_bm - 1 : rows_total - 1;
    const int64_t kv_end_pos = first_pos + last_row / g + 1;
    const int64_t kv_end = kv_end_pos < kv_len ? kv_end_pos : kv_len;
    __syncthreads();

    float m[16], l[16];
#pragma unroll
    for (int r = 0; r < 16; ++r) m[r] = -INFINITY, l[r] = 0.0f;

    for (int64_t kv0 = 0; kv0 < kv_end; kv0 += pf_bn) {
        // K and V tiles; keys past kv_end are zero (never NaN garbage: P is 0 there, but 0 * NaN is NaN).
        for (int idx = tid; idx < pf_bn * (HD / 8); idx += blockDim.x) {
            const int r = idx / (HD / 8), c = (idx % (HD / 8)) * 8;
            uint4 kb = make_uint4(0, 0, 0, 0), vb = make_uint4(0, 0, 0, 0);
            if (kv0 + r < kv_end) {
                const uint16_t* kr = a.kv.base + k_row_offset(a.kv, pages, a.layer, kv0 + r) + head_off + c;
                kb = *reinterpret_cast<const uint4*>(kr);
                vb = *reinterpret_cast<const uint4*>(kr + a.kv.v_offset);
            }
            *reinterpret_cast<uint4*>(ks + r * L::kld + c) = kb;
            *reinterpret_cast<uint4*>(vs + r * L::kld + c) = vb;
        }
        __syncthreads();

        // S [16 rows of this warp, 32 keys] = Q K^T.
        {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> sacc[2];
            wmma::fill_fragment(sacc[0], 0.0f);
            wmma::fill_fragment(sacc[1], 0.0f);
#pragma unroll
            for (int kk = 0; kk < HD; kk += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
                wmma::load_matrix_sync(fa, qs + (16 * warp) * L::qld + kk, L::qld);
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
                    wmma::load_matrix_sync(fb, ks + (16 * j) * L::kld + kk, L::kld);
                    wmma::mma_sync(sacc[j], fa, fb, sacc[j]);
                }
            }
#pragma unroll
            for (int j = 0; j < 2; ++j)
                wmma::store_matrix_sync(ss + (16 * warp) * L::sld + 16 * j, sacc[j], L::sld, wmma::mem_row_major);
        }
        __syncwarp();

        // Online softmax, one row at a time, lane = key.
#pragma unroll
        for (int r = 0; r < 16; ++r) {
            const int rr = 16 * warp + r;
            const int64_t row = row0 + rr;
            const int64_t pos = first_pos + row / g;
            const int64_t t = kv0 + lane;
            const bool valid = row < rows_total && t < kv_end && t <= pos;
            const float s = valid ? ss[rr * L::sld + lane] * a.shape.scale : -INFINITY;
            const float m_new = fmaxf(m[r], warp_max(s));
            float alpha = 1.0f;
            __half ph = __float2half_rn(0.0f);
            if (m_new != -INFINITY) {
                alpha = __expf(m[r] - m_new);
                if (valid) ph = __float2half_rn(__expf(s - m_new));
            }
            ps[rr * L::pld + lane] = ph;
            l[r] = l[r] * alpha + warp_sum(__half2float(ph));
            m[r] = m_new;
            if (alpha != 1.0f)
                for (int d = lane; d < HD; d += warp_size) os[rr * L::old + d] *= alpha;
        }
        __syncwarp();

        // O [16 rows, HD] += P [16, 32] V [32, HD].
#pragma unroll
        for (int f = 0; f < HD / 16; ++f) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> oacc;
            float* optr = os + (16 * warp) * L::old + 16 * f;
            wmma::load_matrix_sync(oacc, optr, L::old, wmma::mem_row_major);
#pragma unroll
            for (int kk = 0; kk < pf_bn; kk += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
                wmma::load_matrix_sync(fa, ps + (16 * warp) * L::pld + kk, L::pld);
                wmma::load_matrix_sync(fb, vs + kk * L::kld + 16 * f, L::kld);
                wmma::mma_sync(oacc, fa, fb, oacc);
            }
            wmma::store_matrix_sync(optr, oacc, L::old, wmma::mem_row_major);
        }
        __syncthreads();  // ks / vs are rewritten next step
    }

    // out = O / l for the valid rows of this warp.
#pragma unroll
    for (int r = 0; r < 16; ++r) {
        const int rr = 16 * warp + r;
        const int64_t row = row0 + rr;
        if (row >= rows_total) continue;
        const int64_t tok = q_begin + row / g;
        const int64_t h = static_cast<int64_t>(kh) * g + row % g;
        const float inv = 1.0f / l[r];
        for (int d = lane; d < HD; d += warp_size)
            a.out[(tok * a.shape.n_head + h) * HD + d] = os[rr * L::old + d] * inv;
    }
}

template <int HD>
cudaError_t launch_prefill(const prefill_args& a, int32_t max_q_len, cudaStream_t stream) {
    using L = prefill_smem<HD>;
    // Over the 48 KiB default (83 KiB for head_dim 128): opt in, on the current device, every time.
    MNEMOS_CUDA_TRY(cudaFuncSetAttribute(prefill_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(L::bytes)));
    const int g = a.shape.n_head / a.shape.n_head_kv;
    const dim3 grid(static_cast<unsigned>(ceil_div(static_cast<int64_t>(max_q_len) * g, pf_bm)),
                    static_cast<unsigned>(a.shape.n_head_kv), static_cast<unsigned>(a.batch.n_seq));
    prefill_kernel<HD><<<grid, pf_warps * warp_size, L::bytes, stream>>>(a);
    MNEMOS_CUDA_CHECK_LAUNCH();
    return cudaSuccess;
}

bool valid_shape(const attention_shape& s, const paged_kv_view& kv) {
    return (s.head_dim == 64 || s.head_dim == 128) && s.n_head_kv > 0 && s.n_head > 0 && s.n_head % s.n_head_kv == 0 &&
           kv.kv_dim == s.n_head_kv * s.head_dim && kv.page_size > 0 && kv.base != nullptr && kv.page_stride % 8 == 0 &&
           kv.layer_stride % 8 == 0 && kv.v_offset % 8 == 0;
}

int sm_count() {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        return 132;
    }
    return n;
}

}  // namespace

int32_t decode_chunk_tokens(const decode_params& p) {
    if (p.chunk_tokens > 0) return p.chunk_tokens;
    // Enough blocks to fill the device a few times over; chunks of at least 256 keys (multiples of 128).
    const int64_t base_blocks = static_cast<int64_t>(p.batch.n_seq) * (p.shape.n_head_kv > 0 ? p.shape.n_head_kv : 1);
    const int64_t target = 8LL * sm_count();
    const int64_t n_split = base_blocks >= target ? 1 : ceil_div(target, base_blocks);
    int64_t chunk = ceil_div(p.batch.max_kv_len > 0 ? p.batch.max_kv_len : 1, n_split);
    chunk = ceil_div(chunk, 128) * 128;
    if (chunk < 256) chunk = 256;
    return static_cast<int32_t>(chunk);
}

size_t decode_workspace_bytes(const decode_params& p) {
    const int64_t chunk = decode_chunk_tokens(p);
    const int64_t n_chunks = ceil_div(p.batch.max_kv_len > 0 ? p.batch.max_kv_len : 1, chunk);
    if (n_chunks <= 1) return 0;
    return static_cast<size_t>(p.batch.n_seq) * p.shape.n_head * n_chunks * (p.shape.head_dim + 1) * sizeof(float);
}

cudaError_t attention_decode(const decode_params& p, cudaStream_t stream) {
    if (p.batch.n_seq == 0) return cudaSuccess;
    if (!valid_shape(p.shape, p.kv) || p.shape.n_head / p.shape.n_head_kv > 16 || p.batch.n_seq > 65535 ||
        p.shape.n_head_kv > 65535 || p.batch.max_kv_len < 0)
        return cudaErrorInvalidValue;
    decode_args a{};
    a.shape = p.shape;
    a.kv = p.kv;
    a.layer = p.layer;
    a.batch = p.batch;
    a.q = p.q;
    a.out = p.out;
    a.chunk = decode_chunk_tokens(p);
    if (a.chunk % dec_tile != 0) return cudaErrorInvalidValue;
    const int64_t n_chunks = ceil_div(p.batch.max_kv_len > 0 ? p.batch.max_kv_len : 1, a.chunk);
    if (n_chunks > 0x7fffffff) return cudaErrorInvalidValue;
    a.n_chunks = static_cast<int32_t>(n_chunks);
    if (a.n_chunks > 1) {
        const size_t need = decode_workspace_bytes(p);
        if (p.workspace == nullptr || p.workspace_bytes < need) return cudaErrorInvalidValue;
        a.part_o = static_cast<float*>(p.workspace);
        a.part_lse = a.part_o + static_cast<int64_t>(p.batch.n_seq) * p.shape.n_head * a.n_chunks * p.shape.head_dim;
    }
    const int g = p.shape.n_head / p.shape.n_head_kv;
    return p.shape.head_dim == 64 ? launch_decode<64>(a, g, stream) : launch_decode<128>(a, g, stream);
}

cudaError_t attention_prefill(const prefill_params& p, cudaStream_t stream) {
    if (p.batch.n_seq == 0 || p.max_q_len == 0) return cudaSuccess;
    if (!valid_shape(p.shape, p.kv) || p.batch.n_seq > 65535 || p.shape.n_head_kv > 65535 || p.max_q_len < 0)
        return cudaErrorInvalidValue;
    const prefill_args a{p.shape, p.kv, p.layer, p.batch, p.q_indptr, p.q, p.out};
    return p.shape.head_dim == 64 ? launch_prefill<64>(a, p.max_q_len, stream)
                                  : launch_prefill<128>(a, p.max_q_len, stream);
}

}  // namespace mnemos::kernels::cuda

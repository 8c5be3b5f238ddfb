// y = x * W^T with weights of any supported type: a GEMV for decode (weights
// read once per 8 tokens), a tiled float GEMM and a WMMA tensor-core GEMM for
// f16/bf16 weights (prefill).
#include <mma.h>

#include "kernels/cuda/common.cuh"

namespace mnemos::kernels::cuda {

using namespace detail;

namespace {

struct matmul_args {
    const uint8_t* w;
    size_t row_bytes;
    int64_t n_rows;
    int64_t n_cols;
    const float* x;  // [n_tok, n_cols]
    int64_t n_tok;
    float* y;  // [n_tok, ldy]
    int64_t ldy;
};

// ---------------------------------------------------------------------------
// GEMV: one warp per weight row, NT <= 8 tokens; each lane takes 8 elements
// per step (so a q4_k / q6_k block of 256 is one warp step).
// ---------------------------------------------------------------------------

constexpr int gemv_warps = 8;

template <ggml_type T, int NT>
__global__ void __launch_bounds__(gemv_warps* warp_size) gemv_kernel(matmul_args a) {
    const int lane = threadIdx.x % warp_size;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * gemv_warps + threadIdx.x / warp_size;
    if (row >= a.n_rows) return;
    const uint8_t* wr = a.w + static_cast<size_t>(row) * a.row_bytes;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[t] = 0.0f;
    for (int64_t e = static_cast<int64_t>(lane) * 8; e < a.n_cols; e += warp_size * 8) {
        float wv[8];
        dequant8<T>(wr, e, wv);
#pragma unroll
        for (int t = 0; t < NT; ++t) {
            const float4* xp = reinterpret_cast<const float4*>(a.x + t * a.n_cols + e);
            const float4 x0 = __ldg(xp), x1 = __ldg(xp + 1);
            acc[t] += wv[0] * x0.x + wv[1] * x0.y + wv[2] * x0.z + wv[3] * x0.w + wv[4] * x1.x + wv[5] * x1.y +
                      wv[6] * x1.z + wv[7] * x1.w;
        }
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
        const float s = warp_sum(acc[t]);
        if (lane == 0) a.y[t * a.ldy + row] = s;
    }
}

template <ggml_type T>
cudaError_t launch_gemv(matmul_args a, cudaStream_t stream) {
    const unsigned grid = static_cast<unsigned>(ceil_div(a.n_rows, gemv_warps));
    for (int64_t t0 = 0; t0 < a.n_tok; t0 += 8) {
        matmul_args c = a;
        c.x = a.x + t0 * a.n_cols;
        c.y = a.y + t0 * a.ldy;
        c.n_tok = a.n_tok - t0 < 8 ? a.n_tok - t0 : 8;
        switch (c.n_tok) {
#define MNEMOS_GEMV_CASE(N)                                                \
    case N:                                                                \
        gemv_kernel<T, N><<<grid, gemv_warps * warp_size, 0, stream>>>(c); \
        break;
            MNEMOS_GEMV_CASE(1)
            MNEMOS_GEMV_CASE(2)
            MNEMOS_GEMV_CASE(3)
            MNEMOS_GEMV_CASE(4)
            MNEMOS_GEMV_CASE(5)
            MNEMOS_GEMV_CASE(6)
            MNEMOS_GEMV_CASE(7)
            MNEMOS_GEMV_CASE(8)
#undef MNEMOS_GEMV_CASE
        }
        MNEMOS_CUDA_CHECK_LAUNCH();
    }
    return cudaSuccess;
}

// ---------------------------------------------------------------------------
// Tiled float GEMM: block tile 64 weight rows x 64 tokens x 32 k, 256
// threads, 4x4 outputs per thread. Weights are dequantized (8 elements per
// thread per k step) into shared memory as float.
// ---------------------------------------------------------------------------

constexpr int tb_m = 64, tb_n = 64, tb_k = 32;

template <ggml_type T>
__global__ void __launch_bounds__(256) tiled_kernel(matmul_args a) {
    __shared__ float ws[tb_k][tb_m + 4];  // [k][row]
    __shared__ float xs[tb_k][tb_n + 4];  // [k][token]
    const int tid = threadIdx.x;
    const int tn = tid % 16, tm = tid / 16;
    const int64_t row0 = static_cast<int64_t>(blockIdx.x) * tb_m;
    const int64_t tok0 = static_cast<int64_t>(blockIdx.y) * tb_n;
    // Loader coordinates: 64 rows x 4 groups of 8 = 256 groups.
    const int lr = tid / 4, lg = (tid % 4) * 8;
    float acc[4][4] = {};
    for (int64_t k0 = 0; k0 < a.n_cols; k0 += tb_k) {
        {
            float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            const int64_t r = row0 + lr, e = k0 + lg;
            if (r < a.n_rows && e < a.n_cols) dequant8<T>(a.w + static_cast<size_t>(r) * a.row_bytes, e, v);
#pragma unroll
            for (int i = 0; i < 8; ++i) ws[lg + i][lr] = v[i];
        }
        {
            float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            const int64_t t = tok0 + lr, e = k0 + lg;
            if (t < a.n_tok && e < a.n_cols) {
                const float4* xp = reinterpret_cast<const float4*>(a.x + t * a.n_cols + e);
                const float4 x0 = xp[0], x1 = xp[1];
                v[0] = x0.x, v[1] = x0.y, v[2] = x0.z, v[3] = x0.w, v[4] = x1.x, v[5] = x1.y, v[6] = x1.z, v[7] = x1.w;
            }
#pragma unroll
            for (int i = 0; i < 8; ++i) xs[lg + i][lr] = v[i];
        }
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < tb_k; ++k) {
            const float4 wv = *reinterpret_cast<const float4*>(&ws[k][tm * 4]);
            const float4 xv = *reinterpret_cast<const float4*>(&xs[k][tn * 4]);
            const float wr[4] = {wv.x, wv.y, wv.z, wv.w}, xr[4] = {xv.x, xv.y, xv.z, xv.w};
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] += wr[i] * xr[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int64_t r = row0 + tm * 4 + i, t = tok0 + tn * 4 + j;
            if (r < a.n_rows && t < a.n_tok) a.y[t * a.ldy + r] = acc[i][j];
        }
}

// ---------------------------------------------------------------------------
// Tensor-core GEMM (f16 / bf16 weights): block tile 64 rows x 64 tokens x 32
// k, 4 warps of 32x32 (2x2 WMMA 16x16x16 fragments), f32 accumulation; x is
// rounded to the weight's type while it is staged in shared memory.
// ---------------------------------------------------------------------------

template <ggml_type T>
struct tc_elem;
template <>
struct tc_elem<ggml_type::f16> {
    using type = __half;
    static __device__ __forceinline__ type from(float f) { return __float2half_rn(f); }
};
template <>
struct tc_elem<ggml_type::bf16> {
    using type = __nv_bfloat16;
    static __device__ __forceinline__ type from(float f) { return __float2bfloat16_rn(f); }
};

constexpr int tc_ld = tb_k + 8;  // halves per staged row (16-byte multiple, skews banks)

template <ggml_type T>
__global__ void __launch_bounds__(128) tensor_core_kernel(matmul_args a) {
    using namespace nvcuda;
    using E = typename tc_elem<T>::type;
    __shared__ __align__(32) E ws[tb_m * tc_ld];           // [row][k]
    __shared__ __align__(32) E xs[tb_n * tc_ld];           // [token][k]
    __shared__ __align__(32) float cs[tb_n * (tb_m + 4)];  // [token][row]
    const int tid = threadIdx.x, warp = tid / warp_size;
    const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
    const int64_t row0 = static_cast<int64_t>(blockIdx.x) * tb_m;
    const int64_t tok0 = static_cast<int64_t>(blockIdx.y) * tb_n;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    for (int64_t k0 = 0; k0 < a.n_cols; k0 += tb_k) {
        // 64 rows x 4 groups of 8 for each of W and x: 2 groups per thread.
#pragma unroll
        for (int it = 0; it < 2; ++it) {
            const int g = tid + it * 128;
            const int lr = g / 4, lk = (g % 4) * 8;
            const int64_t e = k0 + lk;
            uint4 wbits = make_uint4(0, 0, 0, 0);
            const int64_t r = row0 + lr;
            if (r < a.n_rows && e < a.n_cols)
                wbits = *reinterpret_cast<const uint4*>(a.w + static_cast<size_t>(r) * a.row_bytes + e * 2);
            *reinterpret_cast<uint4*>(&ws[lr * tc_ld + lk]) = wbits;
            const int64_t t = tok0 + lr;
            float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (t < a.n_tok && e < a.n_cols) {
                const float4* xp = reinterpret_cast<const float4*>(a.x + t * a.n_cols + e);
                const float4 x0 = xp[0], x1 = xp[1];
                v[0] = x0.x, v[1] = x0.y, v[2] = x0.z, v[3] = x0.w, v[4] = x1.x, v[5] = x1.y, v[6] = x1.z, v[7] = x1.w;
            }
#pragma unroll
            for (int i = 0; i < 8; ++i) xs[lr * tc_ld + lk + i] = tc_elem<T>::from(v[i]);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < tb_k; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, E, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, E, wmma::col_major> fb[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], &ws[(wm + 16 * i) * tc_ld + kk], tc_ld);
#pragma unroll
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], &xs[(wn + 16 * j) * tc_ld + kk], tc_ld);
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
    }
    // C[row][token] stored column-major = [token][row] in shared memory, then written with bounds checks.
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&cs[(wn + 16 * j) * (tb_m + 4) + wm + 16 * i], acc[i][j], tb_m + 4,
                                    wmma::mem_col_major);
    __syncthreads();
    for (int idx = tid; idx < tb_m * tb_n; idx += 128) {
        const int tt = idx / tb_m, rr = idx % tb_m;
        const int64_t r = row0 + rr, t = tok0 + tt;
        if (r < a.n_rows && t < a.n_tok) a.y[t * a.ldy + r] = cs[tt * (tb_m + 4) + rr];
    }
}

}  // namespace

cudaError_t matmul(const weight_view& w, const float* x, int64_t n_tok, float* y, int64_t ldy, cudaStream_t stream,
                   matmul_algo algo) {
    if (n_tok == 0 || w.n_rows == 0) return cudaSuccess;
    if (!supported(w.type) || w.n_cols <= 0 || w.n_cols % 8 != 0 || w.n_cols % traits_of(w.type).block_size != 0 ||
        ldy < w.n_rows)
        return cudaErrorInvalidValue;
    const bool tc_type = w.type == ggml_type::f16 || w.type == ggml_type::bf16;
    if (algo == matmul_algo::automatic)
        algo = n_tok <= 8 ? matmul_algo::gemv : tc_type ? matmul_algo::tensor_core : matmul_algo::tiled;
    if (algo == matmul_algo::tensor_core && !tc_type) return cudaErrorInvalidValue;
    const matmul_args a{static_cast<const uint8_t*>(w.data), w.row_bytes, w.n_rows, w.n_cols, x, n_tok, y, ldy};
    const dim3 grid(static_cast<unsigned>(ceil_div(w.n_rows, tb_m)), static_cast<unsigned>(ceil_div(n_tok, tb_n)));
    if (grid.y > 65535 || grid.x > 0x7fffffffu) return cudaErrorInvalidValue;
    return dispatch_type(w.type, [&](auto t) -> cudaError_t {
        constexpr ggml_type T = decltype(t)::value;
        if (algo == matmul_algo::gemv) return launch_gemv<T>(a, stream);
        if constexpr (T == ggml_type::f16 || T == ggml_type::bf16) {
            if (algo == matmul_algo::tensor_core) {
                tensor_core_kernel<T><<<grid, 128, 0, stream>>>(a);
                MNEMOS_CUDA_CHECK_LAUNCH();
                return cudaSuccess;
            }
        }
        tiled_kernel<T><<<grid, 256, 0, stream>>>(a);
        MNEMOS_CUDA_CHECK_LAUNCH();
        return cudaSuccess;
    });
}

}  // namespace mnemos::kernels::cuda

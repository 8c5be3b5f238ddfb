// Embedding lookup, RMSNorm, RoPE, SwiGLU, add, KV writes and page copies.
#include <cmath>

#include "kernels/cuda/common.cuh"

namespace mnemos::kernels::cuda {

using namespace detail;

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();  // clear the sticky "no device / no driver" error
        return 0;
    }
    return n;
}

bool supported(ggml_type t) {
    switch (t) {
        case ggml_type::f32:
        case ggml_type::f16:
        case ggml_type::bf16:
        case ggml_type::q8_0:
        case ggml_type::q4_0:
        case ggml_type::q4_k:
        case ggml_type::q6_k:
            return true;
        default:
            return false;
    }
}

namespace {

// ---------------------------------------------------------------------------
// embedding
// ---------------------------------------------------------------------------

struct embedding_args {
    const uint8_t* w;
    size_t row_bytes;
    int64_t n_rows;
    int64_t n_cols;
    const int32_t* ids;
    float* out;
};

// grid (T, ceil(n_cols / 8 / 256)); each thread writes 8 elements.
template <ggml_type T>
__global__ void embedding_kernel(embedding_args a) {
    const int64_t r = blockIdx.x;
    const int64_t e = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * 8;
    if (e >= a.n_cols) return;
    const int32_t id = a.ids[r];
    float v[8];
    if (id < 0 || id >= a.n_rows) {
#pragma unroll
        for (int i = 0; i < 8; ++i) v[i] = 0.0f;
    } else {
        dequant8<T>(a.w + static_cast<size_t>(id) * a.row_bytes, e, v);
    }
    float4* o = reinterpret_cast<float4*>(a.out + r * a.n_cols + e);
    o[0] = make_float4(v[0], v[1], v[2], v[3]);
    o[1] = make_float4(v[4], v[5], v[6], v[7]);
}

// ---------------------------------------------------------------------------
// rmsnorm: one block of 256 threads per row
// ---------------------------------------------------------------------------

struct rmsnorm_args {
    const float* x;
    const float* w;
    float* y;
    int32_t n;
    float eps;
};

__global__ void rmsnorm_kernel(rmsnorm_args a) {
    const float* x = a.x + static_cast<int64_t>(blockIdx.x) * a.n;
    float* y = a.y + static_cast<int64_t>(blockIdx.x) * a.n;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < a.n; i += blockDim.x) ss += x[i] * x[i];
    __shared__ float partial[32];
    ss = warp_sum(ss);
    if (threadIdx.x % warp_size == 0) partial[threadIdx.x / warp_size] = ss;
    __syncthreads();
    if (threadIdx.x < warp_size) {
        float t = threadIdx.x < blockDim.x / warp_size ? partial[threadIdx.x] : 0.0f;
        t = warp_sum(t);
        if (threadIdx.x == 0) partial[0] = t;
    }
    __syncthreads();
    const float scale = 1.0f / sqrtf(partial[0] / static_cast<float>(a.n) + a.eps);
    for (int i = threadIdx.x; i < a.n; i += blockDim.x) y[i] = x[i] * scale * a.w[i];
}

// ---------------------------------------------------------------------------
// rope: one thread per (token, head, pair)
// ---------------------------------------------------------------------------

struct rope_args {
    rope_params p;
    float theta_scale;
    float* x;
    int64_t n_tok;
    int32_t n_head;
    const int32_t* pos;
};

__global__ void rope_kernel(rope_args a) {
    const int half = a.p.n_rot / 2;
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= a.n_tok * a.n_head * half) return;
    const int i = static_cast<int>(idx % half);
    const int64_t th = idx / half;  // token * n_head + head
    const int64_t r = th / a.n_head;
    // Running product, as on the CPU, so that the angles agree at long positions.
    float theta_base = static_cast<float>(a.pos[r]);
    for (int k = 0; k < i; ++k) theta_base = __fmul_rn(theta_base, a.theta_scale);
    const float mult = a.p.freq_mult ? a.p.freq_mult[i] : 1.0f;
    const float theta_extrap = __fmul_rn(theta_base, mult);
    float theta = __fmul_rn(a.p.freq_scale, theta_extrap);
    float mscale = 1.0f;
    if (a.p.yarn) {
        const float y = (static_cast<float>(i) - a.p.yarn_corr_lo) / fmaxf(0.001f, a.p.yarn_corr_hi - a.p.yarn_corr_lo);
        const float ramp = 1.0f - fminf(1.0f, fmaxf(0.0f, y));
        theta = __fadd_rn(__fmul_rn(theta, 1.0f - ramp), __fmul_rn(theta_extrap, ramp));
        mscale = a.p.yarn_mscale;
    }
    float sn, cs;
    sincosf(theta, &sn, &cs);
    cs *= mscale;
    sn *= mscale;
    float* v = a.x + th * a.p.head_dim;
    const int i0 = a.p.mode == rope_mode::normal ? 2 * i : i;
    const int i1 = a.p.mode == rope_mode::normal ? 2 * i + 1 : i + half;
    const float x0 = v[i0], x1 = v[i1];
    v[i0] = x0 * cs - x1 * sn;
    v[i1] = x0 * sn + x1 * cs;
}

// ---------------------------------------------------------------------------
// swiglu, add
// ---------------------------------------------------------------------------

struct binary_args {
    const float* a;
    const float* b;
    float* out;
    int64_t n;
};

__global__ void swiglu_kernel(binary_args a) {
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const float g = a.a[i];
        a.out[i] = g / (1.0f + expf(-g)) * a.b[i];
    }
}

__global__ void add_kernel(binary_args a) {
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        a.out[i] = a.a[i] + a.b[i];
}

unsigned grid_for(int64_t n, int threads) {
    const int64_t g = ceil_div(n, threads);
    return static_cast<unsigned>(g < 65535 * 8 ? (g < 1 ? 1 : g) : 65535 * 8);
}

// ---------------------------------------------------------------------------
// kv_write: one thread per (token, element pair)
// ---------------------------------------------------------------------------

struct kv_write_args {
    paged_kv_view kv;
    uint16_t* base;  // kv.base without const
    int32_t layer;
    const float* k;
    const float* v;
    const int32_t* slot;
    int64_t n_tok;
};

__global__ void kv_write_kernel(kv_write_args a) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= a.n_tok * a.kv.kv_dim) return;
    const int64_t r = idx / a.kv.kv_dim;
    const int c = static_cast<int>(idx % a.kv.kv_dim);
    const int32_t s = a.slot[r];
    const int64_t off = static_cast<int64_t>(s / a.kv.page_size) * a.kv.page_stride +
                        static_cast<int64_t>(a.layer) * a.kv.layer_stride +
                        static_cast<int64_t>(s % a.kv.page_size) * a.kv.kv_dim + c;
    a.base[off] = f2h(a.k[idx]);
    a.base[off + a.kv.v_offset] = f2h(a.v[idx]);
}

}  // namespace

cudaError_t embedding(const weight_view& w, const int32_t* ids, int64_t n_tok, float* out, cudaStream_t stream) {
    if (n_tok == 0) return cudaSuccess;
    if (!supported(w.type) || w.n_cols % 8 != 0 || w.n_cols % traits_of(w.type).block_size != 0 || n_tok > 0x7fffffff ||
        ceil_div(w.n_cols / 8, 256) > 65535)
        return cudaErrorInvalidValue;
    const embedding_args a{static_cast<const uint8_t*>(w.data), w.row_bytes, w.n_rows, w.n_cols, ids, out};
    const dim3 grid(static_cast<unsigned>(n_tok), static_cast<unsigned>(ceil_div(w.n_cols / 8, 256)));
    return dispatch_type(w.type, [&](auto t) -> cudaError_t {
        embedding_kernel<decltype(t)::value><<<grid, 256, 0, stream>>>(a);
        MNEMOS_CUDA_CHECK_LAUNCH();
        return cudaSuccess;
    });
}

cudaError_t rmsnorm(const float* x, const float* w, float* y, int64_t n_tok, int32_t n, float eps,
                    cudaStream_t stream) {
    if (n_tok == 0) return cudaSuccess;
    if (n <= 0 || n_tok > 0x7fffffff) return cudaErrorInvalidValue;
    rmsnorm_kernel<<<static_cast<unsigned>(n_tok), 256, 0, stream>>>(rmsnorm_args{x, w, y, n, eps});
    MNEMOS_CUDA_CHECK_LAUNCH();
    return cudaSuccess;
}

cudaError_t rope(const rope_params& p, float* x, int64_t n_tok, int32_t n_head, const int32_t* pos,
                 cudaStream_t stream) {
    if (n_tok == 0) return cudaSuccess;
    if (p.n_rot <= 0 || p.n_rot % 2 != 0 || p.n_rot > p.head_dim) return cudaErrorInvalidValue;
    const rope_args a{p, std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot)), x, n_tok, n_head, pos};
    const int64_t n = n_tok * n_head * (p.n_rot / 2);
    rope_kernel<<<static_cast<unsigned>(ceil_div(n, 256)), 256, 0, stream>>>(a);
    MNEMOS_CUDA_CHECK_LAUNCH();
    return cudaSuccess;
}

cudaError_t swiglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    swiglu_kernel<<<grid_for(n, 256), 256, 0, stream>>>(binary_args{gate, up, out, n});
    MNEMOS_CUDA_CHECK_LAUNCH();
    return cudaSuccess;
}

cudaError_t add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    add_kernel<<<grid_for(n, 256), 256, 0, stream>>>(binary_args{a, b, out, n});
    MNEMOS_CUDA_CHECK_LAUNCH();
    return cudaSuccess;
}

cudaError_t kv_write(const paged_kv_view& kv, int32_t layer, const float* k, const float* v, const int32_t* slot,
                     int64_t n_tok, cudaStream_t stream) {
    if (n_tok == 0) return cudaSuccess;
    if (kv.base == nullptr || kv.kv_dim <= 0 || kv.page_size <= 0) return cudaErrorInvalidValue;
    const kv_write_args a{kv, const_cast<uint16_t*>(kv.base), layer, k, v, slot, n_tok};
    kv_write_kernel<<<static_cast<unsigned>(ceil_div(n_tok * kv.kv_dim, 256)), 256, 0, stream>>>(a);
    MNEMOS_CUDA_CHECK_LAUNCH();
    return cudaSuccess;
}

cudaError_t copy_pages(void* dst_base, const int32_t* dst_pages, const void* src_base, const int32_t* src_pages,
                       int32_t n, size_t page_bytes, cudaMemcpyKind kind, cudaStream_t stream) {
    int32_t i = 0;
    while (i < n) {
        int32_t run = 1;  // pages consecutive in both pools: one copy
        while (i + run < n && dst_pages[i + run] == dst_pages[i] + run && src_pages[i + run] == src_pages[i] + run)
            ++run;
        MNEMOS_CUDA_TRY(
            cudaMemcpyAsync(static_cast<uint8_t*>(dst_base) + static_cast<size_t>(dst_pages[i]) * page_bytes,
                            static_cast<const uint8_t*>(src_base) + static_cast<size_t>(src_pages[i]) * page_bytes,
                            static_cast<size_t>(run) * page_bytes, kind, stream));
        i += run;
    }
    return cudaSuccess;
}

}  // namespace mnemos::kernels::cuda

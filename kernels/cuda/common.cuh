#pragma once
// Internals shared by the .cu files of kernels/cuda/: error macros, GGML block
// layouts (bit-exact with kernels/cpu/internal.h) and dequantization of 8
// consecutive elements in registers. Not a public header.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/cuda_kernels.h"

// Returns the error of a CUDA call from the enclosing launcher.
#define MNEMOS_CUDA_TRY(call)                               \
    do {                                                    \
        const cudaError_t mnemos_err_ = (call);             \
        if (mnemos_err_ != cudaSuccess) return mnemos_err_; \
    } while (0)

// After a <<<...>>> launch: returns the launch error, if any.
#define MNEMOS_CUDA_CHECK_LAUNCH() MNEMOS_CUDA_TRY(cudaGetLastError())

namespace mnemos::kernels::cuda::detail {

constexpr int warp_size = 32;

// ---------------------------------------------------------------------------
// Block layouts (see kernels/ggml_types.h)
// ---------------------------------------------------------------------------

struct block_q8_0 {
    uint16_t d;
    int8_t qs[32];
};
static_assert(sizeof(block_q8_0) == 34);
struct block_q4_0 {
    uint16_t d;
    uint8_t qs[16];
};
static_assert(sizeof(block_q4_0) == 18);
struct block_q4_k {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[128];
};
static_assert(sizeof(block_q4_k) == 144);
struct block_q6_k {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
};
static_assert(sizeof(block_q6_k) == 210);

__device__ __forceinline__ float h2f(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float bf2f(uint16_t h) { return __uint_as_float(static_cast<uint32_t>(h) << 16); }
// f32 -> f16 bits, round to nearest even (as kernels::fp32_to_fp16).
__device__ __forceinline__ uint16_t f2h(float f) { return __half_as_ushort(__float2half_rn(f)); }
__device__ __forceinline__ float round_f16(float f) { return __half2float(__float2half_rn(f)); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Loads 2-byte-aligned bytes p[0..8) with 16-bit loads.
__device__ __forceinline__ void load8_bytes(const uint8_t* p, uint8_t* out) {
    const uint16_t* p16 = reinterpret_cast<const uint16_t*>(p);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const uint16_t w = p16[i];
        out[2 * i] = static_cast<uint8_t>(w & 0xff);
        out[2 * i + 1] = static_cast<uint8_t>(w >> 8);
    }
}

// q4_k's 6-bit scale and min of sub-block j (0..7); see unpack_q4_k_scales.
__device__ __forceinline__ void q4_k_scale_min(const uint8_t* s, int j, int& sc, int& mn) {
    if (j < 4) {
        sc = s[j] & 63;
        mn = s[j + 4] & 63;
    } else {
        sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// out[0..8) = elements e .. e+7 of a row of type T (e a multiple of 8).
template <ggml_type T>
__device__ __forceinline__ void dequant8(const uint8_t* row, int64_t e, float* out) {
    if constexpr (T == ggml_type::f32) {
        const float4* p = reinterpret_cast<const float4*>(row + e * 4);
        const float4 a = p[0], b = p[1];
        out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
        out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
    } else if constexpr (T == ggml_type::f16 || T == ggml_type::bf16) {
        const uint4 v = *reinterpret_cast<const uint4*>(row + e * 2);
        const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint16_t lo = static_cast<uint16_t>(w[i] & 0xffff), hi = static_cast<uint16_t>(w[i] >> 16);
            if constexpr (T == ggml_type::f16) {
                out[2 * i] = h2f(lo), out[2 * i + 1] = h2f(hi);
            } else {
                out[2 * i] = bf2f(lo), out[2 * i + 1] = bf2f(hi);
            }
        }
    } else if constexpr (T == ggml_type::q8_0) {
        const block_q8_0* b = reinterpret_cast<const block_q8_0*>(row) + e / 32;
        const float d = h2f(b->d);
        uint8_t q[8];
        load8_bytes(reinterpret_cast<const uint8_t*>(b->qs) + (e % 32), q);
#pragma unroll
        for (int i = 0; i < 8; ++i) out[i] = d * static_cast<float>(static_cast<int8_t>(q[i]));
    } else if constexpr (T == ggml_type::q4_0) {
        const block_q4_0* b = reinterpret_cast<const block_q4_0*>(row) + e / 32;
        const float d = h2f(b->d);
        const int j = static_cast<int>(e % 32);
        uint8_t q[8];
        load8_bytes(b->qs + (j & 15), q);
        const int sh = j < 16 ? 0 : 4;
#pragma unroll
        for (int i = 0; i < 8; ++i) out[i] = d * static_cast<float>(((q[i] >> sh) & 0x0f) - 8);
    } else if constexpr (T == ggml_type::q4_k) {
        const block_q4_k* b = reinterpret_cast<const block_q4_k*>(row) + e / 256;
        const int j = static_cast<int>(e % 256);
        const int c = j / 64, l = j % 64;
        const int sub = 2 * c + (l >= 32 ? 1 : 0);
        int sc, mn;
        q4_k_scale_min(b->scales, sub, sc, mn);
        const float d = h2f(b->d) * static_cast<float>(sc), m = h2f(b->dmin) * static_cast<float>(mn);
        uint8_t q[8];
        load8_bytes(b->qs + 32 * c + (l & 31), q);
        const int sh = l < 32 ? 0 : 4;
#pragma unroll
        for (int i = 0; i < 8; ++i) out[i] = d * static_cast<float>((q[i] >> sh) & 0x0f) - m;
    } else if constexpr (T == ggml_type::q6_k) {
        const block_q6_k* b = reinterpret_cast<const block_q6_k*>(row) + e / 256;
        const int j = static_cast<int>(e % 256);
        const int half = j / 128, r = j % 128, quarter = r / 32, l = r % 32;
        const float d = h2f(b->d) * static_cast<float>(b->scales[j / 16]);
        uint8_t ql[8], qh[8];
        load8_bytes(b->ql + 64 * half + l + 32 * (quarter & 1), ql);
        load8_bytes(b->qh + 32 * half + l, qh);
        const int sh_lo = quarter < 2 ? 0 : 4, sh_hi = 2 * quarter;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const int v = ((ql[i] >> sh_lo) & 0x0f) | (((qh[i] >> sh_hi) & 3) << 4);
            out[i] = d * static_cast<float>(v - 32);
        }
    }
}

// Calls f(std::integral_constant<ggml_type, T>{}) for the runtime type t;
// returns cudaErrorInvalidValue for an unsupported type.
template <class F>
cudaError_t dispatch_type(ggml_type t, F&& f) {
    switch (t) {
        case ggml_type::f32:
            return f(std::integral_constant<ggml_type, ggml_type::f32>{});
        case ggml_type::f16:
            return f(std::integral_constant<ggml_type, ggml_type::f16>{});
        case ggml_type::bf16:
            return f(std::integral_constant<ggml_type, ggml_type::bf16>{});
        case ggml_type::q8_0:
            return f(std::integral_constant<ggml_type, ggml_type::q8_0>{});
        case ggml_type::q4_0:
            return f(std::integral_constant<ggml_type, ggml_type::q4_0>{});
        case ggml_type::q4_k:
            return f(std::integral_constant<ggml_type, ggml_type::q4_k>{});
        case ggml_type::q6_k:
            return f(std::integral_constant<ggml_type, ggml_type::q6_k>{});
        default:
            return cudaErrorInvalidValue;
    }
}

// Element offset of token t's K row of `layer` (V: + kv.v_offset), the
// arithmetic of paged_kv_view::k_row on the device. pages: the sequence's table.
__device__ __forceinline__ int64_t k_row_offset(const paged_kv_view& kv, const int32_t* pages, int layer, int64_t t) {
    return static_cast<int64_t>(pages[t / kv.page_size]) * kv.page_stride +
           static_cast<int64_t>(layer) * kv.layer_stride + (t % kv.page_size) * static_cast<int64_t>(kv.kv_dim);
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace mnemos::kernels::cuda::detail

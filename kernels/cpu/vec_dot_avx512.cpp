// AVX-512 vector primitives. The quantized and float row dot products (vec_dot_avx512) are the 1x1 case of
// the matmul micro-kernels in matmul_avx512.cpp / matmul_avx512vnni.cpp.
#include "kernels/cpu/avx512_util.h"
#include "kernels/cpu/internal.h"

namespace mnemos::kernels {

namespace {

// Mask of the first min(n, 16) lanes.
inline __mmask16 first_lanes(int64_t n) {
    return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}

inline __m512 load_f16(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }

}  // namespace

float vec_dot_avx512(ggml_type wt, int64_t n, const void* w, const void* x, bool vnni) {
    const tile_fn fn = tile_kernel_avx512(wt, vnni);
    if (!fn) return vec_dot_ref(wt, n, w, x);
    float out = 0.0f;
    fn(n, w, 0, x, 0, &out, 1, 1, 1);
    return out;
}

float dot_f16_f32_avx512(int64_t n, const uint16_t* a, const float* b) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(load_f16(a + i, 0xffff), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(load_f16(a + i + 16, 0xffff), _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = first_lanes(n - i);
        acc0 = _mm512_fmadd_ps(load_f16(a + i, m), _mm512_maskz_loadu_ps(m, b + i), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void axpy_f16_avx512(int64_t n, float alpha, const uint16_t* x, float* y) {
    const __m512 va = _mm512_set1_ps(alpha);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = first_lanes(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, load_f16(x + i, m), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

void convert_f32_to_f16_avx512(int64_t n, const float* src, uint16_t* dst) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = first_lanes(n - i);
        const __m256i h =
            _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(dst + i, m, h);
    }
}

}  // namespace mnemos::kernels

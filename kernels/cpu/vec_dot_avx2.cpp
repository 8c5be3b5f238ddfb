// AVX2/F16C vector primitives and activation quantizers. The quantized and
// float row dot products (vec_dot_avx2) are the 1x1 case of the matmul
// micro-kernels in matmul_avx2.cpp.
#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/internal.h"

namespace mnemos::kernels {

namespace {

using avx2::hsum;

inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Rounds 32 floats (ties to even) and packs them to int8 in order; |values| <= 127.
inline __m256i round_pack32(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
    constexpr int rnd = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(v0, rnd));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(v1, rnd));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(v2, rnd));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(v3, rnd));
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace

float dot_f16_f32_avx2(int64_t n, const uint16_t* a, const float* b) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 a0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
        const __m256 a1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 8)));
        acc0 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(a1, _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 a0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
        acc0 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b + i), acc0);
    }
    float s = hsum(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) s += _cvtsh_ss(a[i]) * b[i];
    return s;
}

void axpy_f16_avx2(int64_t n, float alpha, const uint16_t* x, float* y) {
    const __m256 va = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; ++i) y[i] = std::fma(alpha, _cvtsh_ss(x[i]), y[i]);
}

void convert_f32_to_f16_avx2(int64_t n, const float* src, uint16_t* dst) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
    }
    for (; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}

void quantize_row_q8_0_avx2(const float* src, void* dst, int64_t n) {
    auto* out = static_cast<block_q8_0*>(dst);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < n / qk8_0; ++b) {
        const float* x = src + b * qk8_0;
        const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, abs_mask), _mm256_and_ps(v1, abs_mask)),
                                       _mm256_max_ps(_mm256_and_ps(v2, abs_mask), _mm256_and_ps(v3, abs_mask)));
        const float amax = hmax(m);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = fp32_to_fp16(d);
        const __m256 vid = _mm256_set1_ps(id);
        const __m256i q = round_pack32(_mm256_mul_ps(v0, vid), _mm256_mul_ps(v1, vid), _mm256_mul_ps(v2, vid),
                                       _mm256_mul_ps(v3, vid));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].qs), q);
    }
}

void quantize_row_q8_k_avx2(const float* src, void* dst, int64_t n) {
    auto* out = static_cast<block_q8_k*>(dst);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i ones8 = _mm256_set1_epi8(1);
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < n / qk_k; ++b) {
        const float* x = src + b * qk_k;
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < qk_k; i += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask));
        const float amax = hmax(m);
        if (amax == 0.0f) {
            std::memset(&out[b], 0, sizeof(block_q8_k));
            continue;
        }
        // The first element of largest magnitude, with its sign (as the reference picks it).
        float vmax = 0.0f;
        const __m256 vam = _mm256_set1_ps(amax);
        for (int i = 0; i < qk_k; i += 8) {
            const int mask =
                _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask), vam, _CMP_EQ_OQ));
            if (mask) {
                vmax = x[i + __builtin_ctz(static_cast<unsigned>(mask))];
                break;
            }
        }
        const float iscale = -127.0f / vmax;
        const __m256 vis = _mm256_set1_ps(iscale);
        const __m256i q127 = _mm256_set1_epi8(127);
        for (int i = 0; i < qk_k; i += 32) {
            __m256i q = round_pack32(
                _mm256_mul_ps(_mm256_loadu_ps(x + i), vis), _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vis),
                _mm256_mul_ps(_mm256_loadu_ps(x + i + 16), vis), _mm256_mul_ps(_mm256_loadu_ps(x + i + 24), vis));
            q = _mm256_min_epi8(q, q127);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].qs + i), q);
            // Sums of the two groups of 16: lanes 0..3 belong to the first, 4..7 to the second.
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16);
            s = _mm256_hadd_epi32(s, s);
            s = _mm256_hadd_epi32(s, s);
            out[b].bsums[i / 16] = static_cast<int16_t>(_mm256_extract_epi32(s, 0));
            out[b].bsums[i / 16 + 1] = static_cast<int16_t>(_mm256_extract_epi32(s, 4));
        }
        out[b].d = 1.0f / iscale;
    }
}

}  // namespace mnemos::kernels

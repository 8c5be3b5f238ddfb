#pragma once
// Small AVX-512 helpers shared by the *_avx512*.cpp files (compiled with -mavx512f/bw/vl/dq; the
// *_avx512vnni.cpp files add -mavx512vnni). Include only from those files. Everything here has internal
// linkage (an unnamed namespace): the files are compiled with different flags, so no inline copy may be
// shared between them at link time.
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through masked builtins, which -Wuninitialized
// reports inside immintrin.h (GCC PR 105593, fixed in 13); the pragmas cover the header's own lines, so
// this must be the first include of immintrin.h in the translation unit.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>
#include <cstring>

namespace mnemos::kernels::avx512 {
namespace {

// GCC at -O2 keeps short fixed-count loops rolled, which sends register-blocked accumulators to the
// stack; these loops must unroll completely.
#define MNEMOS_UNROLL512 _Pragma("GCC unroll 16")

inline __m512i loadu512(const void* p) { return _mm512_loadu_si512(p); }
inline __m256i loadu256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 32 bytes at p0 in the low half, 32 bytes at p1 in the high half.
inline __m512i load2x256(const void* p0, const void* p1) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(loadu256(p0)), loadu256(p1), 1);
}

// Float lanes 0..7 = a, 8..15 = b.
inline __m512 set2x8(float a, float b) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(a)), _mm256_set1_ps(b), 1);
}

inline float f16(uint16_t h) { return _cvtsh_ss(h); }

inline uint16_t load_u16(const void* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// [sum(a0), sum(a1), sum(a2), sum(a3)]: the lanes of four vectors summed by one transpose-add tree.
inline __m128 reduce4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
    // Per 128-bit lane: x01 = [a0_0 + a0_2, a1_0 + a1_2, a0_1 + a0_3, a1_1 + a1_3], x23 likewise.
    const __m512 x01 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
    const __m512 x23 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
    // Per 128-bit lane: [a0, a1, a2, a3] partial sums; then the four lanes added.
    const __m512 y = _mm512_add_ps(_mm512_shuffle_ps(x01, x23, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_ps(x01, x23, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m256 z = _mm256_add_ps(_mm512_castps512_ps256(y), _mm512_extractf32x8_ps(y, 1));
    return _mm_add_ps(_mm256_castps256_ps128(z), _mm256_extractf128_ps(z, 1));
}

// y[j * ldy + r] = the sum of the lanes of acc[r][j], four rows at a time.
template <int RM, int RN>
inline void store_acc(const __m512 (&acc)[RM][RN], float* y, int64_t ldy) {
    MNEMOS_UNROLL512
    for (int j = 0; j < RN; ++j) {
        MNEMOS_UNROLL512
        for (int r0 = 0; r0 < RM; r0 += 4) {
            const __m512 zero = _mm512_setzero_ps();
            const __m128 s = reduce4(acc[r0][j], r0 + 1 < RM ? acc[r0 + 1][j] : zero,
                                     r0 + 2 < RM ? acc[r0 + 2][j] : zero, r0 + 3 < RM ? acc[r0 + 3][j] : zero);
            const int n = RM - r0 < 4 ? RM - r0 : 4;
            _mm_mask_storeu_ps(y + j * ldy + r0, static_cast<__mmask8>((1u << n) - 1), s);
        }
    }
}

// The u8 x s8 dot-product step of the quantized kernels: acc (16 x s32) += sum over each group of 4
// bytes of u[i] * s[i]. Without VNNI it goes through maddubs, whose s16 pair sums saturate: callers keep
// u[i] * s[i] + u[i+1] * s[i+1] within int16 (u <= 127 with |s| <= 127 is enough).
struct dot_bw {
    static constexpr bool exact = false;
    static __m512i step(__m512i acc, __m512i u, __m512i s) {
        return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
    }
};

#ifdef __AVX512VNNI__
// vpdpbusd: exact (no intermediate saturation).
struct dot_vnni {
    static constexpr bool exact = true;
    static __m512i step(__m512i acc, __m512i u, __m512i s) { return _mm512_dpbusd_epi32(acc, u, s); }
};
#endif

}  // namespace
}  // namespace mnemos::kernels::avx512

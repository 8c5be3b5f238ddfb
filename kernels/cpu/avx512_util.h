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

#pragma once
// Shared by matmul_avx512.cpp and matmul_avx512vnni.cpp (include only from those): the tiling of a block
// of rows x tokens over register-blocked micro-kernels, and the q8_0 / q4_0 micro-kernels, templated on
// the u8 x s8 dot step (avx512::dot_bw or avx512::dot_vnni) so that the two files build them without and
// with VNNI. A micro-kernel computes RM weight rows x RN activation rows over the full k.
#include <algorithm>
#include <array>
#include <utility>

#include "kernels/cpu/avx512_util.h"
#include "kernels/cpu/internal.h"

namespace mnemos::kernels::avx512 {
namespace {

// The quantized values of blocks b and b + 1 of a row (only b when !two: the high half is zero) and their
// scales in lanes 0..7 / 8..15. Q4: the nibbles 0..15 (the -8 offset is applied by the caller).
using micro_fn = void (*)(int64_t k, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy);

// fn[(nr - 1) * RN + nj - 1] = K<nr, nj>::run for nr <= RM, nj <= RN.
template <template <int, int> class K, int RN, int... I>
constexpr std::array<micro_fn, sizeof...(I)> make_micro_table(std::integer_sequence<int, I...>) {
    return {K<I / RN + 1, I % RN + 1>::run...};
}

// Runs the micro-kernels K over n_rows x n_tok in blocks of (at most) RM x RN: tokens outer, so RN
// activation rows stay in L1 while the tile's weight rows pass. Has the signature of tile_fn.
template <template <int, int> class K, int RM, int RN>
void tile(int64_t k, const void* w, size_t ws, const void* x, size_t xs, float* y, int64_t ldy, int64_t n_rows,
          int64_t n_tok) {
    static constexpr auto table = make_micro_table<K, RN>(std::make_integer_sequence<int, RM * RN>{});
    const auto* wp = static_cast<const uint8_t*>(w);
    const auto* xp = static_cast<const uint8_t*>(x);
    for (int64_t j0 = 0; j0 < n_tok; j0 += RN) {
        const int nj = static_cast<int>(std::min<int64_t>(RN, n_tok - j0));
        for (int64_t r0 = 0; r0 < n_rows; r0 += RM) {
            const int nr = static_cast<int>(std::min<int64_t>(RM, n_rows - r0));
            table[(nr - 1) * RN + nj - 1](k, wp + r0 * ws, ws, xp + j0 * xs, xs, y + j0 * ldy + r0, ldy);
        }
    }
}

// ---------------------------------------------------------------------------
// q8_0 / q4_0 weights x q8_0 activations: two 32-element blocks per 512-bit vector (lanes 0..7: the first
// block, 8..15: the second); integer sums per block, scales applied in float.
// ---------------------------------------------------------------------------

// The f16 scales at p0 and p1 (p1 == nullptr: 0) in float lanes 0..7 and 8..15.
inline __m512 load_scale_pair(const uint8_t* p0, const uint8_t* p1) {
    const uint32_t h = load_u16(p0) | (p1 ? static_cast<uint32_t>(load_u16(p1)) << 16 : 0u);
    const __m512 d = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h))));
    return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0), d);
}

// The quantized values of blocks b and b + 1 of a row (only b when !two: the high half is zero) and their
// scales. Q4: the nibbles 0..15 (the -8 offset is applied by the caller).
template <bool Q4>
inline __m512i load_w_pair(const uint8_t* row, int64_t b, bool two, __m512* d) {
    constexpr size_t bs = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    const uint8_t* p0 = row + b * bs;
    const uint8_t* p1 = p0 + bs;
    *d = load_scale_pair(p0, two ? p1 : nullptr);
    if constexpr (Q4) {
        // Bytes j of a block: element j (low nibble), element j + 16 (high nibble).
        const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p0 + 2));
        const __m128i q1 = two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p1 + 2)) : _mm_setzero_si128();
        const __m256i q = _mm256_set_m128i(q1, q0);
        const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
        // [q0 lo, q1 lo, q0 hi, q1 hi] -> [q0 lo, q0 hi, q1 lo, q1 hi]
        const __m512i nib = _mm512_and_si512(v, _mm512_set1_epi8(0x0f));
        return _mm512_shuffle_i64x2(nib, nib, _MM_SHUFFLE(3, 1, 2, 0));
    } else {
        const __m256i q0 = loadu256(p0 + 2);
        const __m256i q1 = two ? loadu256(p1 + 2) : _mm256_setzero_si256();
        return _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    }
}

template <class Dot, bool Q4, int RM, int RN>
void micro_q8_0(int64_t k, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
    // The dot step needs unsigned weights. q4_0: q . x - 8 * sum(x) (nibbles q = w + 8). q8_0 with VNNI
    // (exact sums): (w + 128) . x - 128 * sum(x), the fix-up per token, shared by the rows. q8_0 without
    // VNNI, where maddubs would saturate on w + 128: |w| . (x negated where w < 0).
    constexpr bool offset_w = !Q4 && Dot::exact;
    constexpr bool sign_fix = !Q4 && !Dot::exact;
    const int64_t nb = k / qk8_0;
    const __m512i x_fix_mul = _mm512_set1_epi8(Q4 ? 8 : static_cast<char>(0x80));  // as u8: 8 or 128
    __m512 acc[RM][RN];
    MNEMOS_UNROLL512
    for (int r = 0; r < RM; ++r) {
        MNEMOS_UNROLL512
        for (int j = 0; j < RN; ++j) acc[r][j] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b += 2) {
        const bool two = b + 1 < nb;
        __m512i wq[RM];
        __m512 dw[RM];
        __mmask64 wneg[RM];
        MNEMOS_UNROLL512
        for (int r = 0; r < RM; ++r) {
            wq[r] = load_w_pair<Q4>(w + r * ws, b, two, &dw[r]);
            if constexpr (offset_w) {
                wq[r] = _mm512_xor_si512(wq[r], _mm512_set1_epi8(static_cast<char>(0x80)));
            } else if constexpr (sign_fix) {
                wneg[r] = _mm512_movepi8_mask(wq[r]);
                wq[r] = _mm512_abs_epi8(wq[r]);
            }
        }
        MNEMOS_UNROLL512
        for (int j = 0; j < RN; ++j) {
            const uint8_t* x0 = x + j * xs + b * sizeof(block_q8_0);
            const uint8_t* x1 = x0 + sizeof(block_q8_0);
            const __m512 dx = load_scale_pair(x0, two ? x1 : nullptr);
            const __m512i xv = two ? load2x256(x0 + 2, x1 + 2) : _mm512_zextsi256_si512(loadu256(x0 + 2));
            __m512i xfix = _mm512_setzero_si512();
            if constexpr (!sign_fix) xfix = _mm512_sub_epi32(xfix, Dot::step(xfix, x_fix_mul, xv));
            MNEMOS_UNROLL512
            for (int r = 0; r < RM; ++r) {
                __m512i p;
                if constexpr (sign_fix)
                    p = Dot::step(xfix, wq[r], _mm512_mask_sub_epi8(xv, wneg[r], _mm512_setzero_si512(), xv));
                else
                    p = Dot::step(xfix, wq[r], xv);
                acc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw[r], dx), acc[r][j]);
            }
        }
    }
    store_acc<RM, RN>(acc, y, ldy);
}

// The micro-kernels of micro_q8_0 as tables for tile(), per dot step.
template <class Dot>
struct q8_kernels {
    template <int RM, int RN>
    struct q8_0 {
        static constexpr micro_fn run = micro_q8_0<Dot, false, RM, RN>;
    };
    template <int RM, int RN>
    struct q4_0 {
        static constexpr micro_fn run = micro_q8_0<Dot, true, RM, RN>;
    };
};

}  // namespace
}  // namespace mnemos::kernels::avx512

// Decode (fewer than amx_min_toks tokens) for q8_0 / q4_0 when AMX is in use, in AVX-512 VNNI but with the AMX
// kernel's arithmetic per output (matmul_amx.cpp): the exact integer sum of each 32-element block, then
// acc = fma(float(isum) * d_w, d_x, acc) block after block. The tile store and reload that AMX needs per
// block make it latency-bound at one token; here 16 weight rows are the 16 lanes: the block's products
// come from vpdpbusd (two rows per vector) and a transpose-add tree leaves one row's sum per lane.
#include <algorithm>
#include <vector>

#include "kernels/cpu/amx_util.h"

namespace mnemos::kernels::amx {

namespace {

// Lane pairs of a and b summed, a's then b's: [a0 + a1, a2 + a3, ..., b14 + b15].
inline __m512i pair_sums(__m512i a, __m512i b) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    return _mm512_add_epi32(_mm512_permutex2var_epi32(a, even, b), _mm512_permutex2var_epi32(a, odd, b));
}

// v[i]: lanes 0..7 partial sums of row 2i, lanes 8..15 of row 2i + 1. Returns lane n = the sum of row n.
inline __m512i row_sums(const __m512i (&v)[8]) {
    const __m512i w0 = pair_sums(v[0], v[1]), w1 = pair_sums(v[2], v[3]);
    const __m512i w2 = pair_sums(v[4], v[5]), w3 = pair_sums(v[6], v[7]);
    return pair_sums(pair_sums(w0, w1), pair_sums(w2, w3));
}

// Block b of rows 2i and 2i + 1 (row indexes past nr read row 0: their lanes are never stored) as unsigned
// bytes: q8_0 w + 128, q4_0 the nibbles.
template <bool Q4>
inline __m512i load_rows(const uint8_t* w, size_t ws, int64_t b, int i, int nr) {
    constexpr size_t bs = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    const uint8_t* r0 = w + (2 * i < nr ? 2 * i : 0) * ws + b * bs + 2;
    const uint8_t* r1 = w + (2 * i + 1 < nr ? 2 * i + 1 : 0) * ws + b * bs + 2;
    if constexpr (Q4) {
        const __m256i q = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r1)),
                                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(r0)));
        const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
        const __m512i nib = _mm512_and_si512(v, _mm512_set1_epi8(0x0f));
        return _mm512_shuffle_i64x2(nib, nib, _MM_SHUFFLE(3, 1, 2, 0));  // [r0 lo, r0 hi, r1 lo, r1 hi]
    } else {
        // r1 into the high half by a masked load (a load-port op, where vinserti64x4 would take port 5).
        const __m512i v = _mm512_mask_loadu_epi64(_mm512_castsi256_si512(avx512::loadu256(r0)), 0xf0, r1 - 32);
        return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
    }
}

// Per token and block: d_x, and the offset to take off the unsigned products: 128 (q8_0) or 8 (q4_0) times
// the sum of the block's activations.
void token_terms(const uint8_t* x, size_t xs, int64_t nb, int nt, int offset, std::vector<float>* dx,
                 std::vector<int32_t>* fix) {
    dx->resize(static_cast<size_t>(nt * nb));
    fix->resize(static_cast<size_t>(nt * nb));
    for (int m = 0; m < nt; ++m) {
        for (int64_t b = 0; b < nb; ++b) {
            const auto* blk = reinterpret_cast<const block_q8_0*>(x + m * xs) + b;
            (*dx)[m * nb + b] = fp16_to_fp32(blk->d);
            // sum(x) via sad of x + 128 against 0.
            const __m256i u = _mm256_xor_si256(avx512::loadu256(blk->qs), _mm256_set1_epi8(static_cast<char>(0x80)));
            const __m256i s = _mm256_sad_epu8(u, _mm256_setzero_si256());
            const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            const int64_t sum = _mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1) - 32 * 128;
            (*fix)[m * nb + b] = static_cast<int32_t>(offset * sum);
        }
    }
}

// Up to 16 rows (nr) x nt (< 16) tokens: y[m * ldy + n]. NT: nt when known at compile time (1), else 0.
template <bool Q4, int NT>
void strip_q8(const uint8_t* rows, size_t ws, const uint8_t* xp, size_t xs, int64_t nb, const float* dx,
              const int32_t* fix, int nt_, int nr, float* y, int64_t ldy) {
    constexpr size_t bs = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    const int nt = NT ? NT : nt_;
    const __m512i off = lane_offsets(ws);
    __m512 acc[amx_toks - 1];
    for (int m = 0; m < nt; ++m) acc[m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m512i wv[8];
        MNEMOS_UNROLL512
        for (int i = 0; i < 8; ++i) wv[i] = load_rows<Q4>(rows, ws, b, i, nr);
        const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(gather32(first_lanes(nr), off, rows + b * bs)));
        for (int m = 0; m < nt; ++m) {
            const __m512i xv =
                _mm512_broadcast_i64x4(avx512::loadu256(reinterpret_cast<const block_q8_0*>(xp + m * xs)[b].qs));
            __m512i p[8];
            MNEMOS_UNROLL512
            for (int i = 0; i < 8; ++i) p[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[i], xv);
            const __m512i isum = _mm512_sub_epi32(row_sums(p), _mm512_set1_epi32(fix[m * nb + b]));
            // As the AMX kernel: fma(float(isum) * d_w, d_x, acc).
            acc[m] =
                _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), dw), _mm512_set1_ps(dx[m * nb + b]), acc[m]);
        }
    }
    for (int m = 0; m < nt; ++m) _mm512_mask_storeu_ps(y + m * ldy, first_lanes(nr), acc[m]);
}

}  // namespace

template <bool Q4>
void tile_rows_q8(int64_t k, const void* w, size_t ws, const void* x, size_t xs, float* y, int64_t ldy, int64_t n_rows,
                  int64_t n_tok) {
    const auto* wp = static_cast<const uint8_t*>(w);
    const auto* xp = static_cast<const uint8_t*>(x);
    const int64_t nb = k / qk8_0;
    const int nt = static_cast<int>(std::min<int64_t>(n_tok, amx_toks - 1));
    if (nt < n_tok) tile_rows_q8<Q4>(k, w, ws, xp + nt * xs, xs, y + nt * ldy, ldy, n_rows, n_tok - nt);
    thread_local std::vector<float> dx;
    thread_local std::vector<int32_t> fix;
    token_terms(xp, xs, nb, nt, Q4 ? 8 : 128, &dx, &fix);
    for (int64_t r0 = 0; r0 < n_rows; r0 += amx_rows) {
        const int nr = static_cast<int>(std::min<int64_t>(amx_rows, n_rows - r0));
        if (nt == 1)
            strip_q8<Q4, 1>(wp + r0 * ws, ws, xp, xs, nb, dx.data(), fix.data(), 1, nr, y + r0, ldy);
        else
            strip_q8<Q4, 0>(wp + r0 * ws, ws, xp, xs, nb, dx.data(), fix.data(), nt, nr, y + r0, ldy);
    }
}

template void tile_rows_q8<false>(int64_t, const void*, size_t, const void*, size_t, float*, int64_t, int64_t, int64_t);
template void tile_rows_q8<true>(int64_t, const void*, size_t, const void*, size_t, float*, int64_t, int64_t, int64_t);

}  // namespace mnemos::kernels::amx

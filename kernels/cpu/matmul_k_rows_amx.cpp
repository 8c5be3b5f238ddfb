// Decode (fewer than amx_min_toks tokens) for q4_k / q6_k when AMX is in use, in AVX-512 VNNI but with the AMX
// kernel's arithmetic per output (matmul_k_amx.cpp): the exact integer sum of each sub-block, weighted by
// its scale in float sub-block after sub-block, then per 256-element block (d * isum - dmin * mins) * d_x
// added as there. (AMX tiles at one token store and reload C per sub-block and are latency-bound.) 16
// weight rows are the 16 lanes: vpdpbusd gives partial sums of several rows per vector, and a
// transpose-add tree leaves one row's sum per lane.
#include <algorithm>
#include <vector>

#include "kernels/cpu/matmul_k_amx.h"

namespace mnemos::kernels::amx {

namespace {

using avx512::loadu256;
using avx512::loadu512;

// Lane pairs of a and b summed, a's then b's: [a0 + a1, a2 + a3, ..., b14 + b15].
inline __m512i pair_sums(__m512i a, __m512i b) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    return _mm512_add_epi32(_mm512_permutex2var_epi32(a, even, b), _mm512_permutex2var_epi32(a, odd, b));
}

// v[i]: 8 partial sums of row 2i, then 8 of row 2i + 1. Returns lane n = the sum of row n.
inline __m512i row_sums8(const __m512i (&v)[8]) {
    return pair_sums(pair_sums(pair_sums(v[0], v[1]), pair_sums(v[2], v[3])),
                     pair_sums(pair_sums(v[4], v[5]), pair_sums(v[6], v[7])));
}

// v[i]: 4 partial sums of each of rows 4i..4i+3. Returns lane n = the sum of row n.
inline __m512i row_sums4(const __m512i (&v)[4]) { return pair_sums(pair_sums(v[0], v[1]), pair_sums(v[2], v[3])); }

// Row index n, or 0 for rows past nr (their lanes are computed from row 0 and never stored).
inline int row_or_0(int n, int nr) { return n < nr ? n : 0; }

// q4_k, one block b of 16 rows, nt tokens: isum[m] += scale-weighted sub-block sums, in sub-block order.
template <int NT>
void q4_k_block(const uint8_t* rows, size_t ws, int nr, const uint8_t* x, size_t xs, int nt_, int64_t b,
                const packed_k& s, __m512 (&isum)[amx_toks - 1]) {
    const int nt = NT ? NT : nt_;
    const __m512i n4 = _mm512_set1_epi8(0x0f);
    for (int c = 0; c < 4; ++c) {
        __m512i lo[8], hi[8];
        MNEMOS_UNROLL512
        for (int i = 0; i < 8; ++i) {
            const auto* b0 = reinterpret_cast<const block_q4_k*>(rows + row_or_0(2 * i, nr) * ws) + b;
            const auto* b1 = reinterpret_cast<const block_q4_k*>(rows + row_or_0(2 * i + 1, nr) * ws) + b;
            const __m512i q =
                _mm512_inserti64x4(_mm512_castsi256_si512(loadu256(b0->qs + 32 * c)), loadu256(b1->qs + 32 * c), 1);
            lo[i] = _mm512_and_si512(q, n4);
            hi[i] = _mm512_and_si512(_mm512_srli_epi16(q, 4), n4);
        }
        const __m512 sc_lo = _mm512_loadu_ps(&s.sc[(b * 8 + 2 * c) * 16]);
        const __m512 sc_hi = _mm512_loadu_ps(&s.sc[(b * 8 + 2 * c + 1) * 16]);
        for (int m = 0; m < nt; ++m) {
            const auto* xb = reinterpret_cast<const block_q8_k*>(x + m * xs) + b;
            const __m512i x_lo = _mm512_broadcast_i64x4(loadu256(xb->qs + 64 * c));
            const __m512i x_hi = _mm512_broadcast_i64x4(loadu256(xb->qs + 64 * c + 32));
            __m512i p[8], q[8];
            MNEMOS_UNROLL512
            for (int i = 0; i < 8; ++i) {
                p[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[i], x_lo);
                q[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi[i], x_hi);
            }
            isum[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(row_sums8(p)), sc_lo, isum[m]);
            isum[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(row_sums8(q)), sc_hi, isum[m]);
        }
    }
}

// q6_k: the 6-bit values (unsigned, 0..63) of one row's block b, elements 128h + 64 * hi .. + 63 (sub-blocks
// 8h + 4 * hi .. + 3, one per 128-bit lane).
inline __m512i q6_k_quarter(const block_q6_k* blk, int h, bool hi) {
    const __m512i n4 = _mm512_set1_epi8(0x0f), n30 = _mm512_set1_epi8(0x30);
    const __m512i ql = loadu512(blk->ql + 64 * h);
    const __m512i qh = _mm512_broadcast_i64x4(loadu256(blk->qh + 32 * h));
    if (!hi) {
        const __m512i sh = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        return _mm512_or_si512(_mm512_and_si512(ql, n4), _mm512_and_si512(_mm512_sllv_epi16(qh, sh), n30));
    }
    const __m512i sh = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    return _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), n4),
                           _mm512_and_si512(_mm512_srlv_epi16(qh, sh), n30));
}

// 4 x 4 transpose of 128-bit lanes: a[r] lane t -> out[t] lane r.
inline void transpose_128(const __m512i (&a)[4], __m512i (&out)[4]) {
    const __m512i t0 = _mm512_shuffle_i64x2(a[0], a[1], _MM_SHUFFLE(1, 0, 1, 0));  // a0.0 a0.1 a1.0 a1.1
    const __m512i t1 = _mm512_shuffle_i64x2(a[0], a[1], _MM_SHUFFLE(3, 2, 3, 2));  // a0.2 a0.3 a1.2 a1.3
    const __m512i t2 = _mm512_shuffle_i64x2(a[2], a[3], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i t3 = _mm512_shuffle_i64x2(a[2], a[3], _MM_SHUFFLE(3, 2, 3, 2));
    out[0] = _mm512_shuffle_i64x2(t0, t2, _MM_SHUFFLE(2, 0, 2, 0));  // a0.0 a1.0 a2.0 a3.0
    out[1] = _mm512_shuffle_i64x2(t0, t2, _MM_SHUFFLE(3, 1, 3, 1));
    out[2] = _mm512_shuffle_i64x2(t1, t3, _MM_SHUFFLE(2, 0, 2, 0));
    out[3] = _mm512_shuffle_i64x2(t1, t3, _MM_SHUFFLE(3, 1, 3, 1));
}

// q6_k, one block b of 16 rows, nt tokens: isum[m] += scale-weighted sub-block sums, in sub-block order.
template <int NT>
void q6_k_block(const uint8_t* rows, size_t ws, int nr, const uint8_t* x, size_t xs, int nt_, int64_t b,
                const packed_k& s, __m512 (&isum)[amx_toks - 1]) {
    const int nt = NT ? NT : nt_;
    for (int h = 0; h < 2; ++h) {
        for (int hi = 0; hi < 2; ++hi) {
            // wv[t][g]: sub-block 8h + 4hi + t of rows 4g..4g+3, one row per 128-bit lane.
            __m512i wv[4][4];
            MNEMOS_UNROLL512
            for (int g = 0; g < 4; ++g) {
                __m512i a[4], tr[4];
                MNEMOS_UNROLL512
                for (int r = 0; r < 4; ++r)
                    a[r] = q6_k_quarter(reinterpret_cast<const block_q6_k*>(rows + row_or_0(4 * g + r, nr) * ws) + b, h,
                                        hi);
                transpose_128(a, tr);
                MNEMOS_UNROLL512
                for (int t = 0; t < 4; ++t) wv[t][g] = tr[t];
            }
            MNEMOS_UNROLL512
            for (int t = 0; t < 4; ++t) {
                const int sb = 8 * h + 4 * hi + t;
                const __m512 sc = _mm512_loadu_ps(&s.sc[(b * 16 + sb) * 16]);
                for (int m = 0; m < nt; ++m) {
                    const auto* xb = reinterpret_cast<const block_q8_k*>(x + m * xs) + b;
                    const __m512i xv =
                        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xb->qs + 16 * sb)));
                    __m512i p[4];
                    MNEMOS_UNROLL512
                    for (int g = 0; g < 4; ++g) p[g] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[t][g], xv);
                    // sum((q - 32) * x) = sum(q * x) - 32 * bsums[sb]
                    const __m512i c = _mm512_sub_epi32(row_sums4(p), _mm512_set1_epi32(32 * xb->bsums[sb]));
                    isum[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c), sc, isum[m]);
                }
            }
        }
    }
}

// Up to 16 rows (nr) x nt (< 16) tokens over all nb blocks: y[m * ldy + n]. NT: nt when known (1), else 0.
template <ggml_type T, int NT>
void strip_k(const uint8_t* rows, size_t ws, int nr, const uint8_t* x, size_t xs, int nt_, int64_t nb,
             const packed_k& s, float* y, int64_t ldy) {
    const int nt = NT ? NT : nt_;
    __m512 acc[amx_toks - 1];
    for (int m = 0; m < nt; ++m) acc[m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m512 isum[amx_toks - 1];
        for (int m = 0; m < nt; ++m) isum[m] = _mm512_setzero_ps();
        if constexpr (T == ggml_type::q4_k)
            q4_k_block<NT>(rows, ws, nr, x, xs, nt, b, s, isum);
        else
            q6_k_block<NT>(rows, ws, nr, x, xs, nt, b, s, isum);
        const __m512 d = _mm512_loadu_ps(&s.d[b * 16]);
        for (int m = 0; m < nt; ++m) {
            const auto* xb = reinterpret_cast<const block_q8_k*>(x + m * xs) + b;
            __m512 t = _mm512_mul_ps(isum[m], d);
            if constexpr (T == ggml_type::q4_k) {
                __m512i mi = _mm512_setzero_si512();
                for (int j = 0; j < 8; ++j) {
                    int32_t pair;
                    std::memcpy(&pair, xb->bsums + 2 * j, 4);
                    mi = _mm512_dpwssd_epi32(mi, _mm512_loadu_si512(&s.mn[(b * 8 + j) * 16]), _mm512_set1_epi32(pair));
                }
                t = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mi), _mm512_loadu_ps(&s.dmin[b * 16]), t);
            }
            acc[m] = _mm512_fmadd_ps(t, _mm512_set1_ps(xb->d), acc[m]);
        }
    }
    for (int m = 0; m < nt; ++m) _mm512_mask_storeu_ps(y + m * ldy, first_lanes(nr), acc[m]);
}

}  // namespace

template <ggml_type T>
void tile_rows_k(int64_t k, const void* w, size_t ws, const void* x, size_t xs, float* y, int64_t ldy, int64_t n_rows,
                 int64_t n_tok) {
    const auto* wp = static_cast<const uint8_t*>(w);
    const auto* xp = static_cast<const uint8_t*>(x);
    const int64_t nb = k / qk_k;
    const int nt = static_cast<int>(std::min<int64_t>(n_tok, amx_toks - 1));
    if (nt < n_tok) tile_rows_k<T>(k, w, ws, xp + nt * xs, xs, y + nt * ldy, ldy, n_rows, n_tok - nt);
    thread_local packed_k scales;
    for (int64_t r0 = 0; r0 < n_rows; r0 += amx_rows) {
        const int nr = static_cast<int>(std::min<int64_t>(amx_rows, n_rows - r0));
        pack_k_scales<T>(wp + r0 * ws, ws, nb, nr, &scales);
        if (nt == 1)
            strip_k<T, 1>(wp + r0 * ws, ws, nr, xp, xs, 1, nb, scales, y + r0, ldy);
        else
            strip_k<T, 0>(wp + r0 * ws, ws, nr, xp, xs, nt, nb, scales, y + r0, ldy);
    }
}

template void tile_rows_k<ggml_type::q4_k>(int64_t, const void*, size_t, const void*, size_t, float*, int64_t, int64_t,
                                           int64_t);
template void tile_rows_k<ggml_type::q6_k>(int64_t, const void*, size_t, const void*, size_t, float*, int64_t, int64_t,
                                           int64_t);

}  // namespace mnemos::kernels::amx

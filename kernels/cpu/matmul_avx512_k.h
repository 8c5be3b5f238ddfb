#pragma once
// The q4_k / q6_k AVX-512 micro-kernels (q8_k activations), templated on the u8 x s8 dot step like the
// q8_0 ones in matmul_avx512.h, and shared by matmul_avx512.cpp (maddubs) and matmul_avx512vnni.cpp.
// Include only from those files, after matmul_avx512.h. Without VNNI: maddubs + madd with the 16-bit
// sub-block scales. With it: the vpdpbusd sums of two chunks packed to s16, then one madd with the scales.
#include "kernels/cpu/matmul_avx512.h"

namespace mnemos::kernels::avx512 {
namespace {

// An empty asm on the running sum: GCC would otherwise reassociate the integer adds of the unrolled chunk
// loop into a tree whose many partial products spill to the stack.
inline void keep_in_register(__m512i& v) { __asm__("" : "+v"(v)); }

// 16-bit lanes 0..15 = a, 16..31 = b.
inline __m512i set2x16_epi16(short a, short b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(a)), _mm256_set1_epi16(b), 1);
}

// 16-bit lanes 0..7 = a, 8..15 = b.
inline __m256i set2x8_epi16(short a, short b) {
    return _mm256_setr_epi16(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b);
}

// Per q4_k block and weight row: the sub-block scales as maddubs-pair multipliers, the mins and d / dmin.
struct q4_k_scales {
    __m512i sc[4];   // chunk c: 16-bit lanes 0..15 = sc[2c], 16..31 = sc[2c + 1]; VNNI: sc[0..1], see below
    __m256i mins;    // 16-bit lane t = mn[t / 2] (bsums are per 16, mins per 32 elements)
    __m512 d, dmin;  // broadcast
};

// 16-bit lanes: 128-bit lanes 0 and 1 = [a x4, b x4], lanes 2 and 3 = [c x4, d x4].
inline __m512i set4x4_epi16(short a, short b, short c, short d) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_setr_epi16(a, a, a, a, b, b, b, b, a, a, a, a, b, b, b, b)),
                              _mm256_setr_epi16(c, c, c, c, d, d, d, d, c, c, c, c, d, d, d, d), 1);
}

// VNNI (Exact) keeps the scales of chunk pair p (chunks 2p, 2p + 1) in sc[p] for packs_epi32 of the two
// chunks' vpdpbusd sums: 128-bit lanes 0, 1 = [sc[4p] x4, sc[4p + 2] x4], lanes 2, 3 = [sc[4p + 1] x4,
// sc[4p + 3] x4]. Otherwise sc[c] multiplies chunk c's maddubs pairs.
template <bool Exact>
inline void load_q4_k_scales(const block_q4_k* blk, q4_k_scales* out) {
    uint8_t sc[8], mn[8];
    unpack_q4_k_scales(blk->scales, sc, mn);
    int64_t sc64, mn64;
    std::memcpy(&sc64, sc, 8);
    std::memcpy(&mn64, mn, 8);
    const __m512i s16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(sc64)));
    if constexpr (Exact) {
        for (short p = 0; p < 2; ++p)
            out->sc[p] =
                _mm512_permutexvar_epi16(set4x4_epi16(static_cast<short>(4 * p), static_cast<short>(4 * p + 2),
                                                      static_cast<short>(4 * p + 1), static_cast<short>(4 * p + 3)),
                                         s16);
    } else {
        MNEMOS_UNROLL512
        for (int c = 0; c < 4; ++c)
            out->sc[c] =
                _mm512_permutexvar_epi16(set2x16_epi16(static_cast<short>(2 * c), static_cast<short>(2 * c + 1)), s16);
    }
    const __m256i m16 = _mm256_castsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(mn64)));
    const __m256i idx = _mm256_setr_epi16(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    out->mins = _mm256_permutexvar_epi16(idx, m16);
    out->d = _mm512_set1_ps(f16(blk->d));
    out->dmin = _mm512_set1_ps(f16(blk->dmin));
}

// The nibbles of chunk c of a q4_k block: 16-bit lanes 0..15 low nibbles (elements 64c..64c+31), 16..31
// high nibbles (64c+32..64c+63).
inline __m512i q4_k_chunk(const block_q4_k* blk, int c) {
    const __m512i q = _mm512_broadcast_i64x4(loadu256(blk->qs + 32 * c));
    return _mm512_and_si512(_mm512_srlv_epi16(q, set2x16_epi16(0, 4)), _mm512_set1_epi8(0x0f));
}

// VNNI: chunks 2p and 2p + 1 of block b. vpdpbusd sums of 4 products (<= 4 * 15 * 127, so s16 holds them)
// are packed to s16 and weighted by the sub-block scales with one madd.
template <class Dot, int RM, int RN>
inline void q4_k_pair_vnni(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t b, int p,
                           const q4_k_scales (&scl)[RM], __m512i (&isum)[RM][RN]) {
    __m512i w0[RM], w1[RM];
    MNEMOS_UNROLL512
    for (int r = 0; r < RM; ++r) {
        const auto* blk = reinterpret_cast<const block_q4_k*>(w + r * ws) + b;
        w0[r] = q4_k_chunk(blk, 2 * p);
        w1[r] = q4_k_chunk(blk, 2 * p + 1);
    }
    MNEMOS_UNROLL512
    for (int j = 0; j < RN; ++j) {
        const auto* xb = reinterpret_cast<const block_q8_k*>(x + j * xs) + b;
        const __m512i y0 = loadu512(xb->qs + 128 * p), y1 = loadu512(xb->qs + 128 * p + 64);
        MNEMOS_UNROLL512
        for (int r = 0; r < RM; ++r) {
            const __m512i zero = _mm512_setzero_si512();
            const __m512i d0 = Dot::step(zero, w0[r], y0), d1 = Dot::step(zero, w1[r], y1);
            isum[r][j] = _mm512_add_epi32(isum[r][j], _mm512_madd_epi16(_mm512_packs_epi32(d0, d1), scl[r].sc[p]));
            keep_in_register(isum[r][j]);
        }
    }
}

template <class Dot, int RM, int RN>
void micro_q4_k(int64_t k, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
    const int64_t nb = k / qk_k;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i shifts = set2x16_epi16(0, 4);  // low nibbles in the low half, high nibbles in the high half
    __m512 acc[RM][RN];
    MNEMOS_UNROLL512
    for (int r = 0; r < RM; ++r) {
        MNEMOS_UNROLL512
        for (int j = 0; j < RN; ++j) acc[r][j] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; ++b) {
        q4_k_scales scl[RM];
        MNEMOS_UNROLL512
        for (int r = 0; r < RM; ++r)
            load_q4_k_scales<Dot::exact>(reinterpret_cast<const block_q4_k*>(w + r * ws) + b, &scl[r]);
        __m512i isum[RM][RN];
        MNEMOS_UNROLL512
        for (int r = 0; r < RM; ++r) {
            MNEMOS_UNROLL512
            for (int j = 0; j < RN; ++j) isum[r][j] = _mm512_setzero_si512();
        }
        if constexpr (Dot::exact) {
            MNEMOS_UNROLL512
            for (int p = 0; p < 2; ++p) q4_k_pair_vnni<Dot, RM, RN>(w, ws, x, xs, b, p, scl, isum);
        } else {
            MNEMOS_UNROLL512
            for (int c = 0; c < 4; ++c) {
                // 32 bytes of qs hold elements 64c..64c+31 (low nibbles) and 64c+32..64c+63 (high nibbles).
                __m512i wq[RM];
                MNEMOS_UNROLL512
                for (int r = 0; r < RM; ++r) {
                    const auto* blk = reinterpret_cast<const block_q4_k*>(w + r * ws) + b;
                    const __m512i q = _mm512_broadcast_i64x4(loadu256(blk->qs + 32 * c));
                    wq[r] = _mm512_and_si512(_mm512_srlv_epi16(q, shifts), m4);
                }
                MNEMOS_UNROLL512
                for (int j = 0; j < RN; ++j) {
                    const auto* xb = reinterpret_cast<const block_q8_k*>(x + j * xs) + b;
                    const __m512i yv = loadu512(xb->qs + 64 * c);
                    MNEMOS_UNROLL512
                    for (int r = 0; r < RM; ++r) {
                        isum[r][j] = _mm512_add_epi32(isum[r][j],
                                                      _mm512_madd_epi16(_mm512_maddubs_epi16(wq[r], yv), scl[r].sc[c]));
                        keep_in_register(isum[r][j]);
                    }
                }
            }
        }
        MNEMOS_UNROLL512
        for (int j = 0; j < RN; ++j) {
            const auto* xb = reinterpret_cast<const block_q8_k*>(x + j * xs) + b;
            const __m256i bs = loadu256(xb->bsums);
            const __m512 dx = _mm512_set1_ps(xb->d);
            MNEMOS_UNROLL512
            for (int r = 0; r < RM; ++r) {
                // (d * isum - dmin * corr) * dx
                const __m512 corr = _mm512_zextps256_ps512(_mm256_cvtepi32_ps(_mm256_madd_epi16(scl[r].mins, bs)));
                const __m512 t =
                    _mm512_fmsub_ps(_mm512_cvtepi32_ps(isum[r][j]), scl[r].d, _mm512_mul_ps(corr, scl[r].dmin));
                acc[r][j] = _mm512_fmadd_ps(t, dx, acc[r][j]);
            }
        }
    }
    store_acc<RM, RN>(acc, y, ldy);
}

// ---------------------------------------------------------------------------
// q6_k weights x q8_k activations
// ---------------------------------------------------------------------------

// The 6-bit values (0..63) of elements 128h..128h+63 (lo) and 128h+64..128h+127 (hi) of a q6_k block.
inline void q6_k_half(const block_q6_k* blk, int h, __m512i* lo, __m512i* hi) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i m30 = _mm512_set1_epi8(0x30);
    const __m512i ql = loadu512(blk->ql + 64 * h);
    const __m512i qh = _mm512_broadcast_i64x4(loadu256(blk->qh + 32 * h));
    // qh bits 0-1 / 2-3 (elements +0 / +32) to bits 4-5; bits 4-5 / 6-7 (elements +64 / +96) likewise.
    const __m512i hi01 = _mm512_sllv_epi16(qh, set2x16_epi16(4, 2));
    const __m512i hi23 = _mm512_srlv_epi16(qh, set2x16_epi16(0, 2));
    *lo = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(hi01, m30));
    *hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_and_si512(hi23, m30));
}

// 16-bit lanes of a 256-bit half: [a x4, b x4, a + 1 x4, b + 1 x4] (128-bit lanes L, L + 1).
inline __m256i set4x2x4_epi16(short a, short b) {
    const short a1 = static_cast<short>(a + 1), b1 = static_cast<short>(b + 1);
    return _mm256_setr_epi16(a, a, a, a, b, b, b, b, a1, a1, a1, a1, b1, b1, b1, b1);
}

// VNNI (Dot::exact): per half h, the vpdpbusd sums of lo and hi (<= 4 * 63 * 127, s16 holds them) packed to
// s16 and weighted with one madd: scv[r][h] 128-bit lane L = [scales[8h + L] x4, scales[8h + 4 + L] x4].
// Otherwise scv[r][i] multiplies the maddubs pairs of elements 64i..64i+63: lane t = scales[4i + t / 8].
template <class Dot, int RM, int RN>
void micro_q6_k(int64_t k, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
    const int64_t nb = k / qk_k;
    __m512 acc[RM][RN];
    MNEMOS_UNROLL512
    for (int r = 0; r < RM; ++r) {
        MNEMOS_UNROLL512
        for (int j = 0; j < RN; ++j) acc[r][j] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; ++b) {
        __m512i scv[RM][4];  // see above
        __m256i sc_all[RM];  // lane t = scales[t]
        float dw[RM];
        MNEMOS_UNROLL512
        for (int r = 0; r < RM; ++r) {
            const auto* blk = reinterpret_cast<const block_q6_k*>(w + r * ws) + b;
            sc_all[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales)));
            const __m512i s16 = _mm512_castsi256_si512(sc_all[r]);
            if constexpr (Dot::exact) {
                for (short h = 0; h < 2; ++h)
                    scv[r][h] = _mm512_permutexvar_epi16(
                        _mm512_inserti64x4(_mm512_castsi256_si512(set4x2x4_epi16(static_cast<short>(8 * h),
                                                                                 static_cast<short>(8 * h + 4))),
                                           set4x2x4_epi16(static_cast<short>(8 * h + 2), static_cast<short>(8 * h + 6)),
                                           1),
                        s16);
            }
            MNEMOS_UNROLL512
            for (int i = 0; i < (Dot::exact ? 0 : 4); ++i) {
                const short i4 = static_cast<short>(4 * i);
                const __m512i idx =
                    _mm512_inserti64x4(_mm512_castsi256_si512(set2x8_epi16(i4, static_cast<short>(i4 + 1))),
                                       set2x8_epi16(static_cast<short>(i4 + 2), static_cast<short>(i4 + 3)), 1);
                scv[r][i] = _mm512_permutexvar_epi16(idx, s16);
            }
            dw[r] = f16(blk->d);
        }
        __m512i isum[RM][RN];
        MNEMOS_UNROLL512
        for (int r = 0; r < RM; ++r) {
            MNEMOS_UNROLL512
            for (int j = 0; j < RN; ++j) isum[r][j] = _mm512_setzero_si512();
        }
        MNEMOS_UNROLL512
        for (int h = 0; h < 2; ++h) {
            __m512i lo[RM], hi[RM];
            MNEMOS_UNROLL512
            for (int r = 0; r < RM; ++r)
                q6_k_half(reinterpret_cast<const block_q6_k*>(w + r * ws) + b, h, &lo[r], &hi[r]);
            MNEMOS_UNROLL512
            for (int j = 0; j < RN; ++j) {
                const auto* xb = reinterpret_cast<const block_q8_k*>(x + j * xs) + b;
                const __m512i y0 = loadu512(xb->qs + 128 * h);
                const __m512i y1 = loadu512(xb->qs + 128 * h + 64);
                MNEMOS_UNROLL512
                for (int r = 0; r < RM; ++r) {
                    if constexpr (Dot::exact) {
                        const __m512i zero = _mm512_setzero_si512();
                        const __m512i pk = _mm512_packs_epi32(Dot::step(zero, lo[r], y0), Dot::step(zero, hi[r], y1));
                        isum[r][j] = _mm512_add_epi32(isum[r][j], _mm512_madd_epi16(pk, scv[r][h]));
                    } else {
                        const __m512i p0 = _mm512_madd_epi16(_mm512_maddubs_epi16(lo[r], y0), scv[r][2 * h]);
                        const __m512i p1 = _mm512_madd_epi16(_mm512_maddubs_epi16(hi[r], y1), scv[r][2 * h + 1]);
                        isum[r][j] = _mm512_add_epi32(isum[r][j], _mm512_add_epi32(p0, p1));
                    }
                    keep_in_register(isum[r][j]);
                }
            }
        }
        MNEMOS_UNROLL512
        for (int j = 0; j < RN; ++j) {
            const auto* xb = reinterpret_cast<const block_q8_k*>(x + j * xs) + b;
            const __m256i bs = loadu256(xb->bsums);
            MNEMOS_UNROLL512
            for (int r = 0; r < RM; ++r) {
                // The stored values are q + 32: subtract 32 * sum_t sc[t] * bsums[t].
                const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc_all[r], bs), 5);
                const __m512i tot = _mm512_sub_epi32(isum[r][j], _mm512_zextsi256_si512(corr));
                acc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot), _mm512_set1_ps(dw[r] * xb->d), acc[r][j]);
            }
        }
    }
    store_acc<RM, RN>(acc, y, ldy);
}

// The micro-kernels of micro_q4_k / micro_q6_k as tables for tile(), per dot step.
template <class Dot>
struct k_kernels {
    template <int RM, int RN>
    struct q4_k {
        static constexpr micro_fn run = micro_q4_k<Dot, RM, RN>;
    };
    template <int RM, int RN>
    struct q6_k {
        static constexpr micro_fn run = micro_q6_k<Dot, RM, RN>;
    };
};

}  // namespace
}  // namespace mnemos::kernels::avx512

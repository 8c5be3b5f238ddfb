// AVX2/FMA register-blocked micro-kernels for matmul: each computes a block of
// RM weight rows x RN activation rows over the full k, keeping RM*RN
// accumulators in registers. Integer products use maddubs (u8 x s8 -> s16
// pairs) and madd (s16 pairs -> s32); per-block scales are applied in float.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/internal.h"

namespace mnemos::kernels {

// GCC at -O2 keeps short fixed-count loops rolled, which sends the register-blocked accumulators
// to the stack; these loops must unroll completely.
#define MNEMOS_UNROLL _Pragma("GCC unroll 16")

namespace {

using micro_fn = void (*)(int64_t k, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy);

using avx2::hsum;

inline __m256i loadu256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline float f16(uint16_t h) { return _cvtsh_ss(h); }

template <int RM, int RN>
inline void store_acc(const __m256 (&acc)[RM][RN], float* y, int64_t ldy) {
    MNEMOS_UNROLL
    for (int j = 0; j < RN; ++j) MNEMOS_UNROLL
    for (int r = 0; r < RM; ++r) y[j * ldy + r] = hsum(acc[r][j]);
}

// ---------------------------------------------------------------------------
// f32 / f16 / bf16 weights x f32 activations
// ---------------------------------------------------------------------------

template <ggml_type WT>
inline __m256 load_w8(const uint8_t* row, int64_t i) {
    if constexpr (WT == ggml_type::f32) {
        return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
    } else if constexpr (WT == ggml_type::f16) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
    } else {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
}

template <ggml_type WT>
inline float scalar_w(const uint8_t* row, int64_t i) {
    if constexpr (WT == ggml_type::f32)
        return reinterpret_cast<const float*>(row)[i];
    else if constexpr (WT == ggml_type::f16)
        return fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[i]);
    else
        return bf16_to_fp32(reinterpret_cast<const uint16_t*>(row)[i]);
}

template <ggml_type WT, int RM, int RN>
void micro_float(int64_t k, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
    __m256 acc[RM][RN];
    MNEMOS_UNROLL
    for (int r = 0; r < RM; ++r) MNEMOS_UNROLL
    for (int j = 0; j < RN; ++j) acc[r][j] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 xv[RN];
        MNEMOS_UNROLL
        for (int j = 0; j < RN; ++j) xv[j] = _mm256_loadu_ps(reinterpret_cast<const float*>(x + j * xs) + i);
        MNEMOS_UNROLL
        for (int r = 0; r < RM; ++r) {
            const __m256 wv = load_w8<WT>(w + r * ws, i);
            MNEMOS_UNROLL
            for (int j = 0; j < RN; ++j) acc[r][j] = _mm256_fmadd_ps(wv, xv[j], acc[r][j]);
        }
    }
    MNEMOS_UNROLL
    for (int j = 0; j < RN; ++j) {
        const float* xr = reinterpret_cast<const float*>(x + j * xs);
        MNEMOS_UNROLL
        for (int r = 0; r < RM; ++r) {
            float s = hsum(acc[r][j]);
            for (int64_t t = i; t < k; ++t) s += scalar_w<WT>(w + r * ws, t) * xr[t];
            y[j * ldy + r] = s;
        }
    }
}

// ---------------------------------------------------------------------------
// q8_0 / q4_0 weights x q8_0 activations
// ---------------------------------------------------------------------------

template <bool Q4, int RM, int RN>
void micro_q8_0(int64_t k, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
    const int64_t nb = k / qk8_0;
    const size_t wbs = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc[RM][RN];
    MNEMOS_UNROLL
    for (int r = 0; r < RM; ++r) MNEMOS_UNROLL
    for (int j = 0; j < RN; ++j) acc[r][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m256i wq[RM], wa[RM];
        __m256 dw[RM];
        MNEMOS_UNROLL
        for (int r = 0; r < RM; ++r) {
            const uint8_t* blk = w + r * ws + b * wbs;
            uint16_t d;
            std::memcpy(&d, blk, 2);
            if constexpr (Q4) {
                const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
                const __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
                wq[r] = _mm256_sub_epi8(v, eight);
            } else {
                wq[r] = loadu256(blk + 2);
            }
            wa[r] = _mm256_sign_epi8(wq[r], wq[r]);
            dw[r] = _mm256_set1_ps(f16(d));
        }
        MNEMOS_UNROLL
        for (int j = 0; j < RN; ++j) {
            const uint8_t* xb = x + j * xs + b * sizeof(block_q8_0);
            uint16_t dxh;
            std::memcpy(&dxh, xb, 2);
            const __m256 dx = _mm256_set1_ps(f16(dxh));
            const __m256i yv = loadu256(xb + 2);
            MNEMOS_UNROLL
            for (int r = 0; r < RM; ++r) {
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wa[r], _mm256_sign_epi8(yv, wq[r])), ones);
                acc[r][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dx), acc[r][j]);
            }
        }
    }
    store_acc<RM, RN>(acc, y, ldy);
}

// ---------------------------------------------------------------------------
// q4_k weights x q8_k activations
// ---------------------------------------------------------------------------

// Shuffle masks that broadcast 16-bit element e of each 128-bit lane.
inline __m256i bcast16_mask(int e_lo, int e_hi) {
    const char a = static_cast<char>(2 * e_lo), b = static_cast<char>(2 * e_lo + 1);
    const char c = static_cast<char>(2 * e_hi), d = static_cast<char>(2 * e_hi + 1);
    return _mm256_setr_epi8(a, b, a, b, a, b, a, b, a, b, a, b, a, b, a, b, c, d, c, d, c, d, c, d, c, d, c, d, c, d, c,
                            d);
}

template <int RM, int RN>
void micro_q4_k(int64_t k, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
    const int64_t nb = k / qk_k;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    // Lane t of the min vector = mn[t / 2] (bsums are per 16, mins per 32 elements).
    const __m256i mins_mask = _mm256_setr_epi8(0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10,
                                               11, 12, 13, 12, 13, 14, 15, 14, 15);
    __m256 acc[RM][RN];
    MNEMOS_UNROLL
    for (int r = 0; r < RM; ++r) MNEMOS_UNROLL
    for (int j = 0; j < RN; ++j) acc[r][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        alignas(32) __m256i scv[RM][8];
        __m256i mins[RM];
        float dw[RM], dmw[RM];
        MNEMOS_UNROLL
        for (int r = 0; r < RM; ++r) {
            const auto* blk = reinterpret_cast<const block_q4_k*>(w + r * ws) + b;
            uint8_t sc[8], mn[8];
            unpack_q4_k_scales(blk->scales, sc, mn);
            int64_t sc64, mn64;
            std::memcpy(&sc64, sc, 8);
            std::memcpy(&mn64, mn, 8);
            const __m256i s2 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(sc64)));
            MNEMOS_UNROLL
            for (int s = 0; s < 8; ++s) scv[r][s] = _mm256_shuffle_epi8(s2, bcast16_mask(s, s));
            const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(mn64));
            mins[r] = _mm256_shuffle_epi8(_mm256_set_m128i(_mm_unpackhi_epi64(m16, m16), m16), mins_mask);
            dw[r] = f16(blk->d);
            dmw[r] = f16(blk->dmin);
        }
        __m256i isum[RM][RN];
        MNEMOS_UNROLL
        for (int r = 0; r < RM; ++r) MNEMOS_UNROLL
        for (int j = 0; j < RN; ++j) isum[r][j] = _mm256_setzero_si256();
        MNEMOS_UNROLL
        for (int c = 0; c < 4; ++c) {
            __m256i lo[RM], hi[RM];
            MNEMOS_UNROLL
            for (int r = 0; r < RM; ++r) {
                const auto* blk = reinterpret_cast<const block_q4_k*>(w + r * ws) + b;
                const __m256i q = loadu256(blk->qs + 32 * c);
                lo[r] = _mm256_and_si256(q, m4);
                hi[r] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            }
            MNEMOS_UNROLL
            for (int j = 0; j < RN; ++j) {
                const auto* xb = reinterpret_cast<const block_q8_k*>(x + j * xs) + b;
                const __m256i y0 = loadu256(xb->qs + 64 * c);
                const __m256i y1 = loadu256(xb->qs + 64 * c + 32);
                MNEMOS_UNROLL
                for (int r = 0; r < RM; ++r) {
                    const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo[r], y0), scv[r][2 * c]);
                    const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi[r], y1), scv[r][2 * c + 1]);
                    isum[r][j] = _mm256_add_epi32(isum[r][j], _mm256_add_epi32(p0, p1));
                }
            }
        }
        MNEMOS_UNROLL
        for (int j = 0; j < RN; ++j) {
            const auto* xb = reinterpret_cast<const block_q8_k*>(x + j * xs) + b;
            const __m256i bs = loadu256(xb->bsums);
            MNEMOS_UNROLL
            for (int r = 0; r < RM; ++r) {
                const __m256 corr = _mm256_cvtepi32_ps(_mm256_madd_epi16(mins[r], bs));
                acc[r][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][j]), _mm256_set1_ps(dw[r] * xb->d), acc[r][j]);
                acc[r][j] = _mm256_fnmadd_ps(corr, _mm256_set1_ps(dmw[r] * xb->d), acc[r][j]);
            }
        }
    }
    store_acc<RM, RN>(acc, y, ldy);
}

// ---------------------------------------------------------------------------
// q6_k weights x q8_k activations
// ---------------------------------------------------------------------------

// The 6-bit values (0..63) of group g (elements 32g..32g+31) of a q6_k block.
template <int G>
inline __m256i q6_group(const block_q6_k* blk, __m256i m4, __m256i m30) {
    constexpr int h = G / 4, q = G % 4;
    const __m256i ql = loadu256(blk->ql + 64 * h + 32 * (q & 1));
    const __m256i qh = loadu256(blk->qh + 32 * h);
    const __m256i lo = q < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
    __m256i hi;
    if constexpr (2 * q < 4)
        hi = _mm256_slli_epi16(qh, 4 - 2 * q);
    else if constexpr (2 * q == 4)
        hi = qh;
    else
        hi = _mm256_srli_epi16(qh, 2 * q - 4);
    return _mm256_or_si256(lo, _mm256_and_si256(hi, m30));
}

template <int RM, int RN, int G>
inline void q6_k_group_step(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t b,
                            const __m256i (&scv)[RM][8], __m256i (&isum)[RM][RN], __m256i m4, __m256i m30) {
    __m256i wq[RM];
    MNEMOS_UNROLL
    for (int r = 0; r < RM; ++r) wq[r] = q6_group<G>(reinterpret_cast<const block_q6_k*>(w + r * ws) + b, m4, m30);
    MNEMOS_UNROLL
    for (int j = 0; j < RN; ++j) {
        const auto* xb = reinterpret_cast<const block_q8_k*>(x + j * xs) + b;
        const __m256i yv = loadu256(xb->qs + 32 * G);
        MNEMOS_UNROLL
        for (int r = 0; r < RM; ++r)
            isum[r][j] = _mm256_add_epi32(isum[r][j], _mm256_madd_epi16(_mm256_maddubs_epi16(wq[r], yv), scv[r][G]));
    }
}

template <int RM, int RN>
void micro_q6_k(int64_t k, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
    const int64_t nb = k / qk_k;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m30 = _mm256_set1_epi8(0x30);
    __m256 acc[RM][RN];
    MNEMOS_UNROLL
    for (int r = 0; r < RM; ++r) MNEMOS_UNROLL
    for (int j = 0; j < RN; ++j) acc[r][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        alignas(32) __m256i scv[RM][8];
        __m256i sc_all[RM];
        float dw[RM];
        MNEMOS_UNROLL
        for (int r = 0; r < RM; ++r) {
            const auto* blk = reinterpret_cast<const block_q6_k*>(w + r * ws) + b;
            const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales));
            sc_all[r] = _mm256_cvtepi8_epi16(s8);  // lane t: scale of elements 16t..16t+15
            const __m256i s_lo = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(s8));
            const __m256i s_hi = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_unpackhi_epi64(s8, s8)));
            MNEMOS_UNROLL
            for (int g = 0; g < 4; ++g) {
                const __m256i mask = bcast16_mask(2 * g, 2 * g + 1);
                scv[r][g] = _mm256_shuffle_epi8(s_lo, mask);
                scv[r][g + 4] = _mm256_shuffle_epi8(s_hi, mask);
            }
            dw[r] = f16(blk->d);
        }
        __m256i isum[RM][RN];
        MNEMOS_UNROLL
        for (int r = 0; r < RM; ++r) MNEMOS_UNROLL
        for (int j = 0; j < RN; ++j) isum[r][j] = _mm256_setzero_si256();
        q6_k_group_step<RM, RN, 0>(w, ws, x, xs, b, scv, isum, m4, m30);
        q6_k_group_step<RM, RN, 1>(w, ws, x, xs, b, scv, isum, m4, m30);
        q6_k_group_step<RM, RN, 2>(w, ws, x, xs, b, scv, isum, m4, m30);
        q6_k_group_step<RM, RN, 3>(w, ws, x, xs, b, scv, isum, m4, m30);
        q6_k_group_step<RM, RN, 4>(w, ws, x, xs, b, scv, isum, m4, m30);
        q6_k_group_step<RM, RN, 5>(w, ws, x, xs, b, scv, isum, m4, m30);
        q6_k_group_step<RM, RN, 6>(w, ws, x, xs, b, scv, isum, m4, m30);
        q6_k_group_step<RM, RN, 7>(w, ws, x, xs, b, scv, isum, m4, m30);
        MNEMOS_UNROLL
        for (int j = 0; j < RN; ++j) {
            const auto* xb = reinterpret_cast<const block_q8_k*>(x + j * xs) + b;
            const __m256i bs = loadu256(xb->bsums);
            MNEMOS_UNROLL
            for (int r = 0; r < RM; ++r) {
                // The stored values are q + 32: subtract 32 * sum_t sc[t] * bsums[t].
                const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc_all[r], bs), 5);
                const __m256i tot = _mm256_sub_epi32(isum[r][j], corr);
                acc[r][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot), _mm256_set1_ps(dw[r] * xb->d), acc[r][j]);
            }
        }
    }
    store_acc<RM, RN>(acc, y, ldy);
}

// ---------------------------------------------------------------------------
// Tiling over a block of rows x tokens
// ---------------------------------------------------------------------------

template <template <int, int> class K>
struct micro_table {
    micro_fn fn[4][4] = {
        {K<1, 1>::run, K<1, 2>::run, K<1, 3>::run, K<1, 4>::run},
        {K<2, 1>::run, K<2, 2>::run, K<2, 3>::run, K<2, 4>::run},
        {K<3, 1>::run, K<3, 2>::run, K<3, 3>::run, K<3, 4>::run},
        {K<4, 1>::run, K<4, 2>::run, K<4, 3>::run, K<4, 4>::run},
    };
};

template <int RM, int RN>
struct k_f32 {
    static constexpr micro_fn run = micro_float<ggml_type::f32, RM, RN>;
};
template <int RM, int RN>
struct k_f16 {
    static constexpr micro_fn run = micro_float<ggml_type::f16, RM, RN>;
};
template <int RM, int RN>
struct k_bf16 {
    static constexpr micro_fn run = micro_float<ggml_type::bf16, RM, RN>;
};
template <int RM, int RN>
struct k_q8_0 {
    static constexpr micro_fn run = micro_q8_0<false, RM, RN>;
};
template <int RM, int RN>
struct k_q4_0 {
    static constexpr micro_fn run = micro_q8_0<true, RM, RN>;
};
template <int RM, int RN>
struct k_q4_k {
    static constexpr micro_fn run = micro_q4_k<RM, RN>;
};
template <int RM, int RN>
struct k_q6_k {
    static constexpr micro_fn run = micro_q6_k<RM, RN>;
};

// Runs the micro-kernels of table K over n_rows x n_tok in blocks of (at most) RM x RN: tokens outer, so RN
// activation rows stay in L1 while the tile's weight rows pass.
template <template <int, int> class K, int RM, int RN>
void tile(int64_t k, const void* w, size_t ws, const void* x, size_t xs, float* y, int64_t ldy, int64_t n_rows,
          int64_t n_tok) {
    static const micro_table<K> table;
    const auto* wp = static_cast<const uint8_t*>(w);
    const auto* xp = static_cast<const uint8_t*>(x);
    for (int64_t j0 = 0; j0 < n_tok; j0 += RN) {
        const int nj = static_cast<int>(std::min<int64_t>(RN, n_tok - j0));
        for (int64_t r0 = 0; r0 < n_rows; r0 += RM) {
            const int nr = static_cast<int>(std::min<int64_t>(RM, n_rows - r0));
            table.fn[nr - 1][nj - 1](k, wp + r0 * ws, ws, xp + j0 * xs, xs, y + j0 * ldy + r0, ldy);
        }
    }
}

}  // namespace

tile_fn tile_kernel_avx2(ggml_type wt) {
    switch (wt) {
        case ggml_type::f32:
            return tile<k_f32, 4, 3>;
        case ggml_type::f16:
            return tile<k_f16, 4, 3>;
        case ggml_type::bf16:
            return tile<k_bf16, 4, 3>;
        case ggml_type::q8_0:
            return tile<k_q8_0, 4, 4>;
        case ggml_type::q4_0:
            return tile<k_q4_0, 4, 4>;
        case ggml_type::q4_k:
            return tile<k_q4_k, 4, 4>;
        case ggml_type::q6_k:
            return tile<k_q6_k, 2, 4>;
        default:
            return nullptr;
    }
}

float vec_dot_avx2(ggml_type wt, int64_t n, const void* w, const void* x) {
    const tile_fn fn = tile_kernel_avx2(wt);
    if (!fn) return vec_dot_ref(wt, n, w, x);
    float out = 0.0f;
    fn(n, w, 0, x, 0, &out, 1, 1, 1);
    return out;
}

}  // namespace mnemos::kernels

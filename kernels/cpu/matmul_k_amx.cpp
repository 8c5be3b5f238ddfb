// AMX-INT8 matmul tiles for q4_k / q6_k weights x q8_k activations (prefill). Per sub-block (32 elements
// of q4_k, 16 of q6_k; the elements that share a scale), one tdpbssd computes the exact int32 dot products
// of 16 tokens x 16 weight rows; they are weighted by the rows' sub-block scales in float (exact: every
// partial sum stays below 2^24) and, per 256-element block, scaled by d_w * d_x; q4_k subtracts
// dmin * sum(mins * bsums) as the reference does. Weights are repacked per 16-row strip into the VNNI
// layout as signed values (q4_k: the nibbles; q6_k: q - 32) by gathers; activations load straight from
// their q8_k rows. Partial strips and groups are padded (rows) or configured shorter (tokens).
#include "kernels/cpu/matmul_k_amx.h"

#include <algorithm>
#include <vector>

namespace mnemos::kernels {

namespace {

using namespace amx;

// The values of block b of 16 rows (nr present: rm) as B tiles: sub-block s, row i = elements 4i..4i+3.
void pack_q4_k_values(const uint8_t* blk, __m512i off, __mmask16 rm, int64_t b, packed_k* p) {
    // Sub-block s = 2c (+1): the low (high) nibbles of qs[32c..32c+31].
    const __m512i n4 = _mm512_set1_epi8(0x0f);
    for (int c = 0; c < 4; ++c) {
        for (int i = 0; i < 8; ++i) {
            const __m512i q = gather32(rm, off, blk + 16 + 32 * c + 4 * i);
            _mm512_storeu_si512(&p->b[((b * 8 + 2 * c) * 8 + i) * 64], _mm512_and_si512(q, n4));
            _mm512_storeu_si512(&p->b[((b * 8 + 2 * c + 1) * 8 + i) * 64],
                                _mm512_and_si512(_mm512_srli_epi16(q, 4), n4));
        }
    }
}

void pack_q6_k_values(const uint8_t* blk, __m512i off, __mmask16 rm, int64_t b, packed_k* p) {
    // Element e = 128h + 32q + l: ql[64h + 32(q & 1) + l] (low nibble for q < 2), qh[32h + l] bits 2q..2q+1.
    const __m512i n4 = _mm512_set1_epi8(0x0f), n2 = _mm512_set1_epi8(0x03), k32 = _mm512_set1_epi8(32);
    for (int h = 0; h < 2; ++h) {
        for (int l0 = 0; l0 < 32; l0 += 4) {
            const __m512i qh = gather32(rm, off, blk + 128 + 32 * h + l0);
            for (int q1 = 0; q1 < 2; ++q1) {
                const __m512i ql = gather32(rm, off, blk + 64 * h + 32 * q1 + l0);
                for (int q = q1; q < 4; q += 2) {
                    const __m512i lo =
                        q < 2 ? _mm512_and_si512(ql, n4) : _mm512_and_si512(_mm512_srli_epi16(ql, 4), n4);
                    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(qh, 2 * q), n2);
                    const __m512i v = _mm512_sub_epi8(_mm512_or_si512(lo, _mm512_slli_epi16(hi, 4)), k32);
                    // Elements 128h + 32q + l0..l0+3: sub-block (128h + 32q + l0) / 16, B row (l0 % 16) / 4.
                    const int s = 8 * h + 2 * q + l0 / 16;
                    _mm512_storeu_si512(&p->b[((b * 16 + s) * 4 + (l0 % 16) / 4) * 64], v);
                }
            }
        }
    }
}

// nr (1..16): the rows present; the others pack as 0.
template <ggml_type T>
void pack_k(const uint8_t* w, size_t ws, int64_t nb, int nr, packed_k* p) {
    using F = k_format<T>;
    pack_k_scales<T>(w, ws, nb, nr, p);
    p->b.resize(static_cast<size_t>(nb) * F::n_sub * F::b_bytes);
    const __m512i off = lane_offsets(ws);
    const __mmask16 rm = first_lanes(nr);
    for (int64_t b = 0; b < nb; ++b) {
        if constexpr (F::q4)
            pack_q4_k_values(w + b * F::block_bytes, off, rm, b, p);
        else
            pack_q6_k_values(w + b * F::block_bytes, off, rm, b, p);
    }
}

// isum[m] += (C[m] as float) * sc for m < nt: C as stored from a tile, sc the rows' scales of its sub-block.
inline void weigh(const int32_t* c, __m512 sc, int nt, __m512 (&isum)[amx_toks]) {
    MNEMOS_UNROLL512
    for (int m = 0; m < nt; ++m)
        isum[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * m)), sc, isum[m]);
}

// The sub-block sums of block b, weighted by the sub-block scales, for 16 tokens x 16 rows.
template <ggml_type T>
void block_sums(const uint8_t* x, size_t xs, const packed_k& p, int64_t b, int nt, __m512 (&isum)[amx_toks]) {
    using F = k_format<T>;
    alignas(64) int32_t c[2][amx_toks * amx_rows];
    const uint8_t* xq = x + b * sizeof(block_q8_k) + offsetof(block_q8_k, qs);
    for (int s = 0; s < F::n_sub; s += 2) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_loadd(2, xq + s * F::sub, xs);
        _tile_loadd(3, xq + (s + 1) * F::sub, xs);
        _tile_loadd(4, &p.b[(b * F::n_sub + s) * F::b_bytes], 64);
        _tile_loadd(5, &p.b[(b * F::n_sub + s + 1) * F::b_bytes], 64);
        _tile_dpbssd(0, 2, 4);
        _tile_dpbssd(1, 3, 5);
        _tile_stored(0, c[0], 64);
        _tile_stored(1, c[1], 64);
        weigh(c[0], _mm512_loadu_ps(&p.sc[(b * F::n_sub + s) * 16]), nt, isum);
        weigh(c[1], _mm512_loadu_ps(&p.sc[(b * F::n_sub + s + 1) * 16]), nt, isum);
    }
}

// nt tokens x nr rows over all nb blocks: y[m * ldy + n]. Full: nt == 16 (the loops over tokens unroll).
template <ggml_type T, bool Full>
void group_k(const uint8_t* x, size_t xs, const packed_k& p, int64_t nb, float* y, int64_t ldy, int nt_, int nr) {
    const int nt = Full ? amx_toks : nt_;
    alignas(64) float acc[amx_toks][amx_rows] = {};
    const __m512i tok_off = lane_offsets(xs);
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* xb = x + b * sizeof(block_q8_k);
        alignas(64) float dx[amx_toks];
        _mm512_store_ps(dx, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), first_lanes(nt), tok_off, xb, 1));
        __m512 isum[amx_toks];
        for (auto& v : isum) v = _mm512_setzero_ps();
        block_sums<T>(x, xs, p, b, nt, isum);
        const __m512 d = _mm512_loadu_ps(&p.d[b * 16]);
        for (int m = 0; m < nt; ++m) {
            __m512 t = _mm512_mul_ps(isum[m], d);
            if constexpr (k_format<T>::q4) {
                // - dmin * sum_j mn[j] * (bsums[2j] + bsums[2j + 1])
                const auto* bs = reinterpret_cast<const int16_t*>(xb + m * xs + offsetof(block_q8_k, bsums));
                __m512i mi = _mm512_setzero_si512();
                for (int j = 0; j < 8; ++j) {
                    int32_t pair;
                    std::memcpy(&pair, bs + 2 * j, 4);
                    mi = _mm512_dpwssd_epi32(mi, _mm512_loadu_si512(&p.mn[(b * 8 + j) * 16]), _mm512_set1_epi32(pair));
                }
                t = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mi), _mm512_loadu_ps(&p.dmin[b * 16]), t);
            }
            _mm512_store_ps(acc[m], _mm512_fmadd_ps(t, _mm512_set1_ps(dx[m]), _mm512_load_ps(acc[m])));
        }
    }
    for (int m = 0; m < nt; ++m) _mm512_mask_storeu_ps(y + m * ldy, first_lanes(nr), _mm512_load_ps(acc[m]));
}

// Any shape, as tile_amx in matmul_amx.cpp: every output computed the same way whatever the tile.
template <ggml_type T>
void tile_amx_k(int64_t k, const void* w, size_t ws, const void* x, size_t xs, float* y, int64_t ldy, int64_t n_rows,
                int64_t n_tok) {
    if (n_tok < amx_min_toks) return tile_rows_k<T>(k, w, ws, x, xs, y, ldy, n_rows, n_tok);  // decode
    const auto* wp = static_cast<const uint8_t*>(w);
    const auto* xp = static_cast<const uint8_t*>(x);
    const int64_t nb = k / qk_k;
    tile_state tiles{k_format<T>::sub};
    thread_local packed_k strip;
    for (int64_t r0 = 0; r0 < n_rows; r0 += amx_rows) {
        const int nr = static_cast<int>(std::min<int64_t>(amx_rows, n_rows - r0));
        pack_k<T>(wp + r0 * ws, ws, nb, nr, &strip);
        for (int64_t t0 = 0; t0 < n_tok; t0 += amx_toks) {
            const int nt = static_cast<int>(std::min<int64_t>(amx_toks, n_tok - t0));
            tiles.use(nt);
            if (nt == amx_toks)
                group_k<T, true>(xp + t0 * xs, xs, strip, nb, y + t0 * ldy + r0, ldy, nt, nr);
            else
                group_k<T, false>(xp + t0 * xs, xs, strip, nb, y + t0 * ldy + r0, ldy, nt, nr);
        }
    }
    _tile_release();
}

}  // namespace

tile_fn tile_kernel_amx_k(ggml_type wt) {
    switch (wt) {
        case ggml_type::q4_k:
            return tile_amx_k<ggml_type::q4_k>;
        case ggml_type::q6_k:
            return tile_amx_k<ggml_type::q6_k>;
        default:
            return nullptr;
    }
}

}  // namespace mnemos::kernels

#pragma once
// Shared by matmul_k_amx.cpp and matmul_k_rows_amx.cpp (include only from those): the q4_k / q6_k block
// formats as the AMX kernels see them, and the scales of 16 weight rows unpacked one row per lane.
#include <vector>

#include "kernels/cpu/amx_util.h"

namespace mnemos::kernels::amx {

// The decode companion of the AMX kernel (fewer than amx_min_toks tokens; any count works); the same arithmetic
// per output as the one with the tokens as A (matmul_k_amx.cpp). Has the signature of tile_fn.
template <ggml_type T>
void tile_rows_k(int64_t k, const void* w, size_t ws, const void* x, size_t xs, float* y, int64_t ldy, int64_t n_rows,
                 int64_t n_tok);

namespace {

template <ggml_type T>
struct k_format {
    static constexpr bool q4 = T == ggml_type::q4_k;
    static constexpr int n_sub = q4 ? 8 : 16;       // scales per block
    static constexpr int sub = qk_k / n_sub;        // elements per scale (the K of one tdpbssd)
    static constexpr int b_bytes = sub * amx_rows;  // one B tile
    static constexpr size_t block_bytes = q4 ? sizeof(block_q4_k) : sizeof(block_q6_k);
};

// A strip of 16 weight rows, per block: the B tiles of its sub-blocks and the rows' scales.
struct packed_k {
    std::vector<int8_t> b;    // [nb][n_sub][sub / 4][64]
    std::vector<float> sc;    // [nb][n_sub][16]: sub-block scales
    std::vector<float> d;     // [nb][16]
    std::vector<float> dmin;  // [nb][16] (q4_k)
    std::vector<int32_t> mn;  // [nb][8][16] (q4_k): the 6-bit min in both 16-bit halves
};

// Byte t (0..3) of every lane, sign- or zero-extended to 32 bits.
inline __m512i byte_of(__m512i v, int t, bool sign) {
    const __m512i up = _mm512_sllv_epi32(v, _mm512_set1_epi32(24 - 8 * t));
    return sign ? _mm512_srai_epi32(up, 24) : _mm512_srli_epi32(up, 24);
}

void pack_q4_k_scales(const uint8_t* blk, __m512i off, __mmask16 rm, int64_t b, packed_k* p) {
    const __m512i dd = gather32(rm, off, blk);  // d | dmin << 16
    _mm512_storeu_ps(&p->d[b * 16], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd)));
    _mm512_storeu_ps(&p->dmin[b * 16], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16))));
    // The 12 scale bytes of 16 rows, unpacked as unpack_q4_k_scales does, one row per lane.
    const __m512i w0 = gather32(rm, off, blk + 4);
    const __m512i w1 = gather32(rm, off, blk + 8);
    const __m512i w2 = gather32(rm, off, blk + 12);
    const __m512i m6 = _mm512_set1_epi32(0x3f3f3f3f), m4 = _mm512_set1_epi32(0x0f0f0f0f);
    const __m512i m2 = _mm512_set1_epi32(0x03030303);
    const __m512i sc[2] = {_mm512_and_si512(w0, m6),
                           _mm512_or_si512(_mm512_and_si512(w2, m4),
                                           _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w0, 6), m2), 4))};
    const __m512i mn[2] = {_mm512_and_si512(w1, m6),
                           _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w2, 4), m4),
                                           _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w1, 6), m2), 4))};
    for (int s = 0; s < 8; ++s) {
        _mm512_storeu_ps(&p->sc[(b * 8 + s) * 16], _mm512_cvtepi32_ps(byte_of(sc[s / 4], s % 4, false)));
        const __m512i m = byte_of(mn[s / 4], s % 4, false);
        _mm512_storeu_si512(&p->mn[(b * 8 + s) * 16], _mm512_or_si512(m, _mm512_slli_epi32(m, 16)));
    }
}

void pack_q6_k_scales(const uint8_t* blk, __m512i off, __mmask16 rm, int64_t b, packed_k* p) {
    // d sits at bytes 208..209, the block's end: read 206..209 and keep the high half.
    const __m512i dd = gather32(rm, off, blk + 206);
    _mm512_storeu_ps(&p->d[b * 16], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16))));
    for (int j = 0; j < 4; ++j) {
        const __m512i s4 = gather32(rm, off, blk + 192 + 4 * j);  // scales[4j..4j+3]
        for (int t = 0; t < 4; ++t)
            _mm512_storeu_ps(&p->sc[(b * 16 + 4 * j + t) * 16], _mm512_cvtepi32_ps(byte_of(s4, t, true)));
    }
}

// Sizes the scale arrays of p for nb blocks and fills them from 16 rows w + n * ws (nr present).
template <ggml_type T>
void pack_k_scales(const uint8_t* w, size_t ws, int64_t nb, int nr, packed_k* p) {
    using F = k_format<T>;
    p->sc.resize(static_cast<size_t>(nb) * F::n_sub * 16);
    p->d.resize(static_cast<size_t>(nb) * 16);
    if constexpr (F::q4) {
        p->dmin.resize(static_cast<size_t>(nb) * 16);
        p->mn.resize(static_cast<size_t>(nb) * 8 * 16);
    }
    const __m512i off = lane_offsets(ws);
    const __mmask16 rm = first_lanes(nr);
    for (int64_t b = 0; b < nb; ++b) {
        if constexpr (F::q4)
            pack_q4_k_scales(w + b * F::block_bytes, off, rm, b, p);
        else
            pack_q6_k_scales(w + b * F::block_bytes, off, rm, b, p);
    }
}

}  // namespace
}  // namespace mnemos::kernels::amx

// AMX-INT8 matmul tiles for q8_0 / q4_0 with the weight rows as the A tile and the tokens as B: for decode
// (fewer than 16 tokens), where repacking the weights into B tiles (matmul_amx.cpp) would cost more than
// the products. q8_0 rows load straight from the weights (tileloadd with the row stride), q4_0 rows are
// unpacked to signed bytes; the few tokens are packed into B tiles once per call. Every output gets exactly
// the operations, in the same order, that the tokens-as-A kernel gives it.
#include <algorithm>
#include <vector>

#include "kernels/cpu/amx_util.h"

namespace mnemos::kernels::amx {

namespace {

// The tokens of a call as B tiles ([nb][8][64]: lane m = 4 bytes of token m) and their scales ([nb][16]).
void pack_tokens_q8(const uint8_t* x, size_t xs, int64_t nb, int nt, std::vector<int8_t>* b, std::vector<float>* dx) {
    b->resize(static_cast<size_t>(nb) * 512);
    dx->resize(static_cast<size_t>(nb) * 16);
    const __m512i off = lane_offsets(xs);
    const __mmask16 tm = first_lanes(nt);
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* xb = x + i * sizeof(block_q8_0);
        _mm512_storeu_ps(&(*dx)[i * 16], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(gather32(tm, off, xb))));
        for (int r = 0; r < 8; ++r) _mm512_storeu_si512(&(*b)[(i * 8 + r) * 64], gather32(tm, off, xb + 2 + 4 * r));
    }
}

// The row scales d of 16 rows (nr present) per block: [nb][16].
template <bool Q4>
void row_scales(const uint8_t* w, size_t ws, int64_t nb, int nr, std::vector<float>* d) {
    constexpr size_t bs = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    d->resize(static_cast<size_t>(nb) * 16);
    const __m512i off = lane_offsets(ws);
    for (int64_t i = 0; i < nb; ++i)
        _mm512_storeu_ps(&(*d)[i * 16],
                         _mm512_cvtph_ps(_mm512_cvtepi32_epi16(gather32(first_lanes(nr), off, w + i * bs))));
}

// q4_0 row to signed bytes q - 8 in element order.
void unpack_row_q4_0(const uint8_t* row, int64_t nb, int8_t* out) {
    const __m128i n4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < nb; ++i) {
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i * sizeof(block_q4_0) + 2));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 32 * i), _mm_sub_epi8(_mm_and_si128(q, n4), eight));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 32 * i + 16),
                         _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), n4), eight));
    }
}

// acc[n] += (C[n] as float) * d_w[n] * d_x for n < nr: C as stored from a tile (row n = weight row n).
inline void scale_add_rows(const int32_t* c, const float* dw, __m512 dx, int nr, __m512 (&acc)[amx_rows]) {
    MNEMOS_UNROLL512
    for (int n = 0; n < nr; ++n) {
        const __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * n));
        acc[n] = _mm512_fmadd_ps(_mm512_mul_ps(v, _mm512_set1_ps(dw[n])), dx, acc[n]);
    }
}

// nr rows (A tiles at a + b * a_step, rows a_stride apart) x the packed tokens over nb blocks.
template <bool Full>
void strip_rows(const int8_t* a, size_t a_step, size_t a_stride, const int8_t* bt, const float* dw, const float* dx,
                int64_t nb, int nr_, float (&out)[amx_rows][amx_toks]) {
    const int nr = Full ? amx_rows : nr_;
    alignas(64) int32_t c[2][amx_rows * amx_toks];
    __m512 acc[amx_rows];
    for (auto& v : acc) v = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_loadd(2, a + b * a_step, a_stride);
        _tile_loadd(3, a + (b + 1) * a_step, a_stride);
        _tile_loadd(4, bt + b * 512, 64);
        _tile_loadd(5, bt + (b + 1) * 512, 64);
        _tile_dpbssd(0, 2, 4);
        _tile_dpbssd(1, 3, 5);
        _tile_stored(0, c[0], 64);
        _tile_stored(1, c[1], 64);
        scale_add_rows(c[0], dw + b * 16, _mm512_loadu_ps(dx + b * 16), nr, acc);
        scale_add_rows(c[1], dw + (b + 1) * 16, _mm512_loadu_ps(dx + (b + 1) * 16), nr, acc);
    }
    if (b < nb) {
        _tile_zero(0);
        _tile_loadd(2, a + b * a_step, a_stride);
        _tile_loadd(4, bt + b * 512, 64);
        _tile_dpbssd(0, 2, 4);
        _tile_stored(0, c[0], 64);
        scale_add_rows(c[0], dw + b * 16, _mm512_loadu_ps(dx + b * 16), nr, acc);
    }
    for (int n = 0; n < nr; ++n) _mm512_store_ps(out[n], acc[n]);
}

}  // namespace

template <bool Q4>
void tile_rows_q8(int64_t k, const void* w, size_t ws, const void* x, size_t xs, float* y, int64_t ldy, int64_t n_rows,
                  int64_t n_tok) {
    const auto* wp = static_cast<const uint8_t*>(w);
    const auto* xp = static_cast<const uint8_t*>(x);
    const int64_t nb = k / qk8_0;
    tile_state tiles{qk8_0};
    thread_local std::vector<int8_t> bt, a;
    thread_local std::vector<float> dx, dw;
    if constexpr (Q4) a.resize(static_cast<size_t>(amx_rows * k));
    for (int64_t t0 = 0; t0 < n_tok; t0 += amx_toks) {
        const int nt = static_cast<int>(std::min<int64_t>(amx_toks, n_tok - t0));
        pack_tokens_q8(xp + t0 * xs, xs, nb, nt, &bt, &dx);
        for (int64_t r0 = 0; r0 < n_rows; r0 += amx_rows) {
            const int nr = static_cast<int>(std::min<int64_t>(amx_rows, n_rows - r0));
            const uint8_t* rows = wp + r0 * ws;
            row_scales<Q4>(rows, ws, nb, nr, &dw);
            const int8_t* a0;
            size_t step, stride;
            if constexpr (Q4) {
                for (int n = 0; n < nr; ++n) unpack_row_q4_0(rows + n * ws, nb, a.data() + n * k);
                a0 = a.data(), step = qk4_0, stride = static_cast<size_t>(k);
            } else {
                a0 = reinterpret_cast<const int8_t*>(rows) + 2, step = sizeof(block_q8_0), stride = ws;
            }
            tiles.use(nr);
            alignas(64) float out[amx_rows][amx_toks];
            if (nr == amx_rows)
                strip_rows<true>(a0, step, stride, bt.data(), dw.data(), dx.data(), nb, nr, out);
            else
                strip_rows<false>(a0, step, stride, bt.data(), dw.data(), dx.data(), nb, nr, out);
            for (int m = 0; m < nt; ++m)
                for (int n = 0; n < nr; ++n) y[(t0 + m) * ldy + r0 + n] = out[n][m];
        }
    }
    _tile_release();
}

template void tile_rows_q8<false>(int64_t, const void*, size_t, const void*, size_t, float*, int64_t, int64_t, int64_t);
template void tile_rows_q8<true>(int64_t, const void*, size_t, const void*, size_t, float*, int64_t, int64_t, int64_t);

}  // namespace mnemos::kernels::amx

// AMX-INT8 matmul tiles for q4_k / q6_k with the weight rows as the A tile and the tokens as B: for decode
// (fewer than 16 tokens), where repacking the weights into B tiles (matmul_k_amx.cpp) would cost more than
// the products. Weights are unpacked row by row into signed bytes (no gathers); the few tokens are packed
// into B tiles once per call. Every output gets exactly the operations, in the same order, that the
// tokens-as-A kernel gives it, so that an output does not depend on the tile it falls in.
#include <algorithm>
#include <vector>

#include "kernels/cpu/matmul_k_amx.h"

namespace mnemos::kernels::amx {

namespace {

using avx512::loadu256;
using avx512::loadu512;

// The tokens of a call as B tiles, with their scales.
struct packed_tokens {
    std::vector<int8_t> b;     // [nb][n_sub][sub / 4][64]: lane m = 4 bytes of token m
    std::vector<float> dx;     // [nb][16]
    std::vector<int32_t> bsp;  // [nb][8][16] (q4_k): bsums[2j], bsums[2j + 1] of token m
};

template <ggml_type T>
void pack_tokens(const uint8_t* x, size_t xs, int64_t nb, int nt, packed_tokens* p) {
    using F = k_format<T>;
    p->b.resize(static_cast<size_t>(nb) * F::n_sub * F::b_bytes);
    p->dx.resize(static_cast<size_t>(nb) * 16);
    if constexpr (F::q4) p->bsp.resize(static_cast<size_t>(nb) * 8 * 16);
    const __m512i off = lane_offsets(xs);
    const __mmask16 tm = first_lanes(nt);
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* xb = x + b * sizeof(block_q8_k);
        _mm512_storeu_ps(&p->dx[b * 16], _mm512_mask_i32gather_ps(_mm512_setzero_ps(), tm, off, xb, 1));
        const uint8_t* q = xb + offsetof(block_q8_k, qs);
        for (int u = 0; u < F::n_sub; ++u)
            for (int i = 0; i < F::sub / 4; ++i)
                _mm512_storeu_si512(&p->b[((b * F::n_sub + u) * (F::sub / 4) + i) * 64],
                                    gather32(tm, off, q + u * F::sub + 4 * i));
        if constexpr (F::q4) {
            for (int j = 0; j < 8; ++j)
                _mm512_storeu_si512(&p->bsp[(b * 8 + j) * 16],
                                    gather32(tm, off, xb + offsetof(block_q8_k, bsums) + 4 * j));
        }
    }
}

// The values of one weight row as signed bytes in element order (q4_k: the nibbles; q6_k: q - 32).
template <ggml_type T>
void unpack_row(const uint8_t* row, int64_t nb, int8_t* out) {
    if constexpr (T == ggml_type::q4_k) {
        const __m256i n4 = _mm256_set1_epi8(0x0f);
        for (int64_t b = 0; b < nb; ++b) {
            const auto* blk = reinterpret_cast<const block_q4_k*>(row) + b;
            for (int c = 0; c < 4; ++c) {
                const __m256i q = loadu256(blk->qs + 32 * c);
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 256 * b + 64 * c), _mm256_and_si256(q, n4));
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 256 * b + 64 * c + 32),
                                    _mm256_and_si256(_mm256_srli_epi16(q, 4), n4));
            }
        }
    } else {
        const __m512i n4 = _mm512_set1_epi8(0x0f), n30 = _mm512_set1_epi8(0x30), k32 = _mm512_set1_epi8(32);
        const __m512i sh01 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        const __m512i sh23 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
        for (int64_t b = 0; b < nb; ++b) {
            const auto* blk = reinterpret_cast<const block_q6_k*>(row) + b;
            for (int h = 0; h < 2; ++h) {
                // Elements 128h..128h+63 (lo) and 128h+64..128h+127 (hi): see q6_k_half in matmul_avx512.cpp.
                const __m512i ql = loadu512(blk->ql + 64 * h);
                const __m512i qh = _mm512_broadcast_i64x4(loadu256(blk->qh + 32 * h));
                const __m512i lo =
                    _mm512_or_si512(_mm512_and_si512(ql, n4), _mm512_and_si512(_mm512_sllv_epi16(qh, sh01), n30));
                const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), n4),
                                                   _mm512_and_si512(_mm512_srlv_epi16(qh, sh23), n30));
                _mm512_storeu_si512(out + 256 * b + 128 * h, _mm512_sub_epi8(lo, k32));
                _mm512_storeu_si512(out + 256 * b + 128 * h + 64, _mm512_sub_epi8(hi, k32));
            }
        }
    }
}

// isum[n] += (C[n] as float) * sc[n] for n < nr: C as stored from a tile (row n = weight row n).
inline void weigh_rows(const int32_t* c, const float* sc, int nr, __m512 (&isum)[amx_rows]) {
    MNEMOS_UNROLL512
    for (int n = 0; n < nr; ++n)
        isum[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * n)), _mm512_set1_ps(sc[n]), isum[n]);
}

// nr weight rows (unpacked in a, rows k bytes apart) x the packed tokens: acc[n][m].
template <ggml_type T, bool Full>
void strip_rows(const int8_t* a, int64_t k, const packed_k& s, const packed_tokens& t, int64_t nb, int nr_,
                float (&acc)[amx_rows][amx_toks]) {
    using F = k_format<T>;
    const int nr = Full ? amx_rows : nr_;
    alignas(64) int32_t c[2][amx_rows * amx_toks];
    for (int64_t b = 0; b < nb; ++b) {
        __m512 isum[amx_rows];
        for (auto& v : isum) v = _mm512_setzero_ps();
        for (int u = 0; u < F::n_sub; u += 2) {
            _tile_zero(0);
            _tile_zero(1);
            _tile_loadd(2, a + 256 * b + u * F::sub, k);
            _tile_loadd(3, a + 256 * b + (u + 1) * F::sub, k);
            _tile_loadd(4, &t.b[(b * F::n_sub + u) * F::b_bytes], 64);
            _tile_loadd(5, &t.b[(b * F::n_sub + u + 1) * F::b_bytes], 64);
            _tile_dpbssd(0, 2, 4);
            _tile_dpbssd(1, 3, 5);
            _tile_stored(0, c[0], 64);
            _tile_stored(1, c[1], 64);
            weigh_rows(c[0], &s.sc[(b * F::n_sub + u) * 16], nr, isum);
            weigh_rows(c[1], &s.sc[(b * F::n_sub + u + 1) * 16], nr, isum);
        }
        const __m512 dx = _mm512_loadu_ps(&t.dx[b * 16]);
        for (int n = 0; n < nr; ++n) {
            __m512 v = _mm512_mul_ps(isum[n], _mm512_set1_ps(s.d[b * 16 + n]));
            if constexpr (F::q4) {
                __m512i mi = _mm512_setzero_si512();
                for (int j = 0; j < 8; ++j)
                    mi = _mm512_dpwssd_epi32(mi, _mm512_set1_epi32(s.mn[(b * 8 + j) * 16 + n]),
                                             _mm512_loadu_si512(&t.bsp[(b * 8 + j) * 16]));
                v = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mi), _mm512_set1_ps(s.dmin[b * 16 + n]), v);
            }
            _mm512_store_ps(acc[n], _mm512_fmadd_ps(v, dx, _mm512_load_ps(acc[n])));
        }
    }
}

}  // namespace

template <ggml_type T>
void tile_rows_k(int64_t k, const void* w, size_t ws, const void* x, size_t xs, float* y, int64_t ldy, int64_t n_rows,
                 int64_t n_tok) {
    const auto* wp = static_cast<const uint8_t*>(w);
    const auto* xp = static_cast<const uint8_t*>(x);
    const int64_t nb = k / qk_k;
    tile_state tiles{k_format<T>::sub};
    thread_local packed_tokens toks;
    thread_local packed_k scales;
    thread_local std::vector<int8_t> a;
    a.resize(static_cast<size_t>(amx_rows * k));
    for (int64_t t0 = 0; t0 < n_tok; t0 += amx_toks) {
        const int nt = static_cast<int>(std::min<int64_t>(amx_toks, n_tok - t0));
        pack_tokens<T>(xp + t0 * xs, xs, nb, nt, &toks);
        for (int64_t r0 = 0; r0 < n_rows; r0 += amx_rows) {
            const int nr = static_cast<int>(std::min<int64_t>(amx_rows, n_rows - r0));
            pack_k_scales<T>(wp + r0 * ws, ws, nb, nr, &scales);
            for (int n = 0; n < nr; ++n) unpack_row<T>(wp + (r0 + n) * ws, nb, a.data() + n * k);
            tiles.use(nr);
            alignas(64) float acc[amx_rows][amx_toks] = {};
            if (nr == amx_rows)
                strip_rows<T, true>(a.data(), k, scales, toks, nb, nr, acc);
            else
                strip_rows<T, false>(a.data(), k, scales, toks, nb, nr, acc);
            for (int m = 0; m < nt; ++m)
                for (int n = 0; n < nr; ++n) y[(t0 + m) * ldy + r0 + n] = acc[n][m];
        }
    }
    _tile_release();
}

template void tile_rows_k<ggml_type::q4_k>(int64_t, const void*, size_t, const void*, size_t, float*, int64_t, int64_t,
                                           int64_t);
template void tile_rows_k<ggml_type::q6_k>(int64_t, const void*, size_t, const void*, size_t, float*, int64_t, int64_t,
                                           int64_t);

}  // namespace mnemos::kernels::amx

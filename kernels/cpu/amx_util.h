#pragma once
// Shared by the *_amx.cpp files (compiled with -mamx-tile -mamx-int8 on top of the AVX-512 flags): the tile
// shapes and configuration. Include only from those files.
#include "kernels/cpu/avx512_util.h"
#include "kernels/cpu/internal.h"

namespace mnemos::kernels::amx {

// The q8_0 / q4_0 decode kernel (fewer than amx_min_toks tokens; any count works) that goes with the AMX one
// (matmul_rows_amx.cpp: in AVX-512 VNNI, with the same arithmetic per output as matmul_amx.cpp). Has the signature of
// tile_fn.
template <bool Q4>
void tile_rows_q8(int64_t k, const void* w, size_t ws, const void* x, size_t xs, float* y, int64_t ldy, int64_t n_rows,
                  int64_t n_tok);

namespace {

constexpr int amx_rows = 16;  // weight rows per strip (C columns)
constexpr int amx_toks = 16;  // tokens per group (C rows)
// Fewer tokens go to the decode companions (AVX-512 with the AMX arithmetic): repacking the weights into
// B tiles costs more than the tiles save below this (measured: batch-8 decode 8-25% faster than at 16).
constexpr int amx_min_toks = 4;

// The 64-byte tile configuration (palette 1): tmm0/1 C [16 tokens x 16 int32], tmm2/3 A [16 tokens x K
// bytes], tmm4/5 B [K / 4 x 64 bytes]; two sets so that consecutive blocks overlap.
struct alignas(64) tile_config {
    uint8_t palette = 1;
    uint8_t start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

// Loaded at the start of every AMX tile call and released at its end, so that no tile state outlives a
// call (other AMX code in the process may use its own configuration; released state is cheaper to switch).
// sub_bytes: the K of one tdpbssd (the elements sharing a scale: 32 for q8_0 / q4_0 / q4_k, 16 for q6_k);
// n_tok: the tokens of the group (1..16), the rows of A and C.
inline void configure_tiles(int sub_bytes, int n_tok) {
    tile_config c;
    for (int t : {0, 1}) c.rows[t] = static_cast<uint8_t>(n_tok), c.colsb[t] = amx_rows * 4;
    for (int t : {2, 3}) c.rows[t] = static_cast<uint8_t>(n_tok), c.colsb[t] = static_cast<uint16_t>(sub_bytes);
    for (int t : {4, 5}) c.rows[t] = static_cast<uint8_t>(sub_bytes / 4), c.colsb[t] = amx_rows * 4;
    // GCC 12 does not see ldtilecfg read the struct and drops the stores above without this barrier.
    __asm__ volatile("" : : "r"(&c) : "memory");
    _tile_loadconfig(&c);
}

// The first n (0..16) lanes.
inline __mmask16 first_lanes(int64_t n) { return n >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << n) - 1); }

// The 32-bit values at base + off[n] for the lanes in m, 0 in the others (which are not read).
inline __m512i gather32(__mmask16 m, __m512i off, const void* base) {
    return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, off, base, 1);
}

// Keeps the tile configuration for groups of n_tok tokens loaded (ldtilecfg only when it changes).
struct tile_state {
    int sub_bytes;
    int n_tok = 0;
    void use(int n) {
        if (n != n_tok) configure_tiles(sub_bytes, n), n_tok = n;
    }
};

// Lane n = n * stride: gather offsets of 16 rows.
inline __m512i lane_offsets(size_t stride) {
    return _mm512_mullo_epi32(_mm512_set1_epi32(static_cast<int>(stride)),
                              _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

}  // namespace
}  // namespace mnemos::kernels::amx

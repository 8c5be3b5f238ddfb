#pragma once
// Internals shared by the CPU kernel files: GGML block structs, scalar helpers
// and the entry points of the ISA-specific translation units. Not a public
// header: code outside kernels/cpu/ uses kernels/cpu/kernels.h.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/kernels.h"

namespace mnemos::kernels {

// ---------------------------------------------------------------------------
// Block layouts (bit-exact with GGML; see kernels/ggml_types.h)
// ---------------------------------------------------------------------------

constexpr int qk8_0 = 32;
constexpr int qk4_0 = 32;
constexpr int qk_k = 256;

struct block_q8_0 {
    uint16_t d;        // f16 scale
    int8_t qs[qk8_0];  // x = d * q
};
static_assert(sizeof(block_q8_0) == 34);

struct block_q4_0 {
    uint16_t d;             // f16 scale
    uint8_t qs[qk4_0 / 2];  // lo nibble: elem j, hi nibble: elem j + 16; x = d * (q - 8)
};
static_assert(sizeof(block_q4_0) == 18);

struct block_q8_k {
    float d;                   // f32 scale
    int8_t qs[qk_k];           // x = d * q
    int16_t bsums[qk_k / 16];  // sums of each 16 consecutive qs
};
static_assert(sizeof(block_q8_k) == 292);

struct block_q4_k {
    uint16_t d;            // f16 super-scale of the 6-bit scales
    uint16_t dmin;         // f16 super-scale of the 6-bit mins
    uint8_t scales[12];    // 8 scales + 8 mins, 6 bits each, packed (see unpack_q4_k_scales)
    uint8_t qs[qk_k / 2];  // per 64 elems: 32 bytes, lo nibbles elems 0..31, hi nibbles 32..63
};
static_assert(sizeof(block_q4_k) == 144);

struct block_q6_k {
    uint8_t ql[qk_k / 2];      // low 4 bits
    uint8_t qh[qk_k / 4];      // high 2 bits
    int8_t scales[qk_k / 16];  // one per 16 elems
    uint16_t d;                // f16 super-scale
};
static_assert(sizeof(block_q6_k) == 210);

// Unpacks q4_k's 12 scale bytes: sc[j], mn[j] (6-bit) of the 8 sub-blocks of 32.
// Bytes 0..3: sc[0..3] (low 6 bits), bytes 4..7: mn[0..3] (low 6 bits); bytes
// 8..11: low nibble sc[4..7] / high nibble mn[4..7], whose top 2 bits are the top
// 2 bits of bytes 0..3 (sc) and 4..7 (mn).
inline void unpack_q4_k_scales(const uint8_t* s, uint8_t* sc, uint8_t* mn) {
    uint32_t w0, w1, w2;
    std::memcpy(&w0, s, 4);
    std::memcpy(&w1, s + 4, 4);
    std::memcpy(&w2, s + 8, 4);
    const uint32_t s_lo = w0 & 0x3f3f3f3fu;
    const uint32_t m_lo = w1 & 0x3f3f3f3fu;
    const uint32_t s_hi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
    const uint32_t m_hi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
    std::memcpy(sc, &s_lo, 4);
    std::memcpy(sc + 4, &s_hi, 4);
    std::memcpy(mn, &m_lo, 4);
    std::memcpy(mn + 4, &m_hi, 4);
}

// ---------------------------------------------------------------------------
// Reference kernels (vec_dot_ref.cpp, quant.cpp)
// ---------------------------------------------------------------------------

// Reference dot of one row (float accumulation; integer sums inside a block).
float vec_dot_ref(ggml_type wt, int64_t n, const void* w, const void* x);

// ---------------------------------------------------------------------------
// AVX2 entry points (vec_dot_avx2.cpp, matmul_avx2.cpp); only call them when
// isa_supported(isa::avx2).
// ---------------------------------------------------------------------------

float vec_dot_avx2(ggml_type wt, int64_t n, const void* w, const void* x);
float dot_f16_f32_avx2(int64_t n, const uint16_t* a, const float* b);
void axpy_f16_avx2(int64_t n, float alpha, const uint16_t* x, float* y);
void convert_f32_to_f16_avx2(int64_t n, const float* src, uint16_t* dst);
// Quantizes one activation row into q8_0 / q8_k (same values as quantize_row).
void quantize_row_q8_0_avx2(const float* src, void* dst, int64_t n);
void quantize_row_q8_k_avx2(const float* src, void* dst, int64_t n);

// One tile of a matmul: y[t * ldy + r] = dot(weight row r, activation row t)
// for r in [0, n_rows), t in [0, n_tok). w points at the tile's first weight
// row (rows w_stride bytes apart); x at its first activation row, already in
// vec_dot_type(wt) (rows x_stride bytes apart); k elements per row.
using tile_fn = void (*)(int64_t k, const void* w, size_t w_stride, const void* x, size_t x_stride, float* y,
                         int64_t ldy, int64_t n_rows, int64_t n_tok);

// The AVX2 tile kernel for weights of type wt, or nullptr if there is none.
tile_fn tile_kernel_avx2(ggml_type wt);

// ---------------------------------------------------------------------------
// AVX-512 entry points (vec_dot_avx512.cpp, matmul_avx512*.cpp); only call them when
// isa_supported(isa::avx512), and with vnni = true only when cpu_has_avx512_vnni().
// ---------------------------------------------------------------------------

// Whether the CPU has avx512_vnni (vpdpbusd), used by the q8_0 / q4_0 kernels when present.
bool cpu_has_avx512_vnni();

// vnni: use the vpdpbusd kernels where there are some (q8_0, q4_0); the others do not depend on it.
float vec_dot_avx512(ggml_type wt, int64_t n, const void* w, const void* x, bool vnni);
float dot_f16_f32_avx512(int64_t n, const uint16_t* a, const float* b);
void axpy_f16_avx512(int64_t n, float alpha, const uint16_t* x, float* y);
void convert_f32_to_f16_avx512(int64_t n, const float* src, uint16_t* dst);

// The AVX-512 tile kernel for weights of type wt (with vpdpbusd where vnni and there is such a kernel), or
// nullptr if there is none.
tile_fn tile_kernel_avx512(ggml_type wt, bool vnni);
// The VNNI tile kernels alone (matmul_avx512vnni.cpp): q8_0 and q4_0, nullptr for other types.
tile_fn tile_kernel_avx512_vnni(ggml_type wt);

// ---------------------------------------------------------------------------
// AMX entry points (matmul_amx.cpp); only call them when isa_supported(isa::avx512).
// ---------------------------------------------------------------------------

// Whether the AMX kernels can run: AVX-512 with VNNI, AMX-TILE and AMX-INT8, and Linux grants the tile
// state (asked once per process).
bool amx_supported();
// Whether matmul uses them (for q8_0, q4_0, q4_k): amx_supported(), unless MNEMOS_AMX=0.
bool amx_enabled();
// The AMX tile kernel for weights of type wt (q8_0, q4_0, q4_k, q6_k), or nullptr (no such kernel, or
// !amx_supported()). It takes any tile shape, and gives an output the same value whatever the shape.
tile_fn tile_kernel_amx(ggml_type wt);
// The q4_k / q6_k ones alone (matmul_k_amx.cpp), without the availability check; nullptr for other types.
tile_fn tile_kernel_amx_k(ggml_type wt);

}  // namespace mnemos::kernels

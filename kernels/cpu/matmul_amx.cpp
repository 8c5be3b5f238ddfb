// AMX-INT8 matmul tiles for q8_0 / q4_0 weights x q8_0 activations (prefill). For each 32-element block,
// one tdpbssd computes the exact int32 dot products of 16 tokens x 16 weight rows; they are scaled by
// d_w * d_x and summed in float per block, as the reference does. Activations load straight from their
// q8_0 rows (tileloadd with the row stride); weights are repacked per 16-row strip into the VNNI layout
// (B row i = bytes 4i..4i+3 of every row's block) by gathers, and reused by every 16-token group of the
// tile. Rows and tokens past the last full 16 go to the AVX-512 tile kernel. Compiled with -mamx-tile
// -mamx-int8 on top of the AVX-512 flags: call only when amx_available().
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "kernels/cpu/avx512_util.h"
#include "kernels/cpu/internal.h"

namespace mnemos::kernels {

namespace {

constexpr int amx_rows = 16;  // weight rows per strip (C columns)
constexpr int amx_toks = 16;  // tokens per group (C rows)

// CPUID.(EAX=7, ECX=0):EDX bits 24 (AMX-TILE) and 25 (AMX-INT8), then the kernel's permission to use
// the tile data state (Linux 5.16+: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)).
bool detect_amx() {
    if (const char* env = std::getenv("MNEMOS_AMX"); env && env[0] == '0') return false;
    unsigned eax = 7, ebx = 0, ecx = 0, edx = 0;
    __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
    if (!((edx >> 24) & 1u) || !((edx >> 25) & 1u)) return false;
    constexpr long arch_req_xcomp_perm = 0x1023;
    constexpr long xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
}

// The 64-byte tile configuration (palette 1): tmm0/1 C [16 tokens x 16 int32], tmm2/3 A [16 tokens x 32
// bytes], tmm4/5 B [8 x 64 bytes]; two sets so that consecutive blocks overlap.
struct alignas(64) tile_config {
    uint8_t palette = 1;
    uint8_t start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

// Loaded at the start of every AMX tile call and released at its end, so that no tile state outlives a
// call (other AMX code in the process may use its own configuration; released state is cheaper to switch).
void configure_tiles() {
    tile_config c;
    for (int t : {0, 1}) c.rows[t] = amx_toks, c.colsb[t] = amx_rows * 4;
    for (int t : {2, 3}) c.rows[t] = amx_toks, c.colsb[t] = qk8_0;
    for (int t : {4, 5}) c.rows[t] = qk8_0 / 4, c.colsb[t] = amx_rows * 4;
    // GCC 12 does not see ldtilecfg read the struct and drops the stores above without this barrier.
    __asm__ volatile("" : : "r"(&c) : "memory");
    _tile_loadconfig(&c);
}

// A strip of 16 weight rows in the VNNI layout, per block: 8 x 64 bytes (s8), and the rows' scales.
struct packed_strip {
    std::vector<int8_t> b;  // [nb][8][64]
    std::vector<float> d;   // [nb][16]
};

template <bool Q4>
void pack_strip(const uint8_t* w, size_t ws, int64_t nb, packed_strip* out) {
    constexpr size_t bs = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    out->b.resize(static_cast<size_t>(nb) * 512);
    out->d.resize(static_cast<size_t>(nb) * amx_rows);
    const __m512i row_off = _mm512_mullo_epi32(_mm512_set1_epi32(static_cast<int>(ws)),
                                               _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m512i m4 = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = w + b * bs;
        const __m512i dh = _mm512_i32gather_epi32(row_off, blk, 1);
        _mm512_storeu_ps(&out->d[b * amx_rows], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dh)));
        int8_t* dst = &out->b[b * 512];
        if constexpr (Q4) {
            // Byte j of a q4_0 block: element j (low nibble), element j + 16 (high nibble).
            for (int i = 0; i < 4; ++i) {
                const __m512i q = _mm512_i32gather_epi32(row_off, blk + 2 + 4 * i, 1);
                _mm512_storeu_si512(dst + 64 * i, _mm512_sub_epi8(_mm512_and_si512(q, m4), eight));
                _mm512_storeu_si512(dst + 64 * (i + 4),
                                    _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(q, 4), m4), eight));
            }
        } else {
            for (int i = 0; i < 8; ++i)
                _mm512_storeu_si512(dst + 64 * i, _mm512_i32gather_epi32(row_off, blk + 2 + 4 * i, 1));
        }
    }
}

// d_x of 16 tokens per block: [nb][16].
void token_scales(const uint8_t* x, size_t xs, int64_t nb, std::vector<float>* out) {
    out->resize(static_cast<size_t>(nb) * amx_toks);
    const __m512i tok_off = _mm512_mullo_epi32(_mm512_set1_epi32(static_cast<int>(xs)),
                                               _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    for (int64_t b = 0; b < nb; ++b) {
        const __m512i dh = _mm512_i32gather_epi32(tok_off, x + b * sizeof(block_q8_0), 1);
        _mm512_storeu_ps(&(*out)[b * amx_toks], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dh)));
    }
}

// acc[m] += (C[m] as float) * d_w * d_x[m]: C as stored from a tile, dw the strip's 16 row scales.
inline void scale_add(const int32_t* c, __m512 dw, const float* dx, __m512 (&acc)[amx_toks]) {
    MNEMOS_UNROLL512
    for (int m = 0; m < amx_toks; ++m) {
        const __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * m));
        acc[m] = _mm512_fmadd_ps(_mm512_mul_ps(v, dw), _mm512_set1_ps(dx[m]), acc[m]);
    }
}

// 16 tokens x 16 rows over all nb blocks: y[m * ldy + n].
void group_16x16(const uint8_t* x, size_t xs, const packed_strip& w, const float* dx, int64_t nb, float* y,
                 int64_t ldy) {
    alignas(64) int32_t c[2][amx_toks * amx_rows];
    __m512 acc[amx_toks];
    for (auto& a : acc) a = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t* x0 = x + b * sizeof(block_q8_0) + 2;
        _tile_zero(0);
        _tile_zero(1);
        _tile_loadd(2, x0, xs);
        _tile_loadd(3, x0 + sizeof(block_q8_0), xs);
        _tile_loadd(4, &w.b[b * 512], 64);
        _tile_loadd(5, &w.b[(b + 1) * 512], 64);
        _tile_dpbssd(0, 2, 4);
        _tile_dpbssd(1, 3, 5);
        _tile_stored(0, c[0], 64);
        _tile_stored(1, c[1], 64);
        scale_add(c[0], _mm512_loadu_ps(&w.d[b * amx_rows]), dx + b * amx_toks, acc);
        scale_add(c[1], _mm512_loadu_ps(&w.d[(b + 1) * amx_rows]), dx + (b + 1) * amx_toks, acc);
    }
    if (b < nb) {
        _tile_zero(0);
        _tile_loadd(2, x + b * sizeof(block_q8_0) + 2, xs);
        _tile_loadd(4, &w.b[b * 512], 64);
        _tile_dpbssd(0, 2, 4);
        _tile_stored(0, c[0], 64);
        scale_add(c[0], _mm512_loadu_ps(&w.d[b * amx_rows]), dx + b * amx_toks, acc);
    }
    for (int m = 0; m < amx_toks; ++m) _mm512_storeu_ps(y + m * ldy, acc[m]);
}

template <bool Q4>
void tile_amx(int64_t k, const void* w, size_t ws, const void* x, size_t xs, float* y, int64_t ldy, int64_t n_rows,
              int64_t n_tok) {
    const auto* wp = static_cast<const uint8_t*>(w);
    const auto* xp = static_cast<const uint8_t*>(x);
    const int64_t nb = k / qk8_0;
    const int64_t full_rows = n_rows / amx_rows * amx_rows, full_toks = n_tok / amx_toks * amx_toks;
    const tile_fn rest = tile_kernel_avx512(Q4 ? ggml_type::q4_0 : ggml_type::q8_0, cpu_has_avx512_vnni());
    if (full_rows > 0 && full_toks > 0) {
        configure_tiles();
        thread_local packed_strip strip;
        thread_local std::vector<float> dx;
        for (int64_t r0 = 0; r0 < full_rows; r0 += amx_rows) {
            pack_strip<Q4>(wp + r0 * ws, ws, nb, &strip);
            for (int64_t t0 = 0; t0 < full_toks; t0 += amx_toks) {
                token_scales(xp + t0 * xs, xs, nb, &dx);
                group_16x16(xp + t0 * xs, xs, strip, dx.data(), nb, y + t0 * ldy + r0, ldy);
            }
        }
        _tile_release();
    }
    // The edges: rows past full_rows for every token, tokens past full_toks for the full rows.
    if (full_rows < n_rows) rest(k, wp + full_rows * ws, ws, xp, xs, y + full_rows, ldy, n_rows - full_rows, n_tok);
    if (full_toks < n_tok && full_rows > 0)
        rest(k, wp, ws, xp + full_toks * xs, xs, y + full_toks * ldy, ldy, full_rows, n_tok - full_toks);
}

}  // namespace

bool amx_available() {
    static const bool ok = detect_amx();
    return ok;
}

tile_fn tile_kernel_amx(ggml_type wt) {
    if (!amx_available()) return nullptr;
    switch (wt) {
        case ggml_type::q8_0:
            return tile_amx<false>;
        case ggml_type::q4_0:
            return tile_amx<true>;
        default:
            return nullptr;
    }
}

}  // namespace mnemos::kernels

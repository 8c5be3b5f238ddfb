// AMX-INT8 matmul tiles for q8_0 / q4_0 weights x q8_0 activations (prefill). For each 32-element block,
// one tdpbssd computes the exact int32 dot products of 16 tokens x 16 weight rows; they are scaled by
// d_w * d_x and summed in float per block, as the reference does. Activations load straight from their
// q8_0 rows (tileloadd with the row stride); weights are repacked per 16-row strip into the VNNI layout
// (B row i = bytes 4i..4i+3 of every row's block) by gathers, and reused by every 16-token group of the
// tile; partial strips and groups are padded (rows) or configured shorter (tokens). Fewer than
// amx_min_toks tokens go to the decode companion (matmul_rows_amx.cpp), same arithmetic per output.
// Compiled with -mamx-tile -mamx-int8 on top of the AVX-512 flags: call only when amx_supported().
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "kernels/cpu/amx_util.h"

namespace mnemos::kernels {

namespace {

using namespace amx;

// CPUID.(EAX=7, ECX=0):EDX bits 24 (AMX-TILE) and 25 (AMX-INT8), then the kernel's permission to use
// the tile data state (Linux 5.16+: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)).
bool detect_amx() {
    unsigned eax = 7, ebx = 0, ecx = 0, edx = 0;
    __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
    if (!((edx >> 24) & 1u) || !((edx >> 25) & 1u)) return false;
    constexpr long arch_req_xcomp_perm = 0x1023;
    constexpr long xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
}

// A strip of 16 weight rows in the VNNI layout, per block: 8 x 64 bytes (s8), and the rows' scales.
struct packed_strip {
    std::vector<int8_t> b;  // [nb][8][64]
    std::vector<float> d;   // [nb][16]
};

// nr (1..16): the rows present; the others pack as 0.
template <bool Q4>
void pack_strip(const uint8_t* w, size_t ws, int64_t nb, int nr, packed_strip* out) {
    const __mmask16 rm = first_lanes(nr);
    constexpr size_t bs = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    out->b.resize(static_cast<size_t>(nb) * 512);
    out->d.resize(static_cast<size_t>(nb) * amx_rows);
    const __m512i row_off = lane_offsets(ws);
    const __m512i m4 = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = w + b * bs;
        const __m512i dh = gather32(rm, row_off, blk);
        _mm512_storeu_ps(&out->d[b * amx_rows], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dh)));
        int8_t* dst = &out->b[b * 512];
        if constexpr (Q4) {
            // Byte j of a q4_0 block: element j (low nibble), element j + 16 (high nibble).
            for (int i = 0; i < 4; ++i) {
                const __m512i q = gather32(rm, row_off, blk + 2 + 4 * i);
                _mm512_storeu_si512(dst + 64 * i, _mm512_sub_epi8(_mm512_and_si512(q, m4), eight));
                _mm512_storeu_si512(dst + 64 * (i + 4),
                                    _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(q, 4), m4), eight));
            }
        } else {
            for (int i = 0; i < 8; ++i) _mm512_storeu_si512(dst + 64 * i, gather32(rm, row_off, blk + 2 + 4 * i));
        }
    }
}

// d_x of nt (1..16) tokens per block: [nb][16].
void token_scales(const uint8_t* x, size_t xs, int64_t nb, int nt, std::vector<float>* out) {
    out->resize(static_cast<size_t>(nb) * amx_toks);
    const __m512i tok_off = lane_offsets(xs);
    for (int64_t b = 0; b < nb; ++b) {
        const __m512i dh = gather32(first_lanes(nt), tok_off, x + b * sizeof(block_q8_0));
        _mm512_storeu_ps(&(*out)[b * amx_toks], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dh)));
    }
}

// acc[m] += (C[m] as float) * d_w * d_x[m] for m < nt: C as stored from a tile, dw the strip's row scales.
inline void scale_add(const int32_t* c, __m512 dw, const float* dx, int nt, __m512 (&acc)[amx_toks]) {
    MNEMOS_UNROLL512
    for (int m = 0; m < nt; ++m) {
        const __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * m));
        acc[m] = _mm512_fmadd_ps(_mm512_mul_ps(v, dw), _mm512_set1_ps(dx[m]), acc[m]);
    }
}

// nt tokens x nr rows over all nb blocks: y[m * ldy + n]. Full: nt == 16 (the loops over tokens unroll).
template <bool Full>
void group(const uint8_t* x, size_t xs, const packed_strip& w, const float* dx, int64_t nb, float* y, int64_t ldy,
           int nt_, int nr) {
    const int nt = Full ? amx_toks : nt_;
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
        scale_add(c[0], _mm512_loadu_ps(&w.d[b * amx_rows]), dx + b * amx_toks, nt, acc);
        scale_add(c[1], _mm512_loadu_ps(&w.d[(b + 1) * amx_rows]), dx + (b + 1) * amx_toks, nt, acc);
    }
    if (b < nb) {
        _tile_zero(0);
        _tile_loadd(2, x + b * sizeof(block_q8_0) + 2, xs);
        _tile_loadd(4, &w.b[b * 512], 64);
        _tile_dpbssd(0, 2, 4);
        _tile_stored(0, c[0], 64);
        scale_add(c[0], _mm512_loadu_ps(&w.d[b * amx_rows]), dx + b * amx_toks, nt, acc);
    }
    for (int m = 0; m < nt; ++m) _mm512_mask_storeu_ps(y + m * ldy, first_lanes(nr), acc[m]);
}

// Any shape: strips of 16 rows (the last one partial), groups of 16 tokens (the last one partial), so that
// every output is computed the same way whatever the tile (the engine's results do not depend on batching).
template <bool Q4>
void tile_amx(int64_t k, const void* w, size_t ws, const void* x, size_t xs, float* y, int64_t ldy, int64_t n_rows,
              int64_t n_tok) {
    if (n_tok < amx_min_toks) return tile_rows_q8<Q4>(k, w, ws, x, xs, y, ldy, n_rows, n_tok);  // decode
    const auto* wp = static_cast<const uint8_t*>(w);
    const auto* xp = static_cast<const uint8_t*>(x);
    const int64_t nb = k / qk8_0;
    tile_state tiles{qk8_0};
    thread_local packed_strip strip;
    thread_local std::vector<float> dx;
    for (int64_t r0 = 0; r0 < n_rows; r0 += amx_rows) {
        const int nr = static_cast<int>(std::min<int64_t>(amx_rows, n_rows - r0));
        pack_strip<Q4>(wp + r0 * ws, ws, nb, nr, &strip);
        for (int64_t t0 = 0; t0 < n_tok; t0 += amx_toks) {
            const int nt = static_cast<int>(std::min<int64_t>(amx_toks, n_tok - t0));
            tiles.use(nt);
            token_scales(xp + t0 * xs, xs, nb, nt, &dx);
            if (nt == amx_toks)
                group<true>(xp + t0 * xs, xs, strip, dx.data(), nb, y + t0 * ldy + r0, ldy, nt, nr);
            else
                group<false>(xp + t0 * xs, xs, strip, dx.data(), nb, y + t0 * ldy + r0, ldy, nt, nr);
        }
    }
    _tile_release();
}

}  // namespace

bool amx_supported() {
    // The k-quant kernels use vpdpwssd (AVX512-VNNI, which every AMX CPU has) for the mins.
    static const bool ok = isa_supported(isa::avx512) && cpu_has_avx512_vnni() && detect_amx();
    return ok;
}

bool amx_enabled() {
    // On by default where supported; MNEMOS_AMX=0 turns it off (then the AVX-512 kernels serve everything).
    static const bool on = [] {
        const char* env = std::getenv("MNEMOS_AMX");
        return !(env && env[0] == '0') && amx_supported();
    }();
    return on;
}

tile_fn tile_kernel_amx(ggml_type wt) {
    if (!amx_supported()) return nullptr;
    switch (wt) {
        case ggml_type::q8_0:
            return tile_amx<false>;
        case ggml_type::q4_0:
            return tile_amx<true>;
        default:
            return tile_kernel_amx_k(wt);
    }
}

}  // namespace mnemos::kernels

// AVX-512 (F/BW/VL/DQ) register-blocked micro-kernels for matmul: f32 / f16 / bf16 with 16 floats per
// vector here; q8_0 / q4_0 (matmul_avx512.h) and q4_k / q6_k (matmul_avx512_k.h) built here without VNNI.
#include "kernels/cpu/matmul_avx512_k.h"

namespace mnemos::kernels {

namespace avx512 {
namespace {

// ---------------------------------------------------------------------------
// f32 / f16 / bf16 weights x f32 activations
// ---------------------------------------------------------------------------

// 16 weights from element i (only the first n <= 16 when masked; the rest are 0).
template <ggml_type WT>
inline __m512 load_w16(const uint8_t* row, int64_t i, __mmask16 m) {
    if constexpr (WT == ggml_type::f32) {
        return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + i);
    } else if constexpr (WT == ggml_type::f16) {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
    } else {
        const __m256i h = _mm256_maskz_loadu_epi16(m, row + 2 * i);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
}

template <ggml_type WT, int RM, int RN>
void micro_float(int64_t k, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy) {
    __m512 acc[RM][RN];
    MNEMOS_UNROLL512
    for (int r = 0; r < RM; ++r) {
        MNEMOS_UNROLL512
        for (int j = 0; j < RN; ++j) acc[r][j] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < k; i += 16) {
        const __mmask16 m = k - i >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << (k - i)) - 1);
        __m512 xv[RN];
        MNEMOS_UNROLL512
        for (int j = 0; j < RN; ++j) xv[j] = _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(x + j * xs) + i);
        MNEMOS_UNROLL512
        for (int r = 0; r < RM; ++r) {
            const __m512 wv = load_w16<WT>(w + r * ws, i, m);
            MNEMOS_UNROLL512
            for (int j = 0; j < RN; ++j) acc[r][j] = _mm512_fmadd_ps(wv, xv[j], acc[r][j]);
        }
    }
    store_acc<RM, RN>(acc, y, ldy);
}

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

}  // namespace
}  // namespace avx512

tile_fn tile_kernel_avx512(ggml_type wt, bool vnni) {
    using k_bw = avx512::q8_kernels<avx512::dot_bw>;
    using kk_bw = avx512::k_kernels<avx512::dot_bw>;
    using avx512::tile;
    if (vnni) {
        if (const tile_fn fn = tile_kernel_avx512_vnni(wt)) return fn;
    }
    switch (wt) {
        case ggml_type::f32:
            return tile<avx512::k_f32, 4, 4>;
        case ggml_type::f16:
            return tile<avx512::k_f16, 4, 4>;
        case ggml_type::bf16:
            return tile<avx512::k_bf16, 4, 4>;
        case ggml_type::q8_0:
            return tile<k_bw::q8_0, 4, 4>;
        case ggml_type::q4_0:
            return tile<k_bw::q4_0, 4, 4>;
        case ggml_type::q4_k:
            return tile<kk_bw::q4_k, 4, 4>;
        case ggml_type::q6_k:
            return tile<kk_bw::q6_k, 4, 4>;
        default:
            return nullptr;
    }
}

}  // namespace mnemos::kernels

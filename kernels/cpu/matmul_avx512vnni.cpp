// The AVX-512 VNNI (vpdpbusd) builds of the quantized matmul micro-kernels; see matmul_avx512.h and
// matmul_avx512_k.h.
// Compiled with -mavx512vnni: call only when the CPU has avx512_vnni.
#include "kernels/cpu/matmul_avx512_k.h"

namespace mnemos::kernels {

tile_fn tile_kernel_avx512_vnni(ggml_type wt) {
    using k = avx512::q8_kernels<avx512::dot_vnni>;
    using kk = avx512::k_kernels<avx512::dot_vnni>;
    switch (wt) {
        case ggml_type::q8_0:
            return avx512::tile<k::q8_0, 4, 4>;
        case ggml_type::q4_0:
            return avx512::tile<k::q4_0, 4, 4>;
        case ggml_type::q4_k:
            return avx512::tile<kk::q4_k, 4, 4>;
        case ggml_type::q6_k:
            return avx512::tile<kk::q6_k, 4, 4>;
        default:
            return nullptr;
    }
}

}  // namespace mnemos::kernels

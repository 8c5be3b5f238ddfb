// The AVX-512 VNNI (vpdpbusd) builds of the q8_0 / q4_0 matmul micro-kernels; see matmul_avx512.h.
// Compiled with -mavx512vnni: call only when the CPU has avx512_vnni.
#include "kernels/cpu/matmul_avx512.h"

namespace mnemos::kernels {

tile_fn tile_kernel_avx512_vnni(ggml_type wt) {
    using k = avx512::q8_kernels<avx512::dot_vnni>;
    switch (wt) {
        case ggml_type::q8_0:
            return avx512::tile<k::q8_0, 4, 4>;
        case ggml_type::q4_0:
            return avx512::tile<k::q4_0, 4, 4>;
        default:
            return nullptr;
    }
}

}  // namespace mnemos::kernels

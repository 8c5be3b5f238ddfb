// Built instead of the *_amx.cpp files when the compiler has no AMX flags (-mamx-tile, -mamx-int8):
// AMX is never supported, and the AVX-512 kernels serve every matmul.
#include "kernels/cpu/internal.h"

namespace mnemos::kernels {

bool amx_supported() { return false; }
bool amx_enabled() { return false; }
tile_fn tile_kernel_amx(ggml_type) { return nullptr; }
tile_fn tile_kernel_amx_k(ggml_type) { return nullptr; }

}  // namespace mnemos::kernels

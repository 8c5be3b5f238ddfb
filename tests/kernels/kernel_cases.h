#pragma once
// What the kernel tests share: every weight type, and the SIMD levels this machine runs (each checked against
// the scalar reference).
#include <vector>

#include "kernels/cpu/internal.h"
#include "kernels/cpu/kernels.h"

namespace mnemos::test {

inline constexpr kernels::ggml_type all_types[] = {
    kernels::ggml_type::f32,  kernels::ggml_type::f16,  kernels::ggml_type::bf16, kernels::ggml_type::q8_0,
    kernels::ggml_type::q4_0, kernels::ggml_type::q4_k, kernels::ggml_type::q6_k};

inline std::vector<kernels::isa> simd_levels() {
    std::vector<kernels::isa> out;
    for (kernels::isa l : {kernels::isa::avx2, kernels::isa::avx512})
        if (kernels::isa_supported(l)) out.push_back(l);
    return out;
}

}  // namespace mnemos::test

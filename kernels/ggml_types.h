#pragma once
// Tensor element types as numbered in the GGUF format, with their block
// layouts. Layouts (bytes per block of `block_size` elements):
//   f32   4 / 1          f16  2 / 1           bf16 2 / 1
//   q8_0  34 / 32   {f16 d; int8 qs[32]}                       x = d*q
//   q4_0  18 / 32   {f16 d; uint8 qs[16]}  lo nibbles = elems 0..15, hi = 16..31, x = d*(q-8)
//   q8_k  292 / 256 {f32 d; int8 qs[256]; int16 bsums[16]}     (activations only)
//   q4_k  144 / 256 {f16 d; f16 dmin; uint8 scales[12]; uint8 qs[128]}
//   q6_k  210 / 256 {uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d}
#include <cstddef>
#include <cstdint>

namespace mnemos::kernels {

enum class ggml_type : uint32_t {
    f32 = 0,
    f16 = 1,
    q4_0 = 2,
    q4_1 = 3,
    q5_0 = 6,
    q5_1 = 7,
    q8_0 = 8,
    q8_1 = 9,
    q2_k = 10,
    q3_k = 11,
    q4_k = 12,
    q5_k = 13,
    q6_k = 14,
    q8_k = 15,
    bf16 = 30,
};

struct type_traits {
    const char* name;    // "q4_k"; nullptr for a number GGUF does not define
    int64_t block_size;  // elements per block
    int64_t type_size;   // bytes per block
    bool supported;      // mnemos can compute with it (as weights)
};

// Traits of a raw GGUF type number; {nullptr, 0, 0, false} when unknown.
inline type_traits traits_of(uint32_t t) {
    switch (t) {
        case 0:
            return {"f32", 1, 4, true};
        case 1:
            return {"f16", 1, 2, true};
        case 2:
            return {"q4_0", 32, 18, true};
        case 3:
            return {"q4_1", 32, 20, false};
        case 6:
            return {"q5_0", 32, 22, false};
        case 7:
            return {"q5_1", 32, 24, false};
        case 8:
            return {"q8_0", 32, 34, true};
        case 9:
            return {"q8_1", 32, 36, false};
        case 10:
            return {"q2_k", 256, 84, false};
        case 11:
            return {"q3_k", 256, 110, false};
        case 12:
            return {"q4_k", 256, 144, true};
        case 13:
            return {"q5_k", 256, 176, false};
        case 14:
            return {"q6_k", 256, 210, true};
        case 15:
            return {"q8_k", 256, 292, false};
        case 30:
            return {"bf16", 1, 2, true};
        default:
            return {nullptr, 0, 0, false};
    }
}
inline type_traits traits_of(ggml_type t) { return traits_of(static_cast<uint32_t>(t)); }

// Bytes of one row of `n` elements; n must be a multiple of the block size.
inline size_t row_size(ggml_type t, int64_t n) {
    const type_traits tt = traits_of(t);
    return static_cast<size_t>(n / tt.block_size * tt.type_size);
}

}  // namespace mnemos::kernels

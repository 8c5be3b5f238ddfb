#pragma once
// CPU kernels. Every fast (SIMD) kernel has a plain reference beside it
// (float accumulation) and is tested against it on random inputs. The ISA is
// chosen at run time (cpuid); tests ask for a specific level to compare.
#include <cstdint>

#include "kernels/cpu/thread_pool.h"
#include "kernels/ggml_types.h"

namespace mnemos::kernels {

// ---------------------------------------------------------------------------
// ISA dispatch
// ---------------------------------------------------------------------------

enum class isa { scalar = 0, avx2 = 1, avx512 = 2 };

// Best level this CPU supports (AVX2 needs avx2+fma+f16c; AVX-512 also avx512f+bw+vl+dq, and uses VNNI and
// AMX where present, see isa_avx512_vnni / isa_amx). MNEMOS_ISA=scalar|avx2|avx512 lowers it.
isa best_isa();
const char* isa_name(isa level);
// Whether the running CPU can execute `level`.
bool isa_supported(isa level);
// Whether the avx512 level's int8 kernels use VNNI (vpdpbusd) on this CPU; without it they use maddubs.
bool isa_avx512_vnni();
// Whether the avx512 level's q8_0 / q4_0 / q4_k matmuls use AMX tiles (prefill; decode uses AVX-512 with
// the same arithmetic per output): the CPU has AMX-INT8, Linux grants the tile state, and MNEMOS_AMX is not
// "0". Results differ from the non-AMX kernels by float summation order only.
bool isa_amx();

// ---------------------------------------------------------------------------
// Scalar conversions (exact IEEE round-to-nearest-even)
// ---------------------------------------------------------------------------

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

// ---------------------------------------------------------------------------
// Quantization formats (see kernels/ggml_types.h for the block layouts)
// ---------------------------------------------------------------------------

// dst[0..n) = the values of a row of n elements of type t (reference, any
// supported type). n is a multiple of the block size.
void dequantize_row(ggml_type t, const void* src, float* dst, int64_t n);

// Reference quantizer for f32, f16, bf16, q8_0, q4_0, q4_k, q6_k and q8_k
// (used to write test models and to quantize activations). n is a multiple
// of the block size; dst holds row_size(t, n) bytes.
void quantize_row(ggml_type t, const float* src, void* dst, int64_t n);

// The type activations are converted to before a dot product with weights of
// type w: q8_0 for q4_0/q8_0, q8_k for q4_k/q6_k, f32 for f32/f16/bf16.
ggml_type vec_dot_type(ggml_type w);

// sum_i w[i] * x[i] over one row of n elements: w of type `wt`, x already in
// vec_dot_type(wt). `level` picks the implementation (scalar = reference).
float vec_dot(isa level, ggml_type wt, int64_t n, const void* w, const void* x);

// ---------------------------------------------------------------------------
// Matrix multiplication with quantized weights
// ---------------------------------------------------------------------------

// A weight matrix as stored in GGUF: n_rows rows of n_cols elements, row r at
// data + r * row_bytes. (GGUF shape [n_cols, n_rows], ne0 = n_cols.)
struct weight_view {
    ggml_type type = ggml_type::f32;
    const void* data = nullptr;
    int64_t n_cols = 0;    // k: elements per row (the input dimension)
    int64_t n_rows = 0;    // n: rows (the output dimension)
    size_t row_bytes = 0;  // row_size(type, n_cols)
};

// y [n_tok, ldy] (first n_rows columns written) = x [n_tok, n_cols] * W^T.
// Activations are quantized once to vec_dot_type(W) and the work is split
// over the pool in tiles of weight rows x tokens; whole tensors are never
// dequantized. x and y must not overlap.
void matmul(const weight_view& w, const float* x, int64_t n_tok, float* y, int64_t ldy, thread_pool& pool,
            isa level = best_isa());

// One product of a fused matmul: y [n_tok, ldy] = x * w^T.
struct matmul_target {
    weight_view w;
    float* y = nullptr;
    int64_t ldy = 0;
};

// Several matmuls of the same input x [n_tok, n_cols] (Q, K and V; gate and up): the activations are
// quantized once and the tiles of all weights go out in one pool dispatch. Each y equals what matmul()
// gives. All weights need the same n_cols; weights whose vec_dot_type differs from the first one's are
// done by separate matmul() calls.
void matmul_multi(const matmul_target* targets, int n_targets, const float* x, int64_t n_tok, thread_pool& pool,
                  isa level = best_isa());

// Same result computed with the reference kernels, single-threaded (tests).
void matmul_reference(const weight_view& w, const float* x, int64_t n_tok, float* y, int64_t ldy);

// ---------------------------------------------------------------------------
// Small vector primitives (used by attention and the element-wise ops)
// ---------------------------------------------------------------------------

// sum_i a[i] * b[i], a in f16 (KV cache), b in f32.
float dot_f16_f32(isa level, int64_t n, const uint16_t* a, const float* b);
// y[i] += alpha * fp16_to_fp32(x[i]).
void axpy_f16(isa level, int64_t n, float alpha, const uint16_t* x, float* y);
// dst[i] = fp32_to_fp16(src[i]).
void convert_f32_to_f16(isa level, int64_t n, const float* src, uint16_t* dst);

}  // namespace mnemos::kernels

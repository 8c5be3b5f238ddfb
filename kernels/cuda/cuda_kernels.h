#pragma once
// CUDA kernels: the ops of a forward pass on device memory. Each launcher
// takes plain data (pointers to device memory, sizes, a stream), enqueues its
// kernel(s) on `stream` and returns the first CUDA error met (argument checks
// return cudaErrorInvalidValue; launch errors come from cudaGetLastError()
// right after each launch). Nothing is synchronized: errors of the kernel's
// execution show up on a later synchronizing call, as usual in CUDA.
//
// The types are those of the CPU kernels: ggml_type, weight_view (with a device
// data pointer), paged_kv_view (with a device base pointer) and
// attention_shape, so that the CPU references in kernels/cpu/ read the same
// layouts. Every kernel here is checked against a CPU reference in
// tests/cuda/test_cuda.cpp.
//
// Row-major shapes are written [outer, inner]; "T" is the number of token rows.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/kernels.h"
#include "kernels/ggml_types.h"

namespace mnemos::kernels::cuda {

// ---------------------------------------------------------------------------
// Device queries
// ---------------------------------------------------------------------------

// Number of usable CUDA devices; 0 when there is none or no driver (never an
// error: tests and benchmarks use it to skip).
int device_count();

// Whether the weight type has CUDA kernels: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k.
bool supported(ggml_type t);

// ---------------------------------------------------------------------------
// Element-wise and row ops (f32 activations)
// ---------------------------------------------------------------------------

// out [T, w.n_cols] = rows ids[0..T) of the embedding matrix w (any supported
// type, dequantized to f32). ids: device int32 [T]; ids outside [0, n_rows)
// give zero rows. w.n_cols must be a multiple of 8 and of the block size.
cudaError_t embedding(const weight_view& w, const int32_t* ids, int64_t n_tok, float* out, cudaStream_t stream);

// y [T, n] = x * w / sqrt(mean(x^2) + eps), per row; w [n]. y may equal x.
cudaError_t rmsnorm(const float* x, const float* w, float* y, int64_t n_tok, int32_t n, float eps, cudaStream_t stream);

enum class rope_mode : int32_t {
    normal = 0,  // pairs (2i, 2i+1) (llama)
    neox = 1,    // pairs (i, i + n_rot/2) (qwen, gpt-neox)
};

// Rotary embedding, the engine's definition (engine/src/forward.cpp):
//   theta_base_i = pos * theta_scale^i as a running product in float,
//   theta_scale = freq_base^(-2/n_rot)
//   theta_i = freq_scale * theta_base_i * freq_mult[i]   (freq_mult: rope_freqs
//             factors / llama3 scaling, folded in; nullptr = all 1)
//   yarn: theta_i mixed with the unscaled angle by the ramp over
//         [yarn_corr_lo, yarn_corr_hi], cos/sin multiplied by yarn_mscale.
struct rope_params {
    int32_t n_rot = 0;     // rotated dims per head (even, <= head_dim)
    int32_t head_dim = 0;  // elements per head
    rope_mode mode = rope_mode::normal;
    float freq_base = 10000.0f;        // theta base
    float freq_scale = 1.0f;           // 1 / linear (or yarn) scale factor
    const float* freq_mult = nullptr;  // device [n_rot/2] or nullptr
    bool yarn = false;
    float yarn_corr_lo = 0.0f;
    float yarn_corr_hi = 0.0f;
    float yarn_mscale = 1.0f;
};

// In place: x [T, n_head, head_dim], token r at position pos[r] (device int32 [T]).
cudaError_t rope(const rope_params& p, float* x, int64_t n_tok, int32_t n_head, const int32_t* pos,
                 cudaStream_t stream);

// out[i] = silu(gate[i]) * up[i] for i in [0, n); out may equal gate or up.
cudaError_t swiglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream);

// out[i] = a[i] + b[i] for i in [0, n); out may equal a or b.
cudaError_t add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream);

// ---------------------------------------------------------------------------
// Matrix multiplication with (quantized) weights
// ---------------------------------------------------------------------------

enum class matmul_algo : int32_t {
    automatic = 0,    // gemv for n_tok <= 8, else tensor_core for f16/bf16, else tiled
    gemv = 1,         // one warp per weight row, up to 8 tokens per pass; weights read once per 8 tokens
    tiled = 2,        // 64x64 tiles in float (weights dequantized in registers, staged in shared memory)
    tensor_core = 3,  // f16/bf16 only: WMMA 16x16x16, x rounded to the weight's type, f32 accumulation
};

// y [T, ldy] (first w.n_rows columns written) = x [T, w.n_cols] * W^T, the
// contract of kernels::matmul with w.data in device memory. w.n_cols must be a
// multiple of 8 and of the block size, w.data 16-byte aligned (cudaMalloc
// gives 256). Quantized blocks are read with 2-byte loads, so rows need no
// more alignment than their type's. x and y must not overlap. Numerics: gemv and
// tiled compute the dequantized weights times f32 x with f32 accumulation
// (no activation quantization, so they match dequantize_row + a float dot, not
// the CPU matmul's q8 activations); tensor_core rounds x to f16 / bf16.
// Errors: cudaErrorInvalidValue for an unsupported type or a shape the
// chosen algorithm cannot do (tensor_core with a quantized type).
cudaError_t matmul(const weight_view& w, const float* x, int64_t n_tok, float* y, int64_t ldy, cudaStream_t stream,
                   matmul_algo algo = matmul_algo::automatic);

// ---------------------------------------------------------------------------
// Paged KV cache (layout of engine/kv_cache.h; f16 entries)
// ---------------------------------------------------------------------------

// Writes the new tokens' K and V into the pool: token r goes to page
// slot[r] / page_size, row slot[r] % page_size of `layer` (slot: device int32
// [T], as vLLM's slot mapping). k, v: [T, kv_dim] f32, rounded to f16.
cudaError_t kv_write(const paged_kv_view& kv, int32_t layer, const float* k, const float* v, const int32_t* slot,
                     int64_t n_tok, cudaStream_t stream);

// Copies pages between two pools of the same layout (page_bytes each):
// dst_base + dst_pages[i] * page_bytes <- src_base + src_pages[i] * page_bytes
// for i in [0, n). Page lists are host arrays; runs of consecutive pages
// become one cudaMemcpyAsync. kind is cudaMemcpyHostToDevice,
// DeviceToHost or DeviceToDevice; for the copy to be asynchronous the host
// side must be pinned (cudaHostAlloc / cudaHostRegister).
cudaError_t copy_pages(void* dst_base, const int32_t* dst_pages, const void* src_base, const int32_t* src_pages,
                       int32_t n, size_t page_bytes, cudaMemcpyKind kind, cudaStream_t stream);

// ---------------------------------------------------------------------------
// Paged attention (causal, GQA). head_dim 64 or 128; n_head / n_head_kv <= 16
// for decode. Numerics as kernels::attention_group: q and the softmax weights
// are rounded to f16 before their products with K and V (the weights are the
// unnormalized exp(s - running max), normalized at the end in f32).
// ---------------------------------------------------------------------------

// Sequences in a batch, CSR style (all arrays in device memory):
//   pages of sequence b: page_indices[page_indptr[b] .. page_indptr[b+1])
//   kv_len[b]: tokens of sequence b in the cache, the new ones included
struct paged_batch {
    int32_t n_seq = 0;
    const int32_t* page_indptr = nullptr;   // [n_seq + 1]
    const int32_t* page_indices = nullptr;  // [page_indptr[n_seq]]
    const int32_t* kv_len = nullptr;        // [n_seq]
    int32_t max_kv_len = 0;                 // host-side upper bound of kv_len[] (sizes the grid)
};

// Prefill: q_indptr[b] .. q_indptr[b+1] (device [n_seq + 1]) are the query rows
// of sequence b, its last n_q = q_indptr[b+1] - q_indptr[b] tokens: row j at
// position kv_len[b] - n_q + j, attending to keys [0, position]. q, out:
// [T, n_head, head_dim] f32. max_q_len: host-side bound of n_q. Flash
// attention on tensor cores (WMMA f16, f32 accumulation), query rows of one
// GQA group packed together so that each K/V tile is read once per group.
struct prefill_params {
    attention_shape shape;
    paged_kv_view kv;
    int32_t layer = 0;
    paged_batch batch;
    const int32_t* q_indptr = nullptr;
    int32_t max_q_len = 0;
    const float* q = nullptr;
    float* out = nullptr;
};
cudaError_t attention_prefill(const prefill_params& p, cudaStream_t stream);

// Decode: one query row per sequence (q, out: [n_seq, n_head, head_dim]) at
// position kv_len[b] - 1. Split-K flash decoding: the keys are cut in chunks
// of chunk_tokens; one block per (chunk, KV head, sequence) computes partial
// outputs and log-sum-exps into `workspace`, a second kernel merges them.
// workspace: device memory of decode_workspace_bytes(...) bytes (may be null
// when that is 0).
struct decode_params {
    attention_shape shape;
    paged_kv_view kv;
    int32_t layer = 0;
    paged_batch batch;
    const float* q = nullptr;
    float* out = nullptr;
    int32_t chunk_tokens = 0;  // multiple of 32; 0 = choose from the device's SM count and the batch
    void* workspace = nullptr;
    size_t workspace_bytes = 0;
};
// The chunk size attention_decode will use for these parameters.
int32_t decode_chunk_tokens(const decode_params& p);
// Bytes of workspace attention_decode needs (0 when one chunk covers max_kv_len).
size_t decode_workspace_bytes(const decode_params& p);
cudaError_t attention_decode(const decode_params& p, cudaStream_t stream);

}  // namespace mnemos::kernels::cuda

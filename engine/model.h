#pragma once
// A loaded transformer: hyper-parameters, weights (pointing into the mmap'ed
// GGUF file), tokenizer and chat template. Architectures: `llama` (Llama 2/3,
// SmolLM2, Mistral, TinyStories) and `qwen2` (QKV bias, neox RoPE).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/chat_template.h"
#include "engine/gguf.h"
#include "engine/status.h"
#include "engine/tokenizer.h"
#include "engine/types.h"
#include "kernels/cpu/kernels.h"

namespace mnemos::engine {

// ---------------------------------------------------------------------------
// Hyper-parameters
// ---------------------------------------------------------------------------

enum class rope_kind { normal, neox };  // pairs (2i, 2i+1) vs (i, i + n_rot/2)
enum class rope_scaling { none, linear, yarn, llama3 };

struct hparams {
    std::string arch;  // "llama" | "qwen2"
    std::string name;  // general.name
    int32_t n_vocab = 0;
    int32_t n_ctx_train = 0;  // <arch>.context_length
    int32_t n_embd = 0;
    int32_t n_layer = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim = 0;  // n_embd / n_head unless <arch>.attention.key_length says otherwise
    int32_t n_ff = 0;
    int32_t n_rot = 0;  // rotated dims per head (<arch>.rope.dimension_count)
    float rms_eps = 1e-5f;
    float rope_freq_base = 10000.0f;
    rope_kind rope = rope_kind::normal;
    rope_scaling scaling = rope_scaling::none;
    float rope_scale_factor = 1.0f;  // context extension factor (linear/yarn/llama3)
    int32_t rope_orig_ctx = 0;       // original training context (yarn/llama3)
    float yarn_beta_fast = 32.0f;
    float yarn_beta_slow = 1.0f;
    float yarn_attn_factor = 1.0f;
    float llama3_low_freq_factor = 1.0f;
    float llama3_high_freq_factor = 4.0f;
    bool qkv_bias = false;
    bool tied_output = false;  // output.weight absent: logits use token_embd

    int32_t kv_dim() const { return n_head_kv * head_dim; }
    int32_t q_dim() const { return n_head * head_dim; }
};

struct layer_weights {
    std::vector<float> attn_norm;   // [n_embd]
    std::vector<float> ffn_norm;    // [n_embd]
    std::vector<float> bq, bk, bv;  // [q_dim], [kv_dim], [kv_dim] (qwen2), else empty
    kernels::weight_view wq;        // [n_embd -> q_dim]
    kernels::weight_view wk;        // [n_embd -> kv_dim]
    kernels::weight_view wv;        // [n_embd -> kv_dim]
    kernels::weight_view wo;        // [q_dim -> n_embd]
    kernels::weight_view gate;      // [n_embd -> n_ff]
    kernels::weight_view up;        // [n_embd -> n_ff]
    kernels::weight_view down;      // [n_ff -> n_embd]
};

struct model_weights {
    kernels::weight_view token_embd;  // [n_vocab rows of n_embd]
    kernels::weight_view output;      // [n_embd -> n_vocab] (== token_embd when tied)
    std::vector<float> output_norm;   // [n_embd]
    std::vector<float> rope_freqs;    // [n_rot/2] divisors (llama3 rope_freqs.weight), empty if none
    std::vector<layer_weights> layers;
};

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

class model {
  public:
    // Loads `path`. Errors name the key or tensor: missing/ill-shaped tensors
    // ("tensor 'blk.3.ffn_up.weight': expected shape [512, 1536], got ..."),
    // unsupported architecture or tensor type, bad hyper-parameters,
    // tokenizer or chat-template problems. Nothing half-built is returned.
    static result<std::unique_ptr<model>> load(const std::string& path);

    const hparams& hp() const { return hp_; }
    const model_weights& weights() const { return w_; }
    const tokenizer& tok() const { return *tok_; }
    const chat_template& chat() const { return chat_; }
    const gguf_file& file() const { return *file_; }
    // Digest of the weights' identity (architecture, hyper-parameters, tensor
    // names/types/shapes and sampled tensor bytes) and the KV format. Root of
    // every block hash, so a cache from another model is never used.
    const block_hash& fingerprint() const { return fingerprint_; }
    // Weight bytes of all tensors (for reports).
    size_t n_weight_bytes() const { return n_weight_bytes_; }
    const char* weight_type_name() const;  // the type of most matrix bytes ("q4_k")
    // Matrix tensors per type, the most bytes first ("q4_k x24, q6_k x5"); what info and generate print.
    const std::string& weight_mix() const;

  private:
    model() = default;
    status init();

    std::unique_ptr<gguf_file> file_;
    hparams hp_;
    model_weights w_;
    std::unique_ptr<tokenizer> tok_;
    chat_template chat_ = chat_template::of(chat_format::chatml);
    block_hash fingerprint_;
    size_t n_weight_bytes_ = 0;
    kernels::ggml_type main_type_ = kernels::ggml_type::f32;
    std::string weight_mix_;
};

}  // namespace mnemos::engine

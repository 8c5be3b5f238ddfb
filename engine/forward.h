#pragma once
// The forward pass: many sequences of different lengths in one step, their
// new tokens concatenated into one activation matrix [n_tokens, n_embd].
// K and V of the new tokens are written into each sequence's pages of the
// KV pool; attention reads them back through the paged view.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/attention.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/src/rope_rotation.h"
#include "engine/src/sparse_attention.h"
#include "engine/status.h"
#include "kernels/cpu/thread_pool.h"

namespace mnemos::engine {

struct forward_item {
    kv_sequence* seq = nullptr;        // pages reserved for tokens.size() more tokens
    std::span<const token_id> tokens;  // new tokens, at positions seq->n_tokens ...
    int32_t n_logits = 1;              // logits for the last n_logits of these tokens (0..tokens.size())
};

class forward_context {
  public:
    forward_context(const model& m, kv_cache& kv, kernels::thread_pool& pool);

    // Runs one step over all items. On success logits holds
    // [sum of n_logits, n_vocab] rows in item order, and every item's tokens
    // are committed to its sequence (kv_cache::commit: n_tokens advances,
    // full pages are hashed and published). Errors (invalid_argument: a token
    // id outside the vocabulary, pages not reserved, position past the
    // context) leave every sequence unchanged.
    status run(std::span<const forward_item> items, std::vector<float>& logits);

    // Sparse attention for sequences beyond the budget (engine/attention.h); full attention until called.
    // n_ctx: the full-attention window of automatic mode. Returns the effective options.
    attention_options set_attention(const attention_options& options, int32_t n_ctx);
    // Whether a sequence holding `end` tokens after a step attends sparsely, and its largest prefill chunk then.
    bool sparse_engages(int64_t end) const;
    int32_t sparse_max_chunk() const;
    // For kv_cache::match_prefix while a prompt of n_prompt tokens that will attend sparsely is matched: page k
    // of seq just became resident; summarizes it and parks it unless it is a sink or in the final window.
    void sparse_prefix_page(kv_sequence& seq, int32_t k, int64_t n_prompt);
    // Before kv_cache::match_prefix of a prompt of n_prompt tokens that will attend sparsely: loads the stored
    // summaries of its leading full pages and returns the hooks that take the pages between its sinks and its
    // final window parked without reading them (those with a summary), and summarize and park the others as
    // they are read.
    kv_cache::match_hooks sparse_resume_hooks(kv_sequence& seq, std::span<const token_id> prompt);
    // What the last run() did for seq (sparse or not, effective settings).
    attention_report last_attention(const kv_sequence& seq) const;

    // The RoPE cos/sin of one position: [n_rot/2] pairs (tests).
    void rope_cache(int64_t pos, float* cos_out, float* sin_out) const;

  private:
    void apply_rope(float* x, int n_heads, int64_t pos) const;
    // Radians per position of each rotated pair, scaling included: [n_rot/2].
    std::vector<double> rope_omegas() const;
    status attend_layer(std::span<const forward_item> items, int il, int64_t T, int64_t max_kv);
    void sparse_park(const sparse_attention::plan& p, kv_sequence& seq);
    // Brings back seq's parked pages that attention reads without selecting them.
    status fetch_unselected(const sparse_attention::plan& p, kv_sequence& seq);

    const model& m_;
    kv_cache& kv_;
    kernels::thread_pool& pool_;
    kernels::isa isa_;
    std::vector<float> inv_freq_;   // [n_rot/2] base^(-2i/n_rot) / rope_freqs[i]
    std::vector<float> freq_mult_;  // [n_rot/2] 1 / rope_freqs[i] (or the llama3 ramp); 1 when unscaled
    float freq_scale_ = 1.0f;       // 1/factor for linear and yarn
    float yarn_corr_lo_ = 0, yarn_corr_hi_ = 0;
    float yarn_mscale_ = 1.0f;
    // Scratch, grown on demand and reused across steps.
    std::vector<float> x_, xn_, q_, k_, v_, att_, g_, u_, sel_;
    std::vector<int64_t> pos_;
    std::vector<int32_t> item_of_;
    std::vector<int64_t> first_row_;             // per item: its first row in the step
    std::unique_ptr<rope_rotation> rope_delta_;  // set by set_attention
    std::unique_ptr<sparse_attention> sparse_;   // null: full attention only
    std::vector<sparse_attention::plan> plans_;  // per item of the current step
    std::vector<std::vector<float>> scratch_;    // per thread
};

}  // namespace mnemos::engine

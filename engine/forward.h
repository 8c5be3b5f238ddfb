#pragma once
// The forward pass: many sequences of different lengths in one step, their
// new tokens concatenated into one activation matrix [n_tokens, n_embd].
// K and V of the new tokens are written into each sequence's pages of the
// KV pool; attention reads them back through the paged view.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/status.h"
#include "kernels/cpu/thread_pool.h"

namespace mnemos::engine {

struct forward_item {
    kv_sequence* seq = nullptr;         // pages reserved for tokens.size() more tokens
    std::span<const token_id> tokens;   // new tokens, at positions seq->n_tokens ...
    int32_t n_logits = 1;               // logits for the last n_logits of these tokens (0..tokens.size())
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

    // The RoPE cos/sin of one position: [n_rot/2] pairs (tests).
    void rope_cache(int64_t pos, float* cos_out, float* sin_out) const;

private:
    void apply_rope(float* x, int n_heads, int64_t pos) const;

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
};

}  // namespace mnemos::engine

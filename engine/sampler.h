#pragma once
// Token sampler: penalties -> allowed mask -> (greedy | top-k -> softmax with
// temperature -> top-p -> min-p -> random draw), as in common engines.
#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "engine/types.h"

namespace mnemos::engine {

struct sampler_params {
    // Divides the logits before the softmax; higher is more random.
    // Default: 0.8. <= 0 means greedy (argmax, ties to the lowest id; no randomness).
    float temperature = 0.8f;
    // Keeps only the k most likely tokens before the softmax.
    // Default: 40. <= 0 keeps all.
    int32_t top_k = 40;
    // Nucleus: keeps the smallest set of most likely tokens whose probability sums to >= top_p.
    // Default: 0.95. >= 1 keeps all.
    float top_p = 0.95f;
    // Drops tokens whose probability is below min_p times the most likely token's.
    // Default: 0.05. <= 0 keeps all.
    float min_p = 0.05f;
    // CTRL repetition penalty on tokens in the last repeat_last_n of the history: a
    // positive logit is divided by it, a negative one multiplied.
    // Default: 1.0 (off).
    float repeat_penalty = 1.0f;
    // How many of the most recent history tokens the penalties look at.
    // Default: 64. 0 turns the penalties off, < 0 uses the whole history.
    int32_t repeat_last_n = 64;
    // Subtracted once from the logit of every token present in the window.
    // Default: 0.0 (off).
    float presence_penalty = 0.0f;
    // Subtracted from a token's logit once per occurrence in the window.
    // Default: 0.0 (off).
    float frequency_penalty = 0.0f;
    // Seed of the std::mt19937_64 used for the draws; same seed, same logits -> same tokens.
    // Default: 0xC0FFEE.
    uint64_t seed = 0xC0FFEE;
};

class sampler {
  public:
    explicit sampler(const sampler_params& p);

    // Picks the next token from logits [n_vocab], which are modified in place by the
    // penalties. `history` holds the tokens seen so far (prompt and generated), for
    // the penalties; ids outside [0, n_vocab) are ignored. `allowed` (may be nullptr:
    // all allowed) is a bitmask of n_vocab bits, bit i = word i / 64, bit i % 64; a
    // token whose bit is 0 is never picked (grammar-constrained decoding). NaN logits
    // are never picked.
    // Returns the token id; -1 when no token is allowed.
    token_id sample(std::span<float> logits, std::span<const token_id> history, const uint64_t* allowed = nullptr);

    // Restarts the random sequence from `seed`.
    void reset(uint64_t seed);

    const sampler_params& params() const { return params_; }

  private:
    void apply_penalties(std::span<float> logits, std::span<const token_id> history);
    // A uniform double in [0, 1), the same on every platform for a given seed.
    double next_uniform();

    sampler_params params_;                               // as given; seed is the initial seed
    std::mt19937_64 rng_;                                 // the draw sequence, deterministic per seed
    std::vector<std::pair<float, token_id>> candidates_;  // (logit, then probability; id) reused across calls
    std::vector<token_id> window_;                        // sorted copy of the penalty window, reused across calls
};

}  // namespace mnemos::engine

#pragma once
// Log-probabilities of tokens under the model's own distribution at a position: the log-softmax of the raw
// logits (before penalties, temperature, top-k/top-p/min-p and grammar masks), as OpenAI's "logprobs" report.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/types.h"

namespace mnemos::engine {

// Most alternatives a request may ask for (OpenAI's top_logprobs limit).
inline constexpr int32_t k_max_top_logprobs = 20;

struct token_logprob {
    token_id token = -1;
    float logprob = 0.0f;  // natural log, <= 0; -infinity for a token the model rules out (a -inf logit)
};

// One position: the token that was sampled (or given) there and the most likely alternatives.
struct sampled_logprobs {
    token_logprob chosen;
    std::vector<token_logprob> top;  // most likely first; ties: lower id first
};

// log-softmax(logits)[chosen] and the n_top (clamped to 0..k_max_top_logprobs and n_vocab) most likely tokens,
// from logits [n_vocab] in float with double accumulation. NaN logits count as impossible. chosen outside the
// vocabulary gets logprob -infinity.
sampled_logprobs logprobs_of(std::span<const float> logits, token_id chosen, int32_t n_top);

}  // namespace mnemos::engine

#pragma once
// Log-probabilities in OpenAI's reply shapes (the values come from the engine: engine/logprobs.h, the model's
// log-softmax before sampling settings): chat's choices[i].logprobs.content entries and the legacy completions
// object {tokens, token_logprobs, top_logprobs, text_offset}. Token text is the tokenizer's piece; an
// end-of-generation token is left out, as OpenAI does.
#include <span>
#include <string>

#include "agent/server/src/common.h"
#include "engine/logprobs.h"
#include "engine/status.h"
#include "engine/tokenizer.h"

namespace mnemos::agent::server_detail {

struct logprob_request {
    bool on = false;
    int32_t top = 0;  // alternatives per token
};

// Chat completions: "logprobs" (boolean) and "top_logprobs" (integer in [0, 20], needs "logprobs": true).
status parse_chat_logprobs(const json& b, logprob_request& out);

// A log-probability as JSON: -infinity (a token the model rules out) as -9999.0, as OpenAI writes it.
json logprob_value(float lp);

// Chat: [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}] for each entry of lps.
json chat_logprobs_content(const engine::tokenizer& tk, std::span<const engine::sampled_logprobs> lps);

// Legacy completions: the four parallel arrays, built token by token.
struct legacy_logprobs {
    json tokens = json::array();
    json token_logprobs = json::array();
    json top_logprobs = json::array();
    json text_offset = json::array();
    size_t offset = 0;  // byte offset of the next token's text
};
// Appends tok with its log-probabilities (null: none, the first prompt token).
void legacy_append(legacy_logprobs& out, const engine::tokenizer& tk, engine::token_id tok,
                   const engine::sampled_logprobs* lp);
// Appends the generated tokens of lps (end-of-generation tokens left out).
void legacy_append_generated(legacy_logprobs& out, const engine::tokenizer& tk,
                             std::span<const engine::sampled_logprobs> lps);
json legacy_json(const legacy_logprobs& l);

}  // namespace mnemos::agent::server_detail

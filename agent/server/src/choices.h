#pragma once
// "n" choices of one request: n samples of the same prompt, each with its own seed, sharing the prompt's KV
// pages. Choice 0 is submitted first; the others once its prompt is prefilled, so that the engine's prefix cache
// serves them every full page of the prompt (their finish_info::n_reused says how much). Their deltas reach the
// caller one at a time, in the order they arrive, on the caller's strand.
#include <functional>
#include <string>
#include <vector>

#include "agent/server/src/engine_bridge.h"

namespace mnemos::agent::server_detail {

// Most choices per request.
inline constexpr int32_t k_max_choices = 8;

// Choice i's seed: the request's for choice 0, a distinct mix of it for the others.
uint64_t choice_seed(uint64_t seed, int32_t i);

// One delta of choice i (text, and the logprobs of its tokens when asked for); returns false when the client is
// gone. Never called for two choices at once.
using choice_delta_fn =
    std::function<awaitable<bool>(int32_t i, std::string text, std::vector<engine::sampled_logprobs> lps)>;

// Runs r as n (1..k_max_choices) choices through run_turn and returns their outcomes in choice order.
// on_delta may be empty (nothing streamed). rec: as for run_turn (every choice is a turn of the request).
awaitable<std::vector<turn_outcome>> run_choices(state_ptr st, engine::request r, int32_t n, choice_delta_fn on_delta,
                                                 std::string sid = {}, access_record* rec = nullptr);

// The usage of all choices: the prompt counted once (the choices share it), the completions of all; its
// cached_tokens are choice 0's.
json choices_usage(const std::vector<turn_outcome>& outs);
// With more than one choice: "mnemos": {"choices_reused": [n_reused of each choice]}, the prompt tokens each
// choice took from the prefix cache (the sharing of the prompt's pages).
void add_choices_meta(json& j, const std::vector<turn_outcome>& outs);

}  // namespace mnemos::agent::server_detail

#pragma once
// A turn's prompt (turn_plan) and how it was fitted into the model's window (context_window).
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <vector>

#include "engine/chat_template.h"
#include "engine/engine.h"
#include "engine/status.h"

namespace mnemos::agent {

// How a turn's prompt was fitted into the model's window (fit_to_window).
// Nothing is dropped from the session itself: its events and tokens stay whole.
struct context_window {
    bool truncated = false;
    int32_t n_kept_first = 0;   // tokens kept from the start (the system message, or BOS)
    int32_t n_dropped = 0;      // tokens left out after them
    int32_t n_kept_recent = 0;  // tokens kept at the end (recent messages + the generation prompt)
    // Sparse attention (engine/attention.h): the history is longer than the window and is attended sparsely.
    bool sparse = false;
    int32_t n_sink = 0, n_window = 0, n_pages = 0;  // the engine's effective settings
    int32_t n_pages_resident = 0;                   // pages of the history held in the pool after the turn
    int64_t n_pages_loaded = 0;                     // parked pages read back from the store for the turn
};
// {"truncated": true, "n_kept_first": ..., "n_dropped": ..., "n_kept_recent": ..., "attention": "full" | "sparse",
//  and with sparse: "sink_tokens", "window_tokens", "pages_per_query", "pages_resident", "pages_loaded"}
nlohmann::json context_window_json(const context_window& c);
// After the generation: whether the engine attended sparsely, its settings, the pages resident after the
// turn and the parked pages read back for it.
void note_attention(context_window& c, const engine::attention_report& r);

// The prompt of one turn, made by session_manager::begin_turn.
struct turn_plan {
    std::vector<engine::token_id> prompt;  // session tokens + generation prompt
    std::vector<std::string> stop;         // the template's stop strings
    // For fit_to_window: where each message starts in `prompt` (ascending), and how many
    // leading tokens form the first block kept when the history is cut (the system message,
    // else the BOS token).
    std::vector<int32_t> message_starts;
    int32_t n_first = 0;
    context_window context;     // what fit_to_window did
    engine::cache_scope scope;  // whose KV blocks the prompt may reuse (a session's, or the caller's)
};

// Makes plan.prompt fit n_ctx tokens with `reserve` of them left for the reply
// (reserve is capped at n_ctx / 2). A prompt that fits is left as is. Otherwise
// the middle is dropped: the prompt becomes prompt[0, n_first) (the system
// message, whole) + prompt[cut, end). The cut moves in coarse steps
// (a quarter of the recent budget, in whole pages) and is moved forward to a
// message start when one lies within half a step, so consecutive turns keep
// the same cut and share their prompt prefix (the engine's prefix cache hits)
// until the history has grown by a step. plan.context says what was kept.
// Errors: context_exceeded when the window is too
// small for that: the system message and the last message are never cut.
status fit_to_window(turn_plan& plan, int32_t n_ctx, int32_t reserve, int32_t page_size = 16);

// A turn's plan for a whole message list (stateless completions): tokens of each
// message (engine::chat_template::encode_message), then the generation prompt.
turn_plan plan_for_messages(const engine::model& m, std::span<const engine::chat_message> messages);

// Appends the generation prompt and the template's stop strings once plan.prompt and plan.message_starts
// hold the messages' tokens, and sets plan.n_first (the system message when the first message is one).
void finish_turn_plan(const engine::model& m, bool first_is_system, turn_plan& plan);

}  // namespace mnemos::agent

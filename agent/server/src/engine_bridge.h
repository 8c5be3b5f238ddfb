#pragma once
// Between coroutines and the engine thread: fitting a turn's plan into an engine request, submitting
// it, and awaiting its tokens on the calling coroutine's strand (the engine's callbacks post them back
// through a channel while the server's post_gate is open).
#include <functional>
#include <string>

#include "agent/core/context_window.h"
#include "agent/core/session_manager.h"
#include "agent/server/src/access_log.h"
#include "agent/server/src/common.h"
#include "agent/server/src/request_parse.h"
#include "agent/server/src/server_state.h"
#include "engine/engine.h"

namespace mnemos::agent::server_detail {

struct turn_outcome {
    std::string text;
    engine::finish_info info;
    bool client_gone = false;  // on_delta returned false (the request was cancelled)
};

// Called with each text delta; returns false when the client is gone.
using delta_fn = std::function<awaitable<bool>(std::string)>;

// Called (on the caller's strand, before the delta they came with) with the log-probabilities of tokens sampled
// since the last call, when the request asked for them (engine::request::logprobs).
using logprobs_fn = std::function<void(std::vector<engine::sampled_logprobs>)>;

// An awaitable that is ready with v (a delta_fn that sends nothing).
awaitable<bool> ready(bool v);

// Fits the plan into the engine's window (a history longer than the window keeps its first block and
// recent messages; plan.context says so) and makes the engine request. extra: tokens the caller appends
// to the prompt itself. Errors: context_exceeded (or fit_to_window's error) when the window cannot hold
// the prompt and a reply.
result<engine::request> make_request(server_state& st, turn_plan& plan, const gen_params& g, int32_t extra = 0);

// Submits r, forwards its text to on_delta (may be empty) on the calling coroutine's strand, and
// returns when the engine finished it. sid: the session of the turn; its tokens also go to the event
// feed. rec: the HTTP request the turn serves: its route labels the turn's metrics (engine_runner::metrics)
// and its tokens go to the access log line; none: a WebSocket turn ("/v1/ws"). on_logprobs: see logprobs_fn
// (may be empty).
awaitable<turn_outcome> run_turn(state_ptr st, engine::request r, delta_fn on_delta, std::string sid = {},
                                 access_record* rec = nullptr, logprobs_fn on_logprobs = {});

// A reply constrained from its first token (response_format json_schema / json_object, a forced tool call) is a
// document that ends where its grammar says: when the client gave no max_tokens, r may run to the end of the
// context (at most one window: n_ctx) instead of default_max_tokens, so the document is complete. With max_tokens
// nothing changes (a budget too small gives finish_reason "length" and the document as far as it got).
void let_document_complete(const server_state& st, const gen_params& g, engine::request& r);

// The "mnemos" field of replies: {"context": {...}} when the history was cut to fit the window.
void add_context_meta(json& j, const context_window& c);
// Fields added to the reply's event: {"context": {...}} when the history was cut.
json context_event_extra(const context_window& c);

}  // namespace mnemos::agent::server_detail

#pragma once
// The OpenAI-compatible API: POST /v1/chat/completions (JSON or SSE, tools, optional "session_id") and
// GET /v1/models; and the OpenAI reply shapes the other APIs share (finish reasons, usage).
#include <memory>

#include "agent/core/context_window.h"
#include "agent/core/session.h"
#include "agent/server/src/api.h"
#include "agent/server/src/request_parse.h"
#include "agent/tooling/agent_loop.h"

namespace mnemos::agent::server_detail {

// "stop", "length", "cancelled" or "error".
const char* openai_finish(engine::finish_reason r);
// {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details": {"cached_tokens"}}.
json usage_json(const engine::finish_info& i);

// Runs one generation (a session turn when s is set: begin_turn was called, end_turn is called here)
// and writes the OpenAI-shaped reply (JSON, or SSE with g.stream). ct: tools / response_format of the
// request (may be null). Returns keep-alive.
awaitable<bool> complete(request_ctx& cx, session_ptr s, turn_plan plan, gen_params g,
                         std::shared_ptr<const chat_tools> ct);

awaitable<bool> handle_chat_completions(request_ctx& cx);
reply handle_models(request_ctx& cx);
// GET /v1/models/{id}: the served model's id or "mnemos"; another id gets 404 model_not_found.
reply handle_model(request_ctx& cx);

}  // namespace mnemos::agent::server_detail

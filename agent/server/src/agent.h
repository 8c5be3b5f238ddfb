#pragma once
// The tool-agent loop of agent sessions (sessions created with "agent": settings): plan -> tool call
// -> tool result -> plan again, every message a durable event; answered as one chat.completion with
// the "steps" taken. The loop's decisions are agent/tooling's step machine (loop::agent_loop); this
// runs its generations and tools from the connection's coroutine.
#include <vector>

#include "agent/core/session.h"
#include "agent/server/src/api.h"
#include "agent/server/src/request_parse.h"

namespace mnemos::agent::server_detail {

// One turn of agent session s (its turn is held): up to the settings' max_steps generations;
// first_choice (the body's tool_choice value, parse_tool_choice_value; read only when the session has
// tools) applies to the first (automatic afterwards, none on the last).
// Writes the reply; returns keep-alive.
awaitable<bool> agent_turn(request_ctx& cx, session_ptr s, std::vector<engine::chat_message> msgs, gen_params g,
                           json first_choice);

}  // namespace mnemos::agent::server_detail

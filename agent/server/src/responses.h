#pragma once
// The OpenAI Responses API: POST /v1/responses (JSON or SSE; input as text or items, instructions, function
// tools and their outputs, text.format, previous_response_id) and GET /v1/responses/{id}.
//
// Chains: a stored response (store: true, the default) is the latest turn of a durable session of the
// server's session store (response_store.h). A request naming it as previous_response_id continues that
// session: its history, then the new input (and the request's system text, instructions + tool section, as
// a system message when it differs from the one in effect). A previous response that is no longer the
// latest turn of its session starts a new session holding the history up to it (a branch). With
// store: false nothing is written: the history is read and the reply is not stored.
#include "agent/server/src/api.h"

namespace mnemos::agent::server_detail {

awaitable<bool> handle_create_response(request_ctx& cx);
reply handle_get_response(request_ctx& cx);

}  // namespace mnemos::agent::server_detail

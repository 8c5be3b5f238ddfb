#pragma once
// The server's route table (every endpoint of agent/server/server.h but the WebSocket upgrade, which
// the connection takes first) and the dispatch of one request through it.
#include "agent/server/src/api.h"

namespace mnemos::agent::server_detail {

// The table: built once.
const api_router& api_routes();

// Answers one request: open routes run at once (405 for a wrong method); other paths are authenticated
// (401) and rate limited (429) first, then matched (404 no route, 405 wrong method) and run.
// Returns keep-alive. rec: gets the route, the caller's key name and the status.
awaitable<bool> dispatch(beast::tcp_stream& stream, request_t req, state_ptr st, access_record& rec);

}  // namespace mnemos::agent::server_detail

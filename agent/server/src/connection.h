#pragma once
// Connections: the accept loop, one coroutine per connection (on its own strand) reading requests with
// bounded header, field, trailer and body sizes, keep-alive, and the WebSocket upgrade of /v1/ws.
#include "agent/server/src/common.h"
#include "agent/server/src/server_state.h"

namespace mnemos::agent::server_detail {

// Serves one connection until the client closes it, a request asks to, or the server stops.
awaitable<void> serve_connection(beast::tcp_stream stream, state_ptr st);

// Accepts connections (each on a new strand) until the acceptor closes.
awaitable<void> accept_loop(tcp::acceptor* acceptor, state_ptr st);

}  // namespace mnemos::agent::server_detail

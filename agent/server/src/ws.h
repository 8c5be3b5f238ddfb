#pragma once
// GET /v1/ws: a WebSocket per client (agent/server/server.h lists the frames): "message" frames run
// streamed turns, "subscribe" joins the event feed, "player" frames go to server_options::on_player.
#include <memory>

#include "agent/server/src/common.h"
#include "agent/server/src/server_state.h"
#include "agent/server/src/ws_feed.h"

namespace mnemos::agent::server_detail {

// After the HTTP upgrade request (authenticated and rate limited): handshake, then read frames until
// the client goes; its waiting turns are woken and its subscription ends.
awaitable<void> serve_ws(std::shared_ptr<ws_conn> c, request_t req, state_ptr st);

}  // namespace mnemos::agent::server_detail

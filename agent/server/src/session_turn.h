#pragma once
// A server turn's hold on its session: waits in the session's turn_queue, then checks that the session
// it waited for still exists; every way a wait can end becomes a reply here.
#include <memory>

#include "agent/core/session.h"
#include "agent/server/src/http_reply.h"
#include "agent/server/src/server_state.h"
#include "agent/server/src/ws_feed.h"

namespace mnemos::agent::server_detail {

struct turn_ticket {
    std::unique_ptr<turn_slot> slot;  // set: the turn may run (held until the reply is written)
    reply err;                        // otherwise: why not (409 queue full / timed out, 503 stopping, 404 deleted)
    bool client_gone = false;         // otherwise: the client disconnected while waiting (nothing to answer)
};

// Waits (asynchronously, on the calling coroutine's strand) until the session runs no other server turn,
// in arrival order; then 404 if it was deleted (or replaced) meanwhile. watch: the HTTP connection's
// socket, watched for a disconnect while waiting; wc: the WebSocket connection (serve_ws wakes its
// waiters when it closes).
awaitable<turn_ticket> acquire_turn(state_ptr st, const session* expect, tcp::socket* watch, ws_conn* wc);

}  // namespace mnemos::agent::server_detail

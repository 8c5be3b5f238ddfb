#pragma once
// What a route handler gets (request_ctx) and the two kinds of handler: a plain one returns its reply
// (the router writes it), a streaming one writes its own answer (SSE, or after waiting for a turn).
#include <variant>

#include "agent/server/router.h"
#include "agent/server/src/access_log.h"
#include "agent/server/src/auth.h"
#include "agent/server/src/common.h"
#include "agent/server/src/http_reply.h"
#include "agent/server/src/server_state.h"

namespace mnemos::agent::server_detail {

struct request_ctx {
    beast::tcp_stream& stream;
    request_t req;
    state_ptr st;
    caller who;          // open access for open routes
    path_params params;  // the route's "{name}" segments
    access_record& rec;  // the access log's view of this request (status, tokens)
};

// Returns the reply; never throws, never writes.
using plain_handler = reply (*)(request_ctx&);
// Writes its answer; returns keep-alive. cx outlives the call (the router awaits it).
using stream_handler = awaitable<bool> (*)(request_ctx&);

enum class route_access {
    open,  // no key needed, not rate limited (/healthz, the spectator page)
    key,   // authenticated (401) and rate limited (429) before the route's method is checked
};

struct api_handler {
    route_access access = route_access::key;
    std::variant<plain_handler, stream_handler> fn;
};
using api_router = router<api_handler>;

// Writes r as the answer to cx's request; returns keep-alive.
inline awaitable<bool> respond(request_ctx& cx, reply r) {
    cx.rec.status = r.status;
    co_return co_await write_reply(cx.stream, cx.req, std::move(r), cx.st);
}

}  // namespace mnemos::agent::server_detail

#pragma once
// CORS (server_options::cors_origins; off when empty): a request whose Origin is allowed gets
// Access-Control-Allow-Origin on every reply (JSON, errors and SSE); a preflight (OPTIONS with Origin and
// Access-Control-Request-Method) is answered before authentication (browsers send no key with it): 204 with
// Allow-Origin, Allow-Methods (the path's), Allow-Headers and Max-Age for an allowed origin, 403
// origin_not_allowed without any Access-Control header otherwise.
#include <string>

#include "agent/server/server.h"
#include "agent/server/src/common.h"
#include "agent/server/src/http_reply.h"

namespace mnemos::agent::server_detail {

// How long a browser may cache a preflight's answer, in seconds.
inline constexpr int k_cors_max_age_s = 600;

// The Access-Control-Allow-Origin value for req: "*" when any origin is allowed, the request's Origin when it
// is listed; "" when CORS is off, the request has no Origin, or it is not allowed.
std::string cors_allow_origin(const server_options& o, const request_t& req);

// Sets Access-Control-Allow-Origin to origin (and Vary: Origin unless it is "*").
void add_cors_headers(http::response_header<>& res, const std::string& origin);

// True for a CORS preflight: OPTIONS with Origin and Access-Control-Request-Method.
bool is_preflight(const request_t& req);

// The answer to a preflight for a path that takes `methods` ("GET, POST").
reply preflight_reply(const server_options& o, const request_t& req, const std::string& methods);

}  // namespace mnemos::agent::server_detail

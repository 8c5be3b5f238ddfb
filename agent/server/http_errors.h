#pragma once
// The one mapping from errors to HTTP status codes and OpenAI error types and codes
// ({"error": {"message", "type", "param", "code"}}; code is always a string).
// errc values (engine/status.h) map through errc_http_of; refusals that have no errc (authentication,
// permission, method, size and rate limits of the HTTP layer) through refusal_http_of.
#include <span>

#include "engine/status.h"

namespace mnemos::agent::server_detail {

struct errc_http {
    errc code;
    unsigned http_status;
    const char* type;         // the OpenAI error type
    const char* openai_code;  // the OpenAI error code, e.g. "context_length_exceeded"
};

// Every row of the table, one per errc value (tests check that each value has one).
std::span<const errc_http> errc_http_table();

// The row of c; nullptr when c has none (a bug the table test catches).
const errc_http* find_errc_http(errc c);

// The row of c, or errc::internal's row (500 server_error) when c has none.
const errc_http& errc_http_of(errc c);

// Refusals of the HTTP layer itself (no errc says them).
enum class http_refusal {
    unauthorized,        // 401: missing or invalid API key
    forbidden,           // 403: the key may not do this
    method_not_allowed,  // 405: the path exists, the method does not
    payload_too_large,   // 413: a body (or a prefix) over its limit
    upgrade_required,    // 426: a WebSocket path without an upgrade
    headers_too_large,   // 431: header or trailer fields over their limits
    rate_limited,        // 429: over the caller's requests per minute
    not_implemented,     // 501: an OpenAI endpoint this server does not offer (embeddings)
    forbidden_origin,    // 403: a CORS preflight from an origin that is not allowed
};

struct refusal_http {
    http_refusal what;
    unsigned http_status;
    const char* type;
    const char* openai_code;
};

const refusal_http& refusal_http_of(http_refusal r);

}  // namespace mnemos::agent::server_detail

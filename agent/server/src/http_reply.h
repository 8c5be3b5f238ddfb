#pragma once
// Writing replies: error replies in OpenAI's shape ({"error": {"message", "type", "param", "code"}}) whose
// status, type and code come from the one table (agent/server/http_errors.h), JSON replies, and Server-Sent
// Events. Every reply to a request from an allowed CORS origin carries Access-Control-Allow-Origin (cors.h).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/server/http_errors.h"
#include "agent/server/src/common.h"
#include "engine/status.h"

namespace mnemos::agent::server_detail {

struct server_state;
using state_ptr = std::shared_ptr<server_state>;

struct reply {
    unsigned status = 200;
    std::string body;
    std::string content_type = "application/json";
    int64_t retry_after = -1;                                       // seconds, for a Retry-After header (429); -1: none
    std::vector<std::pair<std::string, std::string>> headers = {};  // more header fields (CORS preflight)
};

// What an error names besides its message: the request field at fault ("param", e.g. "max_tokens"; "": null)
// and a code more specific than the table's (e.g. "model_not_found"; null: the table's).
struct error_detail {
    std::string param;
    const char* code = nullptr;
};

// {"error": {"message", "type", "param", "code"}} of c (type and code from the errc table).
json error_json(errc c, const std::string& message, const error_detail& d);
// The error reply of c (status, type and code from the errc table).
reply error_reply(errc c, const std::string& message, const error_detail& d);
// The error reply of an HTTP-layer refusal.
reply error_reply(http_refusal r, const std::string& message, const error_detail& d);
// The same without a param or a code of their own. (Overloads, not default arguments: GCC 12 mishandles
// reference-bound temporaries made within a co_await expression, and these are called within many.)
reply error_reply(errc c, const std::string& message);
reply error_reply(http_refusal r, const std::string& message);
// The error reply of a non-ok status. param: the field an invalid_argument message names first
// ("'max_tokens' must be ..." -> "max_tokens"); "messages" for context_exceeded.
reply status_reply(const status& s);
// The field a message names at its start ("'top_p' must be > 0" -> "top_p"); "" when none.
std::string param_of_message(const std::string& message);
reply json_reply(const json& j, unsigned status = 200);

// Writes rep as the answer to req and counts 4xx/5xx. Returns keep-alive (false after a 5xx, when req
// asked to close, when the server stops, or when the write failed).
awaitable<bool> write_reply(beast::tcp_stream& stream, const request_t& req, reply rep, state_ptr st);

// An SSE response: header once, then "data: ...\n\n" chunks (chunked transfer encoding).
struct sse_writer {
    beast::tcp_stream* stream = nullptr;
    std::string allow_origin;  // Access-Control-Allow-Origin of the header ("": none); cors_allow_origin
    bool header_sent = false;
    bool ok = true;  // false once a write failed (the client is gone)
};

// Sends one event (the header first, the first time). Returns false when the client is gone.
awaitable<bool> sse_send(sse_writer* w, unsigned version, std::string data);
// Ends the chunked body. Returns false when the client is gone.
awaitable<bool> sse_end(sse_writer* w);

}  // namespace mnemos::agent::server_detail

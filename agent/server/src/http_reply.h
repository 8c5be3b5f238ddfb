#pragma once
// Writing replies: error replies ({"error": {"message", "type", "code"}}) whose status and type come
// from the one table (agent/server/http_errors.h), JSON replies, and Server-Sent Events.
#include <memory>
#include <string>

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
    int64_t retry_after = -1;  // seconds, for a Retry-After header (429); -1: none
};

// The error reply of c (status and type from the errc table).
reply error_reply(errc c, const std::string& message);
// The error reply of an HTTP-layer refusal.
reply error_reply(http_refusal r, const std::string& message);
// The error reply of a non-ok status.
reply status_reply(const status& s);
reply json_reply(const json& j, unsigned status = 200);

// Writes rep as the answer to req and counts 4xx/5xx. Returns keep-alive (false after a 5xx, when req
// asked to close, when the server stops, or when the write failed).
awaitable<bool> write_reply(beast::tcp_stream& stream, const request_t& req, reply rep, state_ptr st);

// An SSE response: header once, then "data: ...\n\n" chunks (chunked transfer encoding).
struct sse_writer {
    beast::tcp_stream* stream = nullptr;
    bool header_sent = false;
    bool ok = true;  // false once a write failed (the client is gone)
};

// Sends one event (the header first, the first time). Returns false when the client is gone.
awaitable<bool> sse_send(sse_writer* w, unsigned version, std::string data);
// Ends the chunked body. Returns false when the client is gone.
awaitable<bool> sse_end(sse_writer* w);

}  // namespace mnemos::agent::server_detail

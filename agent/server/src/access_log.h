#pragma once
// One HTTP request as the access log and the request metrics see it: filled while it is answered (route,
// caller, status, the tokens of the turns it ran), then finished once: counted in
// mnemos_http_requests_total{endpoint,status}, timed in mnemos_http_request_duration_seconds{endpoint,status,model},
// and, with server_options::log_requests, written to stderr as one line (text or JSON).
// Never holds a body or a key: only the key's name.
#include <chrono>
#include <cstdint>
#include <string>

#include "agent/server/server.h"
#include "engine/engine.h"

namespace mnemos::agent::server_detail {

struct server_state;

struct access_record {
    std::string method;
    std::string path;               // without the query string (it may carry "?key=")
    std::string endpoint = "none";  // the route's pattern ("/v1/sessions/{id}"); "none": no route matched
    std::string client;             // the peer's address
    std::string key_name;           // the API key's name; "" under open access or when none was valid
    unsigned status = 0;            // the answer's; 0 until written (finish: 499, the client left first)
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    int32_t n_turns = 0;  // generations the request ran (tokens below summed over them)
    int64_t n_prompt = 0, n_cached = 0, n_generated = 0;

    // Adds a generation's tokens.
    void add_turn(const engine::finish_info& info);
};

// The log line of rec (no trailing newline). text:
//   mnemos serve: POST /v1/chat/completions 200 12.3ms client=127.0.0.1 key=gm prompt=31 cached=16 generated=8
// (key= only with a key, the token fields only when a turn ran); json: {"time", "method", "path", "endpoint",
// "status", "duration_ms", "client", "key"?, "turns"?, "prompt_tokens"?, "cached_tokens"?, "generated_tokens"?}.
std::string access_line(const access_record& rec, double seconds, access_log_format format);

// Counts and times rec (status 0 becomes 499), and logs it when the server logs requests.
void finish_request(server_state& st, access_record& rec);

}  // namespace mnemos::agent::server_detail

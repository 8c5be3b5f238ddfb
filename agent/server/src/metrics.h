#pragma once
// The server's counters and GET /metrics (Prometheus text).
#include <atomic>
#include <cstdint>
#include <string>

#include "engine/status.h"

namespace mnemos::agent::server_detail {

struct server_state;

struct metrics {
    std::atomic<int64_t> n_requests{0};
    std::atomic<int64_t> n_4xx{0};
    std::atomic<int64_t> n_5xx{0};
    std::atomic<int64_t> n_rate_limited{0};  // 429s
    std::atomic<int64_t> n_truncated{0};     // generations whose history was cut to fit the window
    std::atomic<int64_t> n_turns{0};
    std::atomic<int64_t> n_generated{0};  // finish_info::n_generated
    std::atomic<int64_t> n_prompt{0};     // finish_info::n_prompt
    std::atomic<int64_t> n_reused{0};     // finish_info::n_reused (prefix cache hits)
    std::atomic<int64_t> n_connections{0};
    std::atomic<int64_t> n_active_turns{0};
    std::atomic<int64_t> n_unreported{0};     // errors no client could be told of (logged; unreported_error)
    std::atomic<int64_t> n_accept_errors{0};  // failed accept() calls (out of descriptors: retried every 100 ms)
};

// An error that reaches no client (e.g. end_turn failing after the reply's stream has begun, or on an
// error path that already answers): counted in mnemos_unreported_errors_total and logged to stderr as
// "mnemos serve: <what>: <error>". s.ok(): nothing.
void unreported_error(server_state& st, const char* what, const status& s);

// The Prometheus text of GET /metrics: the server's counters, the engine's and the KV pool's.
std::string metrics_text(const server_state& st);

}  // namespace mnemos::agent::server_detail

#pragma once
// The server's counters and GET /metrics (Prometheus text).
#include <atomic>
#include <cstdint>
#include <string>

#include "agent/core/prometheus.h"
#include "engine/status.h"

namespace mnemos::agent::server_detail {

struct server_state;

// The server's own counters. Generations (turns, tokens, their latencies) are counted by the engine runner,
// whoever submits them (engine_runner::metrics()).
struct metrics {
    prom::counter_family requests{
        "mnemos_http_requests_total", "HTTP requests answered, by route and status", {"endpoint", "status"}};
    prom::histogram_family request_duration{"mnemos_http_request_duration_seconds",
                                            "end-to-end latency of HTTP requests, from the request read to the answer "
                                            "written (a stream: its end)",
                                            {"endpoint", "status", "model"},
                                            prom::latency_buckets()};
    std::atomic<int64_t> n_4xx{0};
    std::atomic<int64_t> n_5xx{0};
    std::atomic<int64_t> n_rate_limited{0};  // 429s
    std::atomic<int64_t> n_truncated{0};     // generations whose history was cut to fit the window
    std::atomic<int64_t> n_connections{0};
    std::atomic<int64_t> n_active_turns{0};
    std::atomic<int64_t> n_unreported{0};     // errors no client could be told of (logged; unreported_error)
    std::atomic<int64_t> n_accept_errors{0};  // failed accept() calls (out of descriptors: retried every 100 ms)
};

// An error that reaches no client (e.g. end_turn failing after the reply's stream has begun, or on an
// error path that already answers): counted in mnemos_unreported_errors_total and logged to stderr as
// "mnemos serve: <what>: <error>". s.ok(): nothing.
void unreported_error(server_state& st, const char* what, const status& s);

// The Prometheus text of GET /metrics: mnemos_build_info, the server's counters and request latencies, every
// generation's (the runner's: the server's and those of mnemos play on the same runner), the engine's and the
// KV pool's.
std::string metrics_text(const server_state& st);

}  // namespace mnemos::agent::server_detail

#pragma once
// turn_metrics: what every generation costs, whoever starts it (the server's endpoints, mnemos play's turns and
// probes): queue wait, time to first token, time per output token, duration, tokens, as Prometheus families
// labelled by endpoint (who submitted it), status (the finish reason: eos, stop, length, cancelled, error) and
// model. The engine runner owns one and instruments every request submitted to it.
#include <chrono>
#include <string>

#include "agent/core/prometheus.h"
#include "engine/engine.h"

namespace mnemos::agent {

class turn_metrics {
  public:
    explicit turn_metrics(std::string model);

    using steady = std::chrono::steady_clock;

    // Wraps r's on_prefill, on_token and on_finish (keeping r's own) so that the turn is measured when it
    // finishes: queue wait from now to the start of the engine step that first ran it (*step_start, written by
    // the engine thread before each step; read by the callbacks, which run inside steps on that thread), time
    // to first token from now to the first sampled token, time per output token between the first and the
    // last, duration from now to the end; tokens (prompt, reused, generated) and the turn counted under
    // endpoint. A request that never runs (cancelled while waiting) has no queue wait.
    void instrument(engine::request& r, std::string endpoint, const steady::time_point* step_start);

    // The families as Prometheus text.
    void write(std::string& out) const;

    const std::string& model() const { return model_; }
    // Totals over all labels (tests, the unlabelled sums).
    double n_turns() const { return turns_.total(); }
    double n_generated() const { return generated_.total(); }

    prom::histogram_family queue_wait{
        "mnemos_queue_wait_seconds",
        "time from submission to the start of the engine step that first ran a generation (admission wait)",
        {"endpoint", "status", "model"},
        prom::wait_buckets()};
    prom::histogram_family time_to_first_token{
        "mnemos_time_to_first_token_seconds",
        "time from submission to the first sampled token (queue wait and prefill included)",
        {"endpoint", "status", "model"},
        prom::latency_buckets()};
    prom::histogram_family time_per_output_token{
        "mnemos_time_per_output_token_seconds",
        "mean time between sampled tokens after the first, per generation of two tokens or more",
        {"endpoint", "status", "model"},
        prom::token_buckets()};
    prom::histogram_family duration{"mnemos_turn_duration_seconds",
                                    "time from submission to the end of a generation",
                                    {"endpoint", "status", "model"},
                                    prom::latency_buckets()};

  private:
    std::string model_;
    prom::counter_family turns_{"mnemos_turns_total", "generations finished", {"endpoint", "status", "model"}};
    prom::counter_family prompt_{"mnemos_prompt_tokens_total", "prompt tokens submitted", {"endpoint", "model"}};
    prom::counter_family reused_{"mnemos_prefix_cache_hit_tokens_total",
                                 "prompt tokens whose KV was reused (prefix cache hits)",
                                 {"endpoint", "model"}};
    prom::counter_family generated_{"mnemos_tokens_generated_total",
                                    "sampled tokens (a final end-of-generation token included)",
                                    {"endpoint", "model"}};
};

}  // namespace mnemos::agent

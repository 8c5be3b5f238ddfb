// turn_metrics (agent/core/turn_metrics.h).
#include "agent/core/turn_metrics.h"

#include <algorithm>
#include <chrono>
#include <memory>

namespace mnemos::agent {

namespace {

using steady = std::chrono::steady_clock;

double seconds_between(steady::time_point a, steady::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

// One turn's clock, touched only on the engine thread after submission.
struct turn_clock {
    steady::time_point submitted = steady::now();
    steady::time_point admitted{};
    steady::time_point first_token{};
    bool was_admitted = false;
    bool had_token = false;
};

}  // namespace

turn_metrics::turn_metrics(std::string model) : model_(std::move(model)) {}

void turn_metrics::instrument(engine::request& r, std::string endpoint, const steady::time_point* step_start) {
    auto clock = std::make_shared<turn_clock>();
    // The first prompt chunk is computed in the first step that runs the request: that step began when its
    // queue wait ended (the engine admits waiting requests at the start of a step).
    r.on_prefill = [clock, step_start, inner = std::move(r.on_prefill)](int32_t n_done, int32_t n_prompt) {
        if (!clock->was_admitted) {
            clock->admitted = std::max(clock->submitted, *step_start);
            clock->was_admitted = true;
        }
        if (inner) inner(n_done, n_prompt);
    };
    r.on_token = [clock, inner = std::move(r.on_token)](engine::token_id t, std::string_view text) {
        if (!clock->had_token) {
            clock->first_token = steady::now();
            clock->had_token = true;
        }
        if (inner) inner(t, text);
    };
    r.on_finish = [this, clock, endpoint = std::move(endpoint),
                   inner = std::move(r.on_finish)](const engine::finish_info& info) {
        const steady::time_point end = steady::now();
        // A first token that ends the generation (end-of-generation) reaches no on_token: it came at the end.
        if (!clock->had_token && info.n_generated > 0) clock->first_token = end;
        const prom::label_values lv = {endpoint, engine::finish_reason_name(info.reason), model_};
        if (clock->was_admitted) queue_wait.observe(lv, seconds_between(clock->submitted, clock->admitted));
        if (info.n_generated > 0)
            time_to_first_token.observe(lv, seconds_between(clock->submitted, clock->first_token));
        if (info.n_generated > 1)
            time_per_output_token.observe(lv, seconds_between(clock->first_token, end) / (info.n_generated - 1));
        duration.observe(lv, seconds_between(clock->submitted, end));
        turns_.add(lv);
        const prom::label_values em = {endpoint, model_};
        prompt_.add(em, info.n_prompt);
        reused_.add(em, info.n_reused);
        generated_.add(em, info.n_generated);
        if (inner) inner(info);
    };
}

void turn_metrics::write(std::string& out) const {
    turns_.write(out);
    prompt_.write(out);
    reused_.write(out);
    generated_.write(out);
    queue_wait.write(out);
    time_to_first_token.write(out);
    time_per_output_token.write(out);
    duration.write(out);
}

}  // namespace mnemos::agent

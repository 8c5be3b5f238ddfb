// "n" choices sharing a prompt (choices.h).
#include "agent/server/src/choices.h"

#include <boost/asio/experimental/channel.hpp>
#include <deque>

#include "agent/server/src/engine_link.h"
#include "agent/server/src/openai.h"

namespace mnemos::agent::server_detail {

namespace {

using signal_channel = net::experimental::channel<void(error_code, int32_t)>;
using signal_link = engine_link<signal_channel>;

// Deltas of all choices, handed to the caller one at a time: a delta arriving while another is being handed
// waits in the queue and is handed by the same coroutine (all run on one strand).
struct delta_queue {
    choice_delta_fn fn;
    struct item {
        int32_t i;
        std::string text;
        std::vector<engine::sampled_logprobs> lps;
    };
    std::deque<item> q;
    std::vector<std::vector<engine::sampled_logprobs>> lps;  // per choice, waiting for the next text delta
    bool busy = false;
    bool ok = true;
};

awaitable<bool> hand_over(std::shared_ptr<delta_queue> dq, int32_t i, std::string text) {
    dq->q.push_back({i, std::move(text), std::move(dq->lps[size_t(i)])});
    dq->lps[size_t(i)].clear();
    if (dq->busy) co_return dq->ok;
    dq->busy = true;
    while (!dq->q.empty() && dq->ok) {
        auto it = std::move(dq->q.front());
        dq->q.pop_front();
        dq->ok = co_await dq->fn(it.i, std::move(it.text), std::move(it.lps));
    }
    dq->q.clear();
    dq->busy = false;
    co_return dq->ok;
}

delta_fn choice_delta(const std::shared_ptr<delta_queue>& dq, int32_t i) {
    if (!dq) return {};
    return [dq, i](std::string text) { return hand_over(dq, i, std::move(text)); };
}

logprobs_fn choice_logprobs(const std::shared_ptr<delta_queue>& dq, int32_t i) {
    if (!dq) return {};
    return [dq, i](std::vector<engine::sampled_logprobs> v) {
        auto& mine = dq->lps[size_t(i)];
        mine.insert(mine.end(), std::make_move_iterator(v.begin()), std::make_move_iterator(v.end()));
    };
}

engine::request choice_request(const engine::request& r, int32_t i) {
    engine::request c = r;
    c.sampling.seed = choice_seed(r.sampling.seed, i);
    if (i > 0) {  // the prompt's logits are choice 0's to report; the others share its pages
        c.on_logits = {};
        c.reuse_prefix = true;
    }
    return c;
}

}  // namespace

uint64_t choice_seed(uint64_t seed, int32_t i) {
    if (i == 0) return seed;
    // splitmix64 of (seed, i): neighbouring seeds and choices give unrelated streams.
    uint64_t z = seed + uint64_t(i) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

json choices_usage(const std::vector<turn_outcome>& outs) {
    engine::finish_info sum = outs.front().info;
    for (size_t i = 1; i < outs.size(); ++i) sum.n_generated += outs[i].info.n_generated;
    return usage_json(sum);
}

void add_choices_meta(json& j, const std::vector<turn_outcome>& outs) {
    if (outs.size() < 2) return;
    json reused = json::array();
    for (const auto& o : outs) reused.push_back(o.info.n_reused);
    j["mnemos"]["choices_reused"] = std::move(reused);
}

awaitable<std::vector<turn_outcome>> run_choices(state_ptr st, engine::request r, int32_t n, choice_delta_fn on_delta,
                                                 std::string sid, access_record* rec) {
    n = std::clamp(n, 1, k_max_choices);
    std::shared_ptr<delta_queue> dq;
    if (on_delta) {
        dq = std::make_shared<delta_queue>();
        dq->fn = std::move(on_delta);
        dq->lps.resize(size_t(n));
    }
    std::vector<turn_outcome> outs(static_cast<size_t>(n));
    if (n == 1) {
        outs[0] = co_await run_turn(st, std::move(r), choice_delta(dq, 0), sid, rec, choice_logprobs(dq, 0));
        co_return outs;
    }
    auto ex = co_await net::this_coro::executor;
    // Carries -1 when choice 0's prompt is prefilled, then i as choice i ends.
    auto events = std::make_shared<signal_link>(ex, static_cast<size_t>(n) + 2);
    const std::weak_ptr<signal_link> weak_events = events;
    auto gate = st->gate;
    auto spawn = [&](engine::request c, int32_t i) {
        net::co_spawn(ex, run_turn(st, std::move(c), choice_delta(dq, i), sid, rec, choice_logprobs(dq, i)),
                      [events, &outs, i](std::exception_ptr e, turn_outcome o) {
                          if (e) {
                              log_exception("a choice")(e);
                              o.info.reason = engine::finish_reason::error;
                              o.info.error = make_error(errc::internal, "a choice failed");
                          }
                          outs[size_t(i)] = std::move(o);
                          events->ch.try_send(error_code{}, i);
                      });
    };
    engine::request first = choice_request(r, 0);
    // The engine thread reaches the channel only through the link (engine_link.h).
    first.on_prefill = [weak_events, gate](int32_t done, int32_t total) {
        if (done < total) return;
        post_to_link(gate, weak_events, [](signal_channel& ch) { ch.try_send(error_code{}, -1); });
    };
    spawn(std::move(first), 0);
    int32_t n_ended = 0;
    bool others = false;
    while (n_ended < n) {
        auto [ec, what] = co_await events->ch.async_receive(use_tuple);
        if (ec) break;  // the channel is never closed while choices run; defensive
        if (what >= 0) n_ended++;
        // The others start once choice 0's prompt is prefilled (its pages are in the prefix cache), or it ended.
        if (!others) {
            others = true;
            for (int32_t i = 1; i < n; ++i) spawn(choice_request(r, i), i);
        }
    }
    co_return outs;
}

}  // namespace mnemos::agent::server_detail

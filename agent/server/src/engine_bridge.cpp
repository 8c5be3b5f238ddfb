// Submitting engine requests and awaiting them from coroutines (engine_bridge.h).
#include "agent/server/src/engine_bridge.h"

#include <boost/asio/experimental/channel.hpp>

#include "agent/server/src/engine_link.h"

namespace mnemos::agent::server_detail {

namespace {

struct turn_event {
    std::string text;
    bool done = false;
    engine::finish_info info;
    std::vector<engine::sampled_logprobs> lps;  // of the tokens sampled since the last event (with logprobs)
};
using turn_channel = net::experimental::channel<void(error_code, turn_event)>;
using turn_link = engine_link<turn_channel>;

}  // namespace

awaitable<bool> ready(bool v) { co_return v; }

result<engine::request> make_request(server_state& st, turn_plan& plan, const gen_params& g, int32_t extra) {
    // With sparse attention the whole history is the prompt, up to what the KV pool holds.
    const int32_t n_ctx = st.runner->history_limit();
    const int32_t want = g.max_tokens > 0 ? g.max_tokens : st.opt.default_max_tokens;
    if (auto fs = fit_to_window(plan, n_ctx, want + extra); !fs.ok()) return fs;
    const int32_t n_prompt = static_cast<int32_t>(plan.prompt.size()) + extra;
    if (n_prompt + 1 >= n_ctx)
        return make_error(errc::context_exceeded, "prompt has " + std::to_string(n_prompt) +
                                                      " tokens; the context holds " + std::to_string(n_ctx));
    if (plan.context.truncated) st.m.n_truncated++;
    engine::request r;
    r.prompt = plan.prompt;
    r.scope = plan.scope;
    r.max_tokens = std::min(want, n_ctx - n_prompt);
    r.sampling = g.sampling;
    r.stop = plan.stop;
    r.stop.insert(r.stop.end(), g.stop.begin(), g.stop.end());
    return r;
}

void let_document_complete(const server_state& st, const gen_params& g, engine::request& r) {
    if (g.max_tokens > 0 || !r.constraint || !r.constraint_trigger.empty()) return;
    const int32_t room = st.runner->history_limit() - static_cast<int32_t>(r.prompt.size());
    r.max_tokens = std::max(r.max_tokens, std::min(room, st.runner->n_ctx()));
}

void add_context_meta(json& j, const context_window& c) {
    if (c.truncated || c.sparse) j["mnemos"] = {{"context", context_window_json(c)}};
}

json context_event_extra(const context_window& c) {
    return c.truncated || c.sparse ? json{{"context", context_window_json(c)}} : json();
}

awaitable<turn_outcome> run_turn(state_ptr st, engine::request r, delta_fn on_delta, std::string sid,
                                 access_record* rec, logprobs_fn on_logprobs) {
    // The engine's callbacks reach the channel only through the link (engine_link.h).
    auto link = std::make_shared<turn_link>(co_await net::this_coro::executor,
                                            static_cast<size_t>(std::max(r.max_tokens, 0)) + 8);
    const std::weak_ptr<turn_link> weak = link;
    auto gate = st->gate;
    auto hub = st->hub;
    // Log-probabilities travel with the next token event (engine thread only: no lock).
    std::shared_ptr<std::vector<engine::sampled_logprobs>> lps;
    if (r.logprobs && on_logprobs) {
        lps = std::make_shared<std::vector<engine::sampled_logprobs>>();
        r.on_logprobs = [lps](const engine::sampled_logprobs& lp) { lps->push_back(lp); };
    }
    r.on_token = [weak, gate, hub, sid, lps](engine::token_id, std::string_view text) {
        {
            std::lock_guard lk(gate->mu);
            if (!gate->open) return;
            publish_token(hub, sid, text);
        }
        std::vector<engine::sampled_logprobs> with;
        if (lps) with.swap(*lps);
        post_to_link(gate, weak, [t = std::string(text), w = std::move(with)](turn_channel& ch) mutable {
            ch.try_send(error_code{}, turn_event{std::move(t), false, {}, std::move(w)});
        });
    };
    r.on_finish = [weak, gate](const engine::finish_info& info) {
        post_to_link(gate, weak, [info](turn_channel& ch) {
            ch.try_send(error_code{}, turn_event{{}, true, info, {}});
        });
    };
    st->m.n_active_turns++;
    const engine::seq_id id = st->runner->submit(std::move(r), rec ? rec->endpoint : std::string("/v1/ws"));
    {
        std::lock_guard lk(st->inflight_mu);
        st->inflight.insert(id);
    }
    turn_outcome out;
    for (;;) {
        auto [ec, ev] = co_await link->ch.async_receive(use_tuple);
        if (ec) {
            out.info.reason = engine::finish_reason::error;
            out.info.error = make_error(errc::internal, "token channel: " + ec.message());
            break;
        }
        if (ev.done) {
            out.info = std::move(ev.info);
            break;
        }
        if (on_logprobs && !ev.lps.empty() && !out.client_gone) on_logprobs(std::move(ev.lps));
        out.text += ev.text;
        if (on_delta && !out.client_gone && !ev.text.empty()) {
            if (!co_await on_delta(ev.text)) {
                out.client_gone = true;
                st->runner->cancel(id);
            }
        }
    }
    {
        std::lock_guard lk(st->inflight_mu);
        st->inflight.erase(id);
    }
    st->m.n_active_turns--;
    if (rec) rec->add_turn(out.info);
    co_return out;
}

}  // namespace mnemos::agent::server_detail

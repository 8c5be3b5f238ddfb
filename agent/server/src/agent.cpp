// The tool-agent loop of agent sessions (agent.h): agent/tooling's step machine, driven from a coroutine.
#include "agent/server/src/agent.h"

#include <boost/asio/experimental/channel.hpp>

#include "agent/core/util.h"
#include "agent/server/src/engine_bridge.h"
#include "agent/server/src/openai.h"
#include "agent/tooling/agent_loop.h"

namespace mnemos::agent::server_detail {

namespace {

using tool_channel = net::experimental::channel<void(error_code, json)>;

// Runs one tool on the calling coroutine's strand with a timeout. Returns
// {"result": ...} or {"error": "..."} (unknown tool, bad arguments, failure, timeout).
awaitable<json> run_tool(std::shared_ptr<tools::tool_registry> reg, std::string name, json args, int32_t timeout_ms) {
    auto ex = co_await net::this_coro::executor;
    auto ch = std::make_shared<tool_channel>(ex, 2);
    auto timer = std::make_shared<net::steady_timer>(ex, std::chrono::milliseconds(timeout_ms));
    timer->async_wait([ch, timeout_ms](const error_code& ec) {
        if (!ec) ch->try_send(error_code{}, json{{"error", "timeout after " + std::to_string(timeout_ms) + " ms"}});
    });
    reg->call(name, args, [ch, ex](result<json> r) {
        json v = r ? json{{"result", std::move(r.value())}} : json{{"error", r.error().message()}};
        net::post(ex, [ch, v = std::move(v)]() mutable { ch->try_send(error_code{}, std::move(v)); });
    });
    auto [ec, v] = co_await ch->async_receive(use_tuple);
    timer->cancel();
    if (ec) v = json{{"error", "tool channel: " + ec.message()}};
    co_return v;
}

// What a turn needs before it begins: the session's settings, its tools, and the loop's options.
struct agent_prep {
    agent_settings settings;
    std::shared_ptr<tools::tool_registry> reg;
    loop::loop_options lo;
};

// The loop's choices over reg's tools: none without tools (first_choice is then not read); otherwise
// first_choice (a tool_choice value) for the first generation, and the grammars of automatic and forced calls.
status set_choices(loop::loop_options& lo, const tools::tool_registry& reg, const json& first_choice) {
    lo.first_choice = tool_choice::none;
    if (reg.list().empty()) return {};
    auto spec = parse_tool_choice_value(first_choice, reg);
    if (!spec) return spec.error();
    lo.first_choice = spec->choice;
    // The automatic grammar also serves the steps after a first "none" or forced one; if it cannot compile,
    // only a first automatic step is an error (every step is then plain text).
    auto ga = tool_call_grammar(reg, {tool_choice::automatic, ""});
    if (ga) lo.g_auto = ga.value();
    if (spec->choice == tool_choice::automatic && !ga) return ga.error();
    if (spec->choice == tool_choice::required || spec->choice == tool_choice::named) {
        auto gf = tool_call_grammar(reg, spec.value());
        if (!gf) return gf.error();
        lo.g_forced = gf.value();
    }
    return {};
}

result<agent_prep> prepare(server_state& st, const session& s, const json& first_choice) {
    json aj = json::parse(s.agent_json, nullptr, false);
    auto settings = parse_agent_settings(aj.is_discarded() ? json::object() : aj);
    if (!settings) return settings.error();
    agent_prep p;
    p.settings = std::move(settings.value());
    p.settings.seed += static_cast<uint64_t>(s.n_turns()) * 0x9E3779B97F4A7C15ull;
    auto reg = make_agent_tools(p.settings, s.id, *st.sessions);
    if (!reg) return reg.error();
    p.reg = std::move(reg.value());
    p.lo.max_steps = p.settings.max_steps;
    if (auto cs = set_choices(p.lo, *p.reg, first_choice); !cs.ok()) return cs;
    // A forced generation's prompt ends with the call tag; the JSON after it is constrained.
    if (p.lo.g_forced) p.lo.call_tag = st.runner->mdl().tok().encode(std::string(k_call_prefix), false, false);
    return p;
}

// The server's side of one turn: the prompt to extend, and what the reply reports.
struct agent_run {
    agent_run(state_ptr st_, session_ptr s_, gen_params g_, turn_plan cur_)
        : st(std::move(st_)), s(std::move(s_)), g(std::move(g_)), cur(std::move(cur_)) {}
    state_ptr st;
    session_ptr s;
    gen_params g;
    turn_plan cur;
    context_window context;        // the last cut, when a step's prompt had to be cut
    access_record* rec = nullptr;  // the request's access log record (every step's tokens)
    json steps = json::array();
    engine::finish_info total;
    std::string finish = "stop";
    bool no_room = false;  // a step's prompt did not fit: the turn ends with what it has
};

// One generation on the engine, fed to the loop. Errors: the engine's (error, cancelled), the loop's.
awaitable<status> generate_step(agent_run& run, const loop::generate& g, loop::agent_loop& lp) {
    auto made = make_request(*run.st, run.cur, run.g, static_cast<int32_t>(g.prompt_suffix.size()));
    if (!made) {
        run.finish = "length";
        run.no_room = true;
        co_return status{};
    }
    engine::request r = std::move(made.value());
    if (run.cur.context.truncated || run.cur.context.sparse) run.context = run.cur.context;
    loop::apply(g, r);
    turn_outcome out = co_await run_turn(run.st, std::move(r), delta_fn{}, run.s->id, run.rec);
    note_attention(run.context, out.info.attention);
    run.total.n_prompt += out.info.n_prompt;
    run.total.n_generated += out.info.n_generated;
    run.total.n_reused += out.info.n_reused;
    if (out.info.reason == engine::finish_reason::error) co_return out.info.error;
    if (out.info.reason == engine::finish_reason::cancelled) co_return make_error(errc::cancelled, "turn cancelled");
    run.finish = openai_finish(out.info.reason);
    co_return lp.on_generated(std::move(out.text));
}

// One round of tool calls: the call message (durably, before running them), the tools in order, their
// results (durably); the steps of the reply. Errors: the session's, the loop's.
awaitable<status> tools_step(agent_run& run, const agent_prep& p, const loop::run_tools& t, loop::agent_loop& lp) {
    const json tc = openai_tool_calls(t.calls);
    std::vector<engine::chat_message> call_msg{{"assistant", t.content}};
    std::vector<json> call_extra{{{"kind", "tool_call"}, {"tool_calls", tc}, {"step", t.step}}};
    auto cp = run.st->sessions->continue_turn(run.s, call_msg, call_extra);
    if (!cp) co_return cp.error();
    for (size_t i = 0; i < t.calls.size(); ++i)
        run.steps.push_back({{"type", "tool_call"},
                             {"step", t.step},
                             {"id", tc[i]["id"]},
                             {"name", t.calls[i].name},
                             {"arguments", t.calls[i].arguments}});
    std::vector<json> results, extras;
    for (size_t i = 0; i < t.calls.size(); ++i) {
        json res = co_await run_tool(p.reg, t.calls[i].name, t.calls[i].arguments, p.settings.tool_timeout_ms);
        const json id = tc[i]["id"];
        json ex = {{"kind", "tool_result"}, {"name", t.calls[i].name}, {"tool_call_id", id}, {"step", t.step}};
        ex.update(res);
        extras.push_back(std::move(ex));
        json stp = {{"type", "tool_result"}, {"step", t.step}, {"id", id}, {"name", t.calls[i].name}};
        stp.update(res);
        run.steps.push_back(std::move(stp));
        results.push_back(std::move(res));
    }
    auto np = run.st->sessions->continue_turn(run.s, loop::tool_messages(t, results), extras);
    if (!np) co_return np.error();
    run.cur = std::move(np.value());
    co_return lp.on_tool_results(std::move(results));
}

// Drives the loop until it is done or the prompt no longer fits; returns the final text.
awaitable<result<std::string>> drive(agent_run& run, const agent_prep& p) {
    loop::agent_loop lp(p.lo);
    for (auto a = lp.next(); !std::holds_alternative<loop::done>(a); a = lp.next()) {
        status st;
        if (auto* g = std::get_if<loop::generate>(&a))
            st = co_await generate_step(run, *g, lp);
        else
            st = co_await tools_step(run, p, std::get<loop::run_tools>(a), lp);
        if (!st.ok()) co_return st;
        if (run.no_room) co_return std::string();
    }
    co_return std::get<loop::done>(lp.next()).text;
}

// The steps a caller sees: tool results only with read access to the session (they may quote its log,
// system message included); without it each result step says "redacted": true instead.
json visible_steps(const json& steps, bool may_read) {
    if (may_read) return steps;
    json out = json::array();
    for (json st : steps) {
        if (st.value("type", "") == "tool_result") {
            st.erase("result");
            st.erase("error");
            st["redacted"] = true;
        }
        out.push_back(std::move(st));
    }
    return out;
}

json agent_reply(const agent_run& run, const std::string& final_text, bool may_read) {
    json steps = visible_steps(run.steps, may_read);
    steps.push_back({{"type", "message"}, {"role", "assistant"}, {"content", final_text}});
    json j = {{"id", "chatcmpl-" + random_hex(24)},
              {"object", "chat.completion"},
              {"created", unix_now()},
              {"model", run.st->model_id},
              {"session_id", run.s->id},
              {"choices", json::array({{{"index", 0},
                                        {"message", {{"role", "assistant"}, {"content", final_text}}},
                                        {"finish_reason", run.finish}}})},
              {"steps", steps},
              {"usage", usage_json(run.total)}};
    add_context_meta(j, run.context);
    return j;
}

}  // namespace

// The agent loop of a tool session: agent/tooling's step machine decides (choices, calls, when it is done);
// this runs its generations on the engine and its tools here, every message a durable event.
awaitable<bool> agent_turn(request_ctx& cx, session_ptr s, std::vector<engine::chat_message> msgs, gen_params g,
                           json first_choice) {
    auto prep = prepare(*cx.st, *s, first_choice);
    if (!prep) co_return co_await respond(cx, status_reply(prep.error()));
    auto plan = cx.st->sessions->begin_turn(s, msgs);
    if (!plan) co_return co_await respond(cx, status_reply(plan.error()));
    agent_run run(cx.st, s, std::move(g), std::move(plan.value()));
    run.rec = &cx.rec;
    auto final_text = co_await drive(run, prep.value());
    if (!final_text) {
        unreported_error(*cx.st, "end_turn of a failed agent step", cx.st->sessions->end_turn(s, {}, false));
        co_return co_await respond(cx, status_reply(final_text.error()));
    }
    if (auto es = cx.st->sessions->end_turn(s, final_text.value(), true, context_event_extra(run.context)); !es.ok())
        co_return co_await respond(cx, status_reply(es));
    co_return co_await respond(cx, json_reply(agent_reply(run, final_text.value(), can_read(cx.who, *s))));
}

}  // namespace mnemos::agent::server_detail

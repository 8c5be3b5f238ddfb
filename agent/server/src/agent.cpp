// The tool-agent loop of agent sessions (agent.h).
#include "agent/server/src/agent.h"

#include <boost/asio/experimental/channel.hpp>

#include "agent/core/util.h"
#include "agent/server/src/engine_bridge.h"
#include "agent/server/src/openai.h"
#include "tools/prompt.h"

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

}  // namespace

// The agent loop of a tool session: plan -> tool call -> tool result -> plan
// again, up to max_steps generations; every message is a durable event.
// first_choice applies to the first generation ("auto" afterwards, none on the last).
// Long (about 170 lines): it is moved here as it was; a later step makes it drive agent/tooling's step machine.
awaitable<bool> agent_turn(request_ctx& cx, session_ptr s, std::vector<engine::chat_message> msgs, gen_params g,
                           json first_choice) {
    auto& st = cx.st;
    json aj = json::parse(s->agent_json, nullptr, false);
    auto settings = parse_agent_settings(aj.is_discarded() ? json::object() : aj);
    if (!settings) {
        co_return co_await respond(cx, status_reply(settings.error()));
    }
    settings->seed += static_cast<uint64_t>(s->n_turns()) * 0x9E3779B97F4A7C15ull;
    auto reg_r = make_agent_tools(settings.value(), s->id, *st->sessions);
    if (!reg_r) {
        co_return co_await respond(cx, status_reply(reg_r.error()));
    }
    std::shared_ptr<tools::tool_registry> reg = reg_r.value();
    // Grammars: "auto" (after the trigger), "required" and named (from the first token).
    std::shared_ptr<const engine::grammar> g_auto, g_first;
    std::string first_mode = "auto";
    if (!reg->list().empty()) {
        engine::grammar_options go;
        go.max_leading_whitespace = 1;
        auto ga = reg->call_grammar(go);
        if (ga) g_auto = ga.value();
        json probe = {{"tools", json::array()}, {"tool_choice", first_choice}};
        for (const auto& t : reg->list())
            probe["tools"].push_back(
                {{"type", "function"}, {"function", {{"name", t.name}, {"parameters", t.parameters}}}});
        auto pc = parse_chat_tools(probe);
        if (!pc) {
            co_return co_await respond(cx, status_reply(pc.error()));
        }
        if (pc->forced_call) {
            g_first = pc->constraint;
            first_mode = "forced";
        } else if (pc->choice == tool_choice::none) {
            first_mode = "none";
        }
    }
    auto plan = st->sessions->begin_turn(s, msgs);
    if (!plan) {
        co_return co_await respond(cx, status_reply(plan.error()));
    }
    const auto& mdl = st->runner->mdl();
    context_window context;  // the last cut, when a step's prompt had to be cut
    json steps = json::array();
    engine::finish_info total;
    std::string final_text, finish = "stop";
    turn_plan cur = std::move(plan.value());
    for (int32_t step = 0; step < settings->max_steps; ++step) {
        std::string mode = step == 0 ? first_mode : "auto";
        if (step == settings->max_steps - 1 || !g_auto) mode = "none";
        // The assistant turn opens with the call tag when forced; the JSON after it is constrained.
        const auto tag =
            mode == "forced" ? mdl.tok().encode("<tool_call>\n", false, false) : std::vector<engine::token_id>{};
        auto made = make_request(*st, cur, g, static_cast<int32_t>(tag.size()));
        if (!made) {
            finish = "length";
            break;
        }
        engine::request r = std::move(made.value());
        if (cur.context.truncated || cur.context.sparse) context = cur.context;
        if (mode == "forced") {
            r.prompt.insert(r.prompt.end(), tag.begin(), tag.end());
            r.constraint = g_first;
        } else if (mode == "auto") {
            r.constraint = g_auto;
            r.constraint_trigger = "<tool_call>";
            r.stop.push_back("</tool_call>");
        }
        delta_fn no_delta;
        std::string sid = s->id;
        turn_outcome out = co_await run_turn(st, std::move(r), std::move(no_delta), std::move(sid));
        note_attention(context, out.info.attention);
        total.n_prompt += out.info.n_prompt;
        total.n_generated += out.info.n_generated;
        total.n_reused += out.info.n_reused;
        if (out.info.reason == engine::finish_reason::error || out.info.reason == engine::finish_reason::cancelled) {
            unreported_error(*st, "end_turn of a failed agent step", st->sessions->end_turn(s, {}, false));
            co_return co_await respond(cx, status_reply(out.info.reason == engine::finish_reason::error
                                                            ? out.info.error
                                                            : make_error(errc::cancelled, "turn cancelled")));
        }
        tools::parsed_output calls;
        if (mode != "none") calls = extract_tool_calls(out.text, mode == "forced");
        if (calls.calls.empty()) {
            final_text = out.text;
            finish = openai_finish(out.info.reason);
            break;
        }
        // The call(s), durably, before running them.
        std::string content = mode == "forced" ? std::string() : calls.content;
        json tc = openai_tool_calls(calls.calls);
        for (const auto& c : calls.calls)
            content += (content.empty() ? "" : "\n") + hermes_tool_call(c.name, c.arguments);
        std::vector<engine::chat_message> call_msg{{"assistant", content}};
        std::vector<json> call_extra{{{"kind", "tool_call"}, {"tool_calls", tc}, {"step", step}}};
        auto cp = st->sessions->continue_turn(s, call_msg, call_extra);
        if (!cp) {
            unreported_error(*st, "end_turn of a failed agent step", st->sessions->end_turn(s, {}, false));
            co_return co_await respond(cx, status_reply(cp.error()));
        }
        for (size_t i = 0; i < calls.calls.size(); ++i)
            steps.push_back({{"type", "tool_call"},
                             {"step", step},
                             {"id", tc[i]["id"]},
                             {"name", calls.calls[i].name},
                             {"arguments", calls.calls[i].arguments}});
        std::vector<engine::chat_message> results;
        std::vector<json> result_extra;
        for (size_t i = 0; i < calls.calls.size(); ++i) {
            std::string tname = calls.calls[i].name;
            json targs = calls.calls[i].arguments;
            json res = co_await run_tool(reg, std::move(tname), std::move(targs), settings->tool_timeout_ms);
            const json shown = res.contains("result") ? res["result"] : json{{"error", res["error"]}};
            results.push_back({"tool", tools::render_tool_response(calls.calls[i].name, shown)});
            json ex = {
                {"kind", "tool_result"}, {"name", calls.calls[i].name}, {"tool_call_id", tc[i]["id"]}, {"step", step}};
            ex.update(res);
            result_extra.push_back(ex);
            json stp = {{"type", "tool_result"}, {"step", step}, {"id", tc[i]["id"]}, {"name", calls.calls[i].name}};
            stp.update(res);
            steps.push_back(std::move(stp));
        }
        auto np = st->sessions->continue_turn(s, results, result_extra);
        if (!np) {
            unreported_error(*st, "end_turn of a failed agent step", st->sessions->end_turn(s, {}, false));
            co_return co_await respond(cx, status_reply(np.error()));
        }
        cur = std::move(np.value());
    }
    if (auto es = st->sessions->end_turn(s, final_text, true, context_event_extra(context)); !es.ok()) {
        co_return co_await respond(cx, status_reply(es));
    }
    steps.push_back({{"type", "message"}, {"role", "assistant"}, {"content", final_text}});
    json j = {{"id", "chatcmpl-" + random_hex(24)},
              {"object", "chat.completion"},
              {"created", unix_now()},
              {"model", st->model_id},
              {"session_id", s->id},
              {"choices", json::array({{{"index", 0},
                                        {"message", {{"role", "assistant"}, {"content", final_text}}},
                                        {"finish_reason", finish}}})},
              {"steps", steps},
              {"usage", usage_json(total)}};
    add_context_meta(j, context);
    co_return co_await respond(cx, json_reply(j));
}

}  // namespace mnemos::agent::server_detail

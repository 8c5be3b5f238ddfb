// POST /v1/chat/completions and GET /v1/models (openai.h); the streaming half is in openai_stream.cpp.
#include "agent/server/src/openai.h"

#include <cctype>

#include "agent/core/util.h"
#include "agent/server/src/authz.h"
#include "agent/server/src/choices.h"
#include "agent/server/src/cluster_routes.h"
#include "agent/server/src/engine_bridge.h"
#include "agent/server/src/logprobs_json.h"
#include "agent/server/src/openai_stream.h"
#include "agent/server/src/session_history.h"
#include "agent/server/src/session_turn.h"

namespace mnemos::agent::server_detail {

const char* openai_finish(engine::finish_reason r) {
    switch (r) {
        case engine::finish_reason::length:
            return "length";
        case engine::finish_reason::cancelled:
            return "cancelled";
        case engine::finish_reason::error:
            return "error";
        default:
            return "stop";
    }
}

json usage_json(const engine::finish_info& i) {
    return {{"prompt_tokens", i.n_prompt},
            {"completion_tokens", i.n_generated},
            {"total_tokens", i.n_prompt + i.n_generated},
            {"prompt_tokens_details", {{"cached_tokens", i.n_reused}}}};
}

namespace {

// One choice of a chat.completion: the message (content, tool calls), finish reason and logprobs.
json chat_choice(const turn_outcome& out, size_t i, const tools::parsed_output& calls, bool logprobs,
                 const engine::tokenizer& tk) {
    json message = {{"role", "assistant"}, {"content", out.text}};
    std::string finish = openai_finish(out.info.reason);
    if (!calls.calls.empty()) {
        message["content"] = calls.content.empty() ? json() : json(calls.content);
        message["tool_calls"] = openai_tool_calls(calls.calls);
        finish = "tool_calls";
    }
    json c = {{"index", i}, {"message", message}, {"finish_reason", finish}};
    if (logprobs) c["logprobs"] = {{"content", chat_logprobs_content(tk, out.info.logprobs)}, {"refusal", nullptr}};
    return c;
}

// The non-streaming reply of one generation (n choices).
awaitable<bool> complete_json(request_ctx& cx, const session_ptr& s, engine::request r, context_window cw,
                              const completion_ids& ids, bool tools_on, bool forced, int32_t n) {
    auto& st = cx.st;
    const bool logprobs = r.logprobs;
    std::vector<turn_outcome> outs = co_await run_choices(st, std::move(r), n, choice_delta_fn{}, ids.sid, &cx.rec);
    const turn_outcome& out = outs.front();
    note_attention(cw, out.info.attention);
    std::vector<tools::parsed_output> calls(outs.size());
    if (tools_on)
        for (size_t i = 0; i < outs.size(); ++i) calls[i] = extract_tool_calls(outs[i].text, forced);
    if (s) {  // a session has one history: n is 1 here
        const bool append = out.info.reason != engine::finish_reason::error;
        std::string stored = out.text;
        if (forced && !calls[0].calls.empty())
            stored = hermes_tool_call(calls[0].calls[0].name, calls[0].calls[0].arguments);
        if (auto es = st->sessions->end_turn(s, stored, append, context_event_extra(cw)); !es.ok())
            co_return co_await respond(cx, status_reply(es));
    }
    for (const auto& o : outs)
        if (o.info.reason == engine::finish_reason::error) co_return co_await respond(cx, status_reply(o.info.error));
    json choices = json::array();
    for (size_t i = 0; i < outs.size(); ++i)
        choices.push_back(chat_choice(outs[i], i, calls[i], logprobs, st->runner->mdl().tok()));
    json j = {{"id", ids.id},       {"object", "chat.completion"},   {"created", ids.created},
              {"model", ids.model}, {"choices", std::move(choices)}, {"usage", choices_usage(outs)}};
    if (s) j["session_id"] = ids.sid;
    add_context_meta(j, cw);
    add_choices_meta(j, outs);
    j["mnemos"]["seed"] = ids.seed;
    co_return co_await respond(cx, json_reply(j));
}

// The tools of a request body, when it offers any (or a response_format); null otherwise.
result<std::shared_ptr<const chat_tools>> tools_of(const json& b) {
    auto parsed = parse_chat_tools(b);
    if (!parsed) return parsed.error();
    std::shared_ptr<const chat_tools> ct;
    if (parsed->constraint || parsed->choice != tool_choice::none)
        ct = std::make_shared<chat_tools>(std::move(parsed.value()));
    return ct;
}

// A chat completion appended to a session ("session_id"; created on first use): waits for the session's earlier
// turns, then appends the request's messages that are not in its log yet (session_history.h).
awaitable<bool> session_completion(request_ctx& cx, const std::string& sid, const json& body,
                                   std::vector<engine::chat_message> msgs, gen_params g,
                                   std::shared_ptr<const chat_tools> ct) {
    auto& st = cx.st;
    auto s = find_or_create_session(cx, sid, body);
    if (auto* e = std::get_if<reply>(&s)) co_return co_await respond(cx, std::move(*e));
    const session_ptr& sp = std::get<session_ptr>(s);
    turn_ticket ticket = co_await acquire_turn(st, sp.get(), &cx.stream.socket(), nullptr);
    if (!ticket.slot) {
        if (ticket.client_gone) co_return false;
        co_return co_await respond(cx, std::move(ticket.err));
    }
    auto tail = new_messages_of(*sp, *st->sessions, msgs);
    if (auto* e = std::get_if<reply>(&tail)) co_return co_await respond(cx, std::move(*e));
    if (auto refused = refuse_roles(cx.who, *sp, std::get<std::vector<engine::chat_message>>(tail)))
        co_return co_await respond(cx, std::move(*refused));
    auto plan = st->sessions->begin_turn(sp, std::get<std::vector<engine::chat_message>>(tail));
    if (!plan) co_return co_await respond(cx, status_reply(plan.error()));
    co_return co_await complete(cx, sp, std::move(plan.value()), std::move(g), std::move(ct));
}

}  // namespace

awaitable<bool> complete(request_ctx& cx, session_ptr s, turn_plan plan, gen_params g,
                         std::shared_ptr<const chat_tools> ct) {
    auto& st = cx.st;
    auto made = make_request(*st, plan, g);
    if (!made) {
        if (s) unreported_error(*st, "end_turn after a prompt too long", st->sessions->end_turn(s, {}, false));
        // Built outside the co_await: GCC 12 mishandles reference-bound temporaries within a co_await expression.
        reply too_long = error_reply(errc::context_exceeded, made.error().message(), error_detail{"messages"});
        co_return co_await respond(cx, std::move(too_long));
    }
    engine::request r = std::move(made.value());
    const bool tools_on = ct && ct->choice != tool_choice::none;
    const bool forced = ct && ct->forced_call;
    if (ct) {
        r.constraint = ct->constraint;
        r.constraint_trigger = ct->trigger;
        let_document_complete(*st, g, r);
    }
    r.logprobs = g.logprobs;
    r.top_logprobs = g.top_logprobs;
    const completion_ids ids{"chatcmpl-" + random_hex(24),
                             unix_now(),
                             st->model_id,
                             s ? s->id : std::string(),
                             static_cast<int64_t>(g.sampling.seed),
                             g.stream && g.include_usage};
    if (!g.stream) co_return co_await complete_json(cx, s, std::move(r), plan.context, ids, tools_on, forced, g.n);
    co_return co_await complete_sse(cx, s, std::move(r), plan.context, ids, tools_on, forced, g.n);
}

awaitable<bool> handle_chat_completions(request_ctx& cx) {
    auto& st = cx.st;
    auto parsed = parse_turn_request(cx.req, parse_messages);
    if (auto* e = std::get_if<reply>(&parsed)) co_return co_await respond(cx, std::move(*e));
    auto& [b, g, msgs] = std::get<turn_request>(parsed);
    auto ct = tools_of(b);
    if (!ct) co_return co_await respond(cx, status_reply(ct.error()));
    logprob_request lp;
    if (auto ls = parse_chat_logprobs(b, lp); !ls.ok()) co_return co_await respond(cx, status_reply(ls));
    g.logprobs = lp.on;
    g.top_logprobs = lp.top;
    if (auto it = b.find("session_id"); it != b.end() && !it->is_null()) {
        if (!it->is_string())
            co_return co_await respond(cx, error_reply(errc::invalid_argument, "'session_id' must be a string"));
        if (g.n > 1)
            co_return co_await respond(
                cx, error_reply(errc::invalid_argument, "'n' must be 1 with 'session_id' (a session has one history)"));
        if (auto moved = cluster_redirect_session(cx, it->get<std::string>()))
            co_return co_await respond(cx, std::move(*moved));
        co_return co_await session_completion(cx, it->get<std::string>(), b, std::move(msgs), g, ct.value());
    }
    const auto& mdl = st->runner->mdl();
    if (ct.value() && !ct.value()->system_text.empty()) {
        std::vector<engine::chat_message> with_tools = msgs;
        add_tools_prompt(with_tools, ct.value()->system_text);
        turn_plan plan = plan_for_messages(mdl, with_tools);
        scope_stateless(*st, cx.who, plan);
        // A forced call is valid by its grammar alone: when the tool section leaves no room (small contexts),
        // it is left out.
        if (!ct.value()->forced_call || plan.prompt.size() + 128 < static_cast<size_t>(st->runner->n_ctx()))
            co_return co_await complete(cx, nullptr, std::move(plan), g, ct.value());
    }
    turn_plan plan = plan_for_messages(mdl, msgs);
    scope_stateless(*st, cx.who, plan);
    co_return co_await complete(cx, nullptr, std::move(plan), g, ct.value());
}

namespace {

// A path segment with its %XX escapes decoded (clients escape model ids such as "org/model" or "Llama 3").
std::string percent_decoded(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// The model object of GET /v1/models and /v1/models/{id}.
json model_json(const server_state& st) {
    return {{"id", st.model_id},
            {"object", "model"},
            {"created", 0},
            {"owned_by", "mnemos"},
            {"context_length", st.runner->n_ctx()},
            {"arch", st.runner->mdl().hp().arch}};
}

}  // namespace

reply handle_models(request_ctx& cx) {
    return json_reply({{"object", "list"}, {"data", json::array({model_json(*cx.st)})}});
}

reply handle_model(request_ctx& cx) {
    const std::string id = percent_decoded(cx.params.get("id"));
    if (id != cx.st->model_id && id != "mnemos")
        return error_reply(errc::not_found,
                           "the model '" + id.substr(0, 128) + "' does not exist; this server serves '" +
                               cx.st->model_id + "' (GET /v1/models)",
                           {"model", "model_not_found"});
    return json_reply(model_json(*cx.st));
}

}  // namespace mnemos::agent::server_detail

// Streaming chat completions (openai_stream.h).
#include "agent/server/src/openai_stream.h"

#include "agent/server/src/choices.h"
#include "agent/server/src/cors.h"
#include "agent/server/src/logprobs_json.h"
#include "agent/server/src/openai.h"
#include "agent/tooling/agent_loop.h"

namespace mnemos::agent::server_detail {

json chunk_json(const completion_ids& ids, const json& delta, const char* finish, int32_t index) {
    json c = {{"id", ids.id},
              {"object", "chat.completion.chunk"},
              {"created", ids.created},
              {"model", ids.model},
              {"choices",
               json::array({{{"index", index}, {"delta", delta}, {"finish_reason", finish ? json(finish) : json()}}})}};
    if (ids.include_usage) c["usage"] = nullptr;
    if (!ids.sid.empty()) c["session_id"] = ids.sid;
    return c;
}

std::string tool_stream_take(tool_stream& t) {
    static const std::string tag = "<tool_call>";
    if (t.forced || t.in_call) return {};
    size_t safe = t.text.size();
    if (auto p = t.text.find(tag, t.sent > tag.size() ? t.sent - tag.size() : 0); p != std::string::npos) {
        safe = p;
        t.in_call = true;
    } else {
        for (size_t k = std::min(tag.size() - 1, t.text.size()); k > 0; --k)
            if (t.text.compare(t.text.size() - k, k, tag, 0, k) == 0) {
                safe = t.text.size() - k;
                break;
            }
    }
    if (safe <= t.sent) return {};
    std::string out = t.text.substr(t.sent, safe - t.sent);
    t.sent = safe;
    return out;
}

namespace {

// After a generation with tools offered: the held-back content (no call after all), then the calls as
// tool_calls deltas (a head with the name, then the arguments in 16-byte pieces).
awaitable<void> sse_tool_calls(sse_writer* w, unsigned version, const completion_ids& ids, int32_t index,
                               const tool_stream& ts, const std::string& text, const tools::parsed_output& calls,
                               bool forced) {
    std::string rest;
    if (calls.calls.empty()) {
        if (ts.sent < text.size()) rest = text.substr(ts.sent);
    } else if (!forced && ts.sent < calls.content.size() && !ts.in_call) {
        rest = calls.content.substr(ts.sent);
    }
    if (!rest.empty()) {
        std::string c = dump(chunk_json(ids, json{{"content", std::move(rest)}}, nullptr, index));
        co_await sse_send(w, version, std::move(c));
    }
    const json tc = openai_tool_calls(calls.calls);
    for (size_t i = 0; i < tc.size(); ++i) {
        json head = {{"index", i},
                     {"id", tc[i]["id"]},
                     {"type", "function"},
                     {"function", {{"name", tc[i]["function"]["name"]}, {"arguments", ""}}}};
        std::string c = dump(chunk_json(ids, json{{"tool_calls", json::array({head})}}, nullptr, index));
        co_await sse_send(w, version, std::move(c));
        const std::string args = tc[i]["function"]["arguments"].get<std::string>();
        for (size_t p = 0; p < args.size(); p += 16) {
            json frag = {{"index", i}, {"function", {{"arguments", args.substr(p, 16)}}}};
            std::string f = dump(chunk_json(ids, json{{"tool_calls", json::array({frag})}}, nullptr, index));
            co_await sse_send(w, version, std::move(f));
        }
    }
}

// Per choice while streaming: its tool stream and the logprobs not yet sent (their text is held back).
struct choice_stream {
    tool_stream ts;
    std::vector<engine::sampled_logprobs> held;
    size_t n_lp_sent = 0;  // logprobs sent so far (of info.logprobs)
};

// Adds choices[0].logprobs with the held logprobs of c to the chunk (then none are held).
void attach_logprobs(json& chunk, const engine::tokenizer& tk, choice_stream& c) {
    chunk["choices"][0]["logprobs"] = {{"content", chat_logprobs_content(tk, c.held)}, {"refusal", nullptr}};
    c.n_lp_sent += c.held.size();
    c.held.clear();
}

// The end of choice i (all but the last): held content and tool calls, logprobs not sent yet, its finish chunk.
awaitable<void> sse_choice_end(sse_writer* w, unsigned version, const completion_ids& ids, int32_t i, choice_stream& c,
                               const turn_outcome& out, const tools::parsed_output& calls, bool tools_on, bool forced,
                               bool logprobs, const engine::tokenizer& tk) {
    std::string finish = openai_finish(out.info.reason);
    if (tools_on) {
        co_await sse_tool_calls(w, version, ids, i, c.ts, out.text, calls, forced);
        if (!calls.calls.empty()) finish = "tool_calls";
    }
    if (logprobs && c.n_lp_sent < out.info.logprobs.size()) {
        c.held.assign(out.info.logprobs.begin() + static_cast<std::ptrdiff_t>(c.n_lp_sent), out.info.logprobs.end());
        json rest = chunk_json(ids, json{{"content", ""}}, nullptr, i);
        attach_logprobs(rest, tk, c);
        if (!rest["choices"][0]["logprobs"]["content"].empty()) co_await sse_send(w, version, dump(rest));
    }
    std::string f = dump(chunk_json(ids, json::object(), finish.c_str(), i));
    co_await sse_send(w, version, std::move(f));
}

}  // namespace

awaitable<bool> complete_sse(request_ctx& cx, const session_ptr& s, engine::request r, context_window cw,
                             const completion_ids& ids, bool tools_on, bool forced, int32_t n) {
    auto& st = cx.st;
    sse_writer w{&cx.stream, cors_allow_origin(cx.st->opt, cx.req)};
    cx.rec.status = 200;  // the status of every SSE answer (its header goes out with the first event)
    const unsigned version = cx.req.version();
    const bool logprobs = r.logprobs;
    const engine::tokenizer& tk = st->runner->mdl().tok();
    for (int32_t i = 0; i < n; ++i) {
        std::string first = dump(chunk_json(ids, json{{"role", "assistant"}, {"content", ""}}, nullptr, i));
        co_await sse_send(&w, version, std::move(first));
    }
    std::vector<choice_stream> cs(static_cast<size_t>(n));
    for (auto& c : cs) c.ts.forced = forced;
    choice_stream* csp = cs.data();
    const engine::tokenizer* tkp = &tk;
    choice_delta_fn on_delta = [&w, version, ids, tools_on, logprobs, csp, tkp](
                                   int32_t i, std::string text, std::vector<engine::sampled_logprobs> lps) {
        choice_stream& c = csp[i];
        c.held.insert(c.held.end(), std::make_move_iterator(lps.begin()), std::make_move_iterator(lps.end()));
        if (tools_on) {
            c.ts.text += text;
            text = tool_stream_take(c.ts);
            if (text.empty()) return ready(w.ok);
        }
        json chunk = chunk_json(ids, {{"content", std::move(text)}}, nullptr, i);
        if (logprobs) attach_logprobs(chunk, *tkp, c);
        return sse_send(&w, version, dump(chunk));
    };
    std::vector<turn_outcome> outs = co_await run_choices(st, std::move(r), n, on_delta, ids.sid, &cx.rec);
    const turn_outcome& out = outs.front();
    note_attention(cw, out.info.attention);
    std::vector<tools::parsed_output> calls(outs.size());
    if (tools_on)
        for (size_t i = 0; i < outs.size(); ++i) calls[i] = extract_tool_calls(outs[i].text, forced);
    if (s) {  // a session has one history: n is 1 here
        std::string stored = out.text;
        if (forced && !calls[0].calls.empty())
            stored = hermes_tool_call(calls[0].calls[0].name, calls[0].calls[0].arguments);
        // The stream has begun: a failure here can only be counted and logged.
        unreported_error(*st, "end_turn of a streamed turn",
                         st->sessions->end_turn(s, stored, out.info.reason != engine::finish_reason::error,
                                                context_event_extra(cw)));
    }
    const turn_outcome* failed = nullptr;
    for (const auto& o : outs)
        if (!failed && o.info.reason == engine::finish_reason::error) failed = &o;
    if (failed) {
        // (Events are built outside the co_await: GCC 12 mishandles reference-bound temporaries within one.)
        std::string error_event =
            dump(error_json(failed->info.error.code(), failed->info.error.message(), error_detail{}));
        co_await sse_send(&w, version, std::move(error_event));
    } else {
        for (int32_t i = 0; i + 1 < n; ++i)
            co_await sse_choice_end(&w, version, ids, i, cs[size_t(i)], outs[size_t(i)], calls[size_t(i)], tools_on,
                                    forced, logprobs, tk);
        const int32_t l = n - 1;
        choice_stream& c = cs[size_t(l)];
        const turn_outcome& o = outs[size_t(l)];
        std::string finish = openai_finish(o.info.reason);
        if (tools_on) {
            co_await sse_tool_calls(&w, version, ids, l, c.ts, o.text, calls[size_t(l)], forced);
            if (!calls[size_t(l)].calls.empty()) finish = "tool_calls";
        }
        json last = chunk_json(ids, json::object(), finish.c_str(), l);
        if (logprobs && c.n_lp_sent < o.info.logprobs.size()) {
            c.held.assign(o.info.logprobs.begin() + static_cast<std::ptrdiff_t>(c.n_lp_sent), o.info.logprobs.end());
            attach_logprobs(last, tk, c);
        }
        add_context_meta(last, cw);
        add_choices_meta(last, outs);
        last["mnemos"]["seed"] = ids.seed;
        std::string finish_event = dump(last);
        co_await sse_send(&w, version, std::move(finish_event));
        if (ids.include_usage) {  // as OpenAI: a last chunk without choices carries the usage
            json usage = chunk_json(ids, json::object(), nullptr);
            usage["choices"] = json::array();
            usage["usage"] = choices_usage(outs);
            std::string usage_event = dump(usage);
            co_await sse_send(&w, version, std::move(usage_event));
        }
    }
    std::string done_marker = "[DONE]";
    co_await sse_send(&w, version, std::move(done_marker));
    const bool ok = co_await sse_end(&w);
    co_return ok&& cx.req.keep_alive() && !st->stopping;
}

}  // namespace mnemos::agent::server_detail

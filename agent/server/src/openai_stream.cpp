// Streaming chat completions (openai_stream.h).
#include "agent/server/src/openai_stream.h"

#include "agent/server/src/cors.h"
#include "agent/server/src/openai.h"
#include "agent/tooling/agent_loop.h"

namespace mnemos::agent::server_detail {

json chunk_json(const completion_ids& ids, const json& delta, const char* finish) {
    json c = {{"id", ids.id},
              {"object", "chat.completion.chunk"},
              {"created", ids.created},
              {"model", ids.model},
              {"choices",
               json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish ? json(finish) : json()}}})}};
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
awaitable<void> sse_tool_calls(sse_writer* w, unsigned version, const completion_ids& ids, const tool_stream& ts,
                               const std::string& text, const tools::parsed_output& calls, bool forced) {
    std::string rest;
    if (calls.calls.empty()) {
        if (ts.sent < text.size()) rest = text.substr(ts.sent);
    } else if (!forced && ts.sent < calls.content.size() && !ts.in_call) {
        rest = calls.content.substr(ts.sent);
    }
    if (!rest.empty()) {
        std::string c = dump(chunk_json(ids, json{{"content", std::move(rest)}}, nullptr));
        co_await sse_send(w, version, std::move(c));
    }
    const json tc = openai_tool_calls(calls.calls);
    for (size_t i = 0; i < tc.size(); ++i) {
        json head = {{"index", i},
                     {"id", tc[i]["id"]},
                     {"type", "function"},
                     {"function", {{"name", tc[i]["function"]["name"]}, {"arguments", ""}}}};
        std::string c = dump(chunk_json(ids, json{{"tool_calls", json::array({head})}}, nullptr));
        co_await sse_send(w, version, std::move(c));
        const std::string args = tc[i]["function"]["arguments"].get<std::string>();
        for (size_t p = 0; p < args.size(); p += 16) {
            json frag = {{"index", i}, {"function", {{"arguments", args.substr(p, 16)}}}};
            std::string f = dump(chunk_json(ids, json{{"tool_calls", json::array({frag})}}, nullptr));
            co_await sse_send(w, version, std::move(f));
        }
    }
}

}  // namespace

awaitable<bool> complete_sse(request_ctx& cx, const session_ptr& s, engine::request r, context_window cw,
                             const completion_ids& ids, bool tools_on, bool forced) {
    auto& st = cx.st;
    sse_writer w{&cx.stream, cors_allow_origin(cx.st->opt, cx.req)};
    const unsigned version = cx.req.version();
    std::string first = dump(chunk_json(ids, json{{"role", "assistant"}, {"content", ""}}, nullptr));
    co_await sse_send(&w, version, std::move(first));
    tool_stream ts;
    ts.forced = forced;
    tool_stream* tsp = &ts;
    delta_fn on_delta = [&w, version, ids, tools_on, tsp](std::string text) {
        if (tools_on) {
            tsp->text += text;
            text = tool_stream_take(*tsp);
            if (text.empty()) return ready(w.ok);
        }
        return sse_send(&w, version, dump(chunk_json(ids, {{"content", std::move(text)}}, nullptr)));
    };
    turn_outcome out = co_await run_turn(st, std::move(r), on_delta, ids.sid);
    note_attention(cw, out.info.attention);
    tools::parsed_output calls;
    if (tools_on) calls = extract_tool_calls(out.text, forced);
    if (s) {
        std::string stored = out.text;
        if (forced && !calls.calls.empty()) stored = hermes_tool_call(calls.calls[0].name, calls.calls[0].arguments);
        // The stream has begun: a failure here can only be counted and logged.
        unreported_error(*st, "end_turn of a streamed turn",
                         st->sessions->end_turn(s, stored, out.info.reason != engine::finish_reason::error,
                                                context_event_extra(cw)));
    }
    std::string finish = openai_finish(out.info.reason);
    if (tools_on && out.info.reason != engine::finish_reason::error) {
        co_await sse_tool_calls(&w, version, ids, ts, out.text, calls, forced);
        if (!calls.calls.empty()) finish = "tool_calls";
    }
    if (out.info.reason == engine::finish_reason::error) {
        // (Events are built outside the co_await: GCC 12 mishandles reference-bound temporaries within one.)
        std::string error_event = dump(error_json(out.info.error.code(), out.info.error.message(), error_detail{}));
        co_await sse_send(&w, version, std::move(error_event));
    } else {
        json last = chunk_json(ids, json::object(), finish.c_str());
        add_context_meta(last, cw);
        last["mnemos"]["seed"] = ids.seed;
        std::string finish_event = dump(last);
        co_await sse_send(&w, version, std::move(finish_event));
        if (ids.include_usage) {
            json usage = chunk_json(ids, json::object(), nullptr);
            usage["choices"] = json::array();
            usage["usage"] = usage_json(out.info);
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

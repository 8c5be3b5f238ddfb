// The streamed reply of the Responses API (responses_stream.h).
#include "agent/server/src/responses_stream.h"

#include "agent/server/src/cors.h"
#include "agent/server/src/openai_stream.h"
#include "agent/server/src/response_store.h"

namespace mnemos::agent::server_detail {

namespace {

// The events of one response, numbered.
struct event_writer {
    sse_writer w;
    unsigned version = 11;
    int64_t seq = 0;
};

// The text of the next event. (Events are built in statements of their own: GCC 12 miscompiles a braced
// JSON initializer inside a co_await expression.)
std::string event_text(event_writer* ew, const char* type, json fields) {
    fields["type"] = type;
    fields["sequence_number"] = ew->seq++;
    return dump(fields);
}

awaitable<bool> emit(event_writer* ew, std::string text) {
    co_return co_await sse_send(&ew->w, ew->version, std::move(text));
}

// The message item while it streams: opened at its first text.
struct message_stream {
    const response_head* head = nullptr;
    bool open = false;
    std::string sent;  // the text sent so far
};

json text_part(const std::string& text) {
    return {{"type", "output_text"}, {"text", text}, {"annotations", json::array()}};
}

// An event of the message's text part.
json part_fields(const message_stream& ms) {
    return {{"item_id", message_item_id(ms.head->id)}, {"output_index", 0}, {"content_index", 0}};
}

awaitable<bool> open_message(event_writer* ew, message_stream* ms) {
    if (ms->open) co_return true;
    ms->open = true;
    std::string e = event_text(ew, "response.output_item.added",
                               {{"output_index", 0}, {"item", message_item(*ms->head, "", "in_progress")}});
    co_await emit(ew, std::move(e));
    json f = part_fields(*ms);
    f["part"] = text_part("");
    e = event_text(ew, "response.content_part.added", std::move(f));
    co_return co_await emit(ew, std::move(e));
}

awaitable<bool> send_text(event_writer* ew, message_stream* ms, std::string text) {
    if (text.empty()) co_return ew->w.ok;
    co_await open_message(ew, ms);
    ms->sent += text;
    json f = part_fields(*ms);
    f["delta"] = std::move(text);
    std::string e = event_text(ew, "response.output_text.delta", std::move(f));
    co_return co_await emit(ew, std::move(e));
}

// Closes the message item: its done events, with the whole text.
awaitable<void> close_message(event_writer* ew, message_stream* ms, const char* status) {
    json f = part_fields(*ms);
    f["text"] = ms->sent;
    std::string e = event_text(ew, "response.output_text.done", std::move(f));
    co_await emit(ew, std::move(e));
    f = part_fields(*ms);
    f["part"] = text_part(ms->sent);
    e = event_text(ew, "response.content_part.done", std::move(f));
    co_await emit(ew, std::move(e));
    e = event_text(ew, "response.output_item.done",
                   {{"output_index", 0}, {"item", message_item(*ms->head, ms->sent, status)}});
    co_await emit(ew, std::move(e));
}

// One function call item: added, its arguments in 16-byte pieces, done. Returns the item.
awaitable<json> send_call(event_writer* ew, const response_head& h, const response_output& o, size_t k,
                          size_t output_index) {
    const std::string args = dump(o.calls[k].arguments);
    const std::string item_id = call_item_id(h.id, k);
    const json added = call_item(h, k, o.call_ids[k], o.calls[k].name, "", "in_progress");
    std::string e = event_text(ew, "response.output_item.added", {{"output_index", output_index}, {"item", added}});
    co_await emit(ew, std::move(e));
    for (size_t p = 0; p < args.size(); p += 16) {
        e = event_text(ew, "response.function_call_arguments.delta",
                       {{"item_id", item_id}, {"output_index", output_index}, {"delta", args.substr(p, 16)}});
        co_await emit(ew, std::move(e));
    }
    e = event_text(ew, "response.function_call_arguments.done",
                   {{"item_id", item_id}, {"output_index", output_index}, {"arguments", args}});
    co_await emit(ew, std::move(e));
    const json done = call_item(h, k, o.call_ids[k], o.calls[k].name, args, "completed");
    e = event_text(ew, "response.output_item.done", {{"output_index", output_index}, {"item", done}});
    co_await emit(ew, std::move(e));
    co_return done;
}

}  // namespace

awaitable<bool> respond_response_sse(request_ctx& cx, response_job job) {
    auto& st = cx.st;
    auto made = response_request_of(*st, job);
    if (!made) co_return co_await respond(cx, status_reply(made.error()));
    event_writer ew{sse_writer{&cx.stream, cors_allow_origin(cx.st->opt, cx.req)}, cx.req.version(), 0};
    const json starting = response_json(job.head, "in_progress", json::array(), json());
    std::string e = event_text(&ew, "response.created", {{"response", starting}});
    co_await emit(&ew, std::move(e));
    e = event_text(&ew, "response.in_progress", {{"response", starting}});
    co_await emit(&ew, std::move(e));
    message_stream ms;
    ms.head = &job.head;
    tool_stream ts;
    ts.forced = job.forced();
    const bool tools_on = job.tools_on();
    event_writer* ewp = &ew;
    message_stream* msp = &ms;
    tool_stream* tsp = &ts;
    delta_fn on_delta = [ewp, msp, tsp, tools_on](std::string text) {
        if (tools_on) {
            tsp->text += text;
            text = tool_stream_take(*tsp);
        }
        return send_text(ewp, msp, std::move(text));
    };
    const std::string sid = job.s ? job.s->id : std::string();  // (no temporaries inside co_await: GCC 12)
    turn_outcome out = co_await run_turn(st, std::move(made.value()), on_delta, sid, &cx.rec);
    note_attention(job.plan.context, out.info.attention);
    response_output o = split_output(out.text, out.info, tools_on, job.forced());
    // The message's text is what was streamed, and the rest of it held back (no call after all).
    if (o.calls.empty() && ms.sent.size() < out.text.size() && out.text.compare(0, ms.sent.size(), ms.sent) == 0)
        co_await send_text(&ew, &ms, out.text.substr(ms.sent.size()));
    o.text = ms.sent;
    const bool failed = out.info.reason == engine::finish_reason::error;
    const char* status = failed ? "failed" : o.incomplete ? "incomplete" : "completed";
    json output = json::array();
    if (!failed && (ms.open || o.calls.empty())) {
        co_await open_message(&ew, &ms);
        co_await close_message(&ew, &ms, o.incomplete ? "incomplete" : "completed");
        output.push_back(message_item(job.head, ms.sent, o.incomplete ? "incomplete" : "completed"));
    }
    for (size_t k = 0; !failed && k < o.calls.size(); ++k)
        output.push_back(co_await send_call(&ew, job.head, o, k, output.size()));
    json response = response_json(job.head, status, std::move(output), response_usage(out.info));
    add_context_meta(response, job.plan.context);
    if (failed) {
        const errc_http& row = errc_http_of(out.info.error.code());
        response["error"] = {{"code", row.type}, {"message", out.info.error.message()}};
    }
    // The stream has begun: a failure to store can only be counted and logged.
    unreported_error(*st, "storing a streamed response", finish_response(*st, job, out, o, response));
    const char* last = failed ? "response.failed" : o.incomplete ? "response.incomplete" : "response.completed";
    e = event_text(&ew, last, {{"response", std::move(response)}});
    co_await emit(&ew, std::move(e));
    const bool ok = co_await sse_end(&ew.w);
    co_return ok&& cx.req.keep_alive() && !st->stopping;
}

}  // namespace mnemos::agent::server_detail

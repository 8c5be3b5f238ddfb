// One response's generation (responses_run.h).
#include "agent/server/src/responses_run.h"

#include "agent/server/src/response_store.h"
#include "agent/tooling/tool_call_format.h"

namespace mnemos::agent::server_detail {

result<engine::request> response_request_of(server_state& st, response_job& job) {
    auto made = make_request(st, job.plan, job.gen);
    if (!made) {
        if (job.s) unreported_error(st, "end_turn after a prompt too long", st.sessions->end_turn(job.s, {}, false));
        return make_error(errc::context_exceeded, made.error().message());
    }
    if (job.tools) {
        made->constraint = job.tools->constraint;
        made->constraint_trigger = job.tools->trigger;
    }
    return made;
}

status finish_response(server_state& st, const response_job& job, const turn_outcome& out, const response_output& o,
                       const json& response) {
    if (!job.s) return {};
    const bool ok = out.info.reason != engine::finish_reason::error && !out.client_gone;
    // A forced call is stored as the call tag the model would have written, so the history reads as a call.
    std::string stored = out.text;
    if (job.forced() && !o.calls.empty()) stored = hermes_tool_call(o.calls[0].name, o.calls[0].arguments);
    if (auto es = st.sessions->end_turn(job.s, stored, ok, context_event_extra(job.plan.context)); !es.ok()) return es;
    if (!ok) return {};
    stored_response r{job.s->id, job.s->stats().n_messages, job.system, response};
    auto appended = st.sessions->append_raw_event(job.s->id, response_event(r));
    return appended ? status{} : appended.error();
}

awaitable<bool> respond_response_json(request_ctx& cx, response_job job) {
    auto& st = cx.st;
    auto made = response_request_of(*st, job);
    if (!made) co_return co_await respond(cx, status_reply(made.error()));
    const std::string sid = job.s ? job.s->id : std::string();  // (no temporaries inside co_await: GCC 12)
    turn_outcome out = co_await run_turn(st, std::move(made.value()), delta_fn{}, sid, &cx.rec);
    note_attention(job.plan.context, out.info.attention);
    const response_output o = split_output(out.text, out.info, job.tools_on(), job.forced());
    json response = response_json(job.head, o.incomplete ? "incomplete" : "completed", output_items(job.head, o),
                                  response_usage(out.info));
    add_context_meta(response, job.plan.context);
    if (auto fs = finish_response(*st, job, out, o, response); !fs.ok())
        co_return co_await respond(cx, status_reply(fs));
    if (out.info.reason == engine::finish_reason::error) co_return co_await respond(cx, status_reply(out.info.error));
    co_return co_await respond(cx, json_reply(response));
}

}  // namespace mnemos::agent::server_detail

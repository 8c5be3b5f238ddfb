// POST /v1/responses and GET /v1/responses/{id} (responses.h).
#include "agent/server/src/responses.h"

#include <optional>

#include "agent/server/src/authz.h"
#include "agent/server/src/cluster_routes.h"
#include "agent/server/src/response_store.h"
#include "agent/server/src/responses_input.h"
#include "agent/server/src/responses_stream.h"
#include "agent/server/src/session_turn.h"

namespace mnemos::agent::server_detail {

namespace {

using message_list = std::vector<engine::chat_message>;

// A stored response and its session, when the caller may talk to that session (else it looks missing).
struct visible_response {
    stored_response r;
    session_ptr s;
};

result<visible_response> find_visible(request_ctx& cx, const std::string& id) {
    auto r = load_response(*cx.st->sessions, id);
    if (!r) return r.error();
    auto s = cx.st->sessions->find(r->session_id);
    if (!s || !can_talk(cx.who, *s.value())) return make_error(errc::not_found, "no stored response '" + id + "'");
    return visible_response{std::move(r.value()), s.value()};
}

// An item_reference's item.
result<json> stored_item(request_ctx& cx, const std::string& item_id) {
    auto rid = response_of_item(item_id);
    if (!rid) return make_error(errc::not_found, "no stored item '" + item_id + "'");
    auto f = find_visible(cx, *rid);
    if (!f) return f.error();
    // A stored item may be another caller's input (a developer message, say): read access only.
    if (!can_read(cx.who, *f->s)) return make_error(errc::not_found, "no stored item '" + item_id + "'");
    return find_item(f->r, item_id);
}

// The first messages of a chain: instructions as the system message, the input, the tool section added to
// the first system message.
message_list first_messages(const response_request& rr, message_list input) {
    if (!rr.instructions.empty()) input.insert(input.begin(), {"system", rr.instructions});
    if (rr.tools) add_tools_prompt(input, rr.tools->system_text);
    return input;
}

// The messages that continue a chain: the request's system text when it differs from the one in effect,
// then the input.
message_list continuation(const std::string& in_effect, const std::string& system, message_list input) {
    if (!system.empty() && system != in_effect) input.insert(input.begin(), {"system", system});
    return input;
}

// The history of a previous response: its session's messages up to it, then the continuation.
message_list branch(const visible_response& prev, message_list more) {
    message_list all = prev.s->messages();
    all.resize(std::min(all.size(), prev.r.n_messages));
    all.insert(all.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    return all;
}

awaitable<bool> run_job(request_ctx& cx, response_job job) {
    if (job.gen.stream) co_return co_await respond_response_sse(cx, std::move(job));
    co_return co_await respond_response_json(cx, std::move(job));
}

reply previous_missing(const std::string& id) {
    return error_reply(errc::not_found, "previous_response_id '" + id +
                                            "' names no stored response (responses are stored unless 'store' is "
                                            "false)");
}

// A request read: its fields, the response it continues, its input as messages.
struct read_request {
    response_request rr;
    std::optional<visible_response> prev;
    message_list input;
};

std::variant<read_request, reply> read_response_request(request_ctx& cx) {
    auto parsed = parse_body(cx.req);
    if (auto* e = std::get_if<reply>(&parsed)) return std::move(*e);
    const json& b = std::get<json>(parsed);
    auto rr = parse_response_request(b);
    if (!rr) return status_reply(rr.error());
    read_request q{std::move(rr.value()), std::nullopt, {}};
    if (!q.rr.previous_id.empty()) {
        if (auto sid = session_of_response(q.rr.previous_id))  // cluster mode: continued on the session's owner
            if (auto moved = cluster_redirect_session(cx, *sid)) return std::move(*moved);
        auto f = find_visible(cx, q.rr.previous_id);
        if (!f && f.error().code() == errc::not_found) return previous_missing(q.rr.previous_id);
        if (!f) return status_reply(f.error());
        q.prev = std::move(f.value());
    }
    input_context ic;
    if (q.prev) ic.call_names = call_names(q.prev->r.response);
    ic.resolve = [&cx](const std::string& id) { return stored_item(cx, id); };
    if (auto ps = parse_response_input(b, ic, q.input); !ps.ok()) return status_reply(ps);
    return q;
}

// The job of a request, all but its session and prompt.
response_job job_for(const server_state& st, const read_request& q) {
    response_job job;
    job.head.created_at = unix_now();
    job.head.model = st.model_id;
    job.head.previous_id = q.rr.previous_id;
    job.head.request = q.rr.body;
    job.system = response_system_text(q.rr);
    if (q.prev && job.system.empty()) job.system = q.prev->r.system;
    job.tools = q.rr.tools;
    job.gen = q.rr.gen;
    return job;
}

// A response that is not stored: the history is read, nothing is written.
awaitable<bool> unstored_response(request_ctx& cx, read_request q, response_job job) {
    message_list msgs =
        q.prev ? branch(*q.prev, continuation(q.prev->r.system, response_system_text(q.rr), std::move(q.input)))
               : first_messages(q.rr, std::move(q.input));
    job.head.id = new_response_id("");
    job.plan = plan_for_messages(cx.st->runner->mdl(), msgs);
    scope_stateless(*cx.st, cx.who, job.plan);
    co_return co_await run_job(cx, std::move(job));
}

// A stored response: the previous response's session when it is still that session's latest turn, else a new
// session (with the history up to the previous response, if any).
awaitable<bool> stored_response_turn(request_ctx& cx, read_request q, response_job job) {
    auto& st = cx.st;
    turn_ticket ticket;
    if (q.prev) {
        ticket = co_await acquire_turn(st, q.prev->s.get(), &cx.stream.socket(), nullptr);
        if (!ticket.slot) {
            if (ticket.client_gone) co_return false;
            co_return co_await respond(cx, std::move(ticket.err));
        }
        if (q.prev->s->stats().n_messages == q.prev->r.n_messages)
            job.s = q.prev->s;
        else
            ticket.slot.reset();
    }
    message_list msgs =
        q.prev ? continuation(q.prev->r.system, response_system_text(q.rr), std::move(q.input)) : message_list();
    if (!job.s) {
        if (!cx.who.may_create())
            co_return co_await respond(cx, error_reply(http_refusal::forbidden,
                                                       "this key may not create sessions, which stored responses "
                                                       "are; send 'store': false"));
        // A branch copies the previous session's history (its system message too) into a session the caller
        // owns: that needs read access to it.
        if (q.prev && !can_read(cx.who, *q.prev->s)) {
            // Built outside the co_await: GCC 12 mishandles reference-bound temporaries within a co_await.
            reply refused = error_reply(http_refusal::forbidden,
                                        "previous_response_id '" + q.rr.previous_id +
                                            "' is not its session's latest turn; branching from it copies the "
                                            "session's history, which needs read access to it",
                                        error_detail{"previous_response_id"});
            co_return co_await respond(cx, std::move(refused));
        }
        msgs = q.prev ? branch(*q.prev, std::move(msgs)) : first_messages(q.rr, std::move(q.input));
        auto created = st->sessions->create(new_chain_session_id(), character{}, cx.who.name());
        if (!created) co_return co_await respond(cx, status_reply(created.error()));
        job.s = created.value();
        ticket = co_await acquire_turn(st, job.s.get(), &cx.stream.socket(), nullptr);
        if (!ticket.slot) {
            if (ticket.client_gone) co_return false;
            co_return co_await respond(cx, std::move(ticket.err));
        }
    }
    job.head.id = new_response_id(job.s->id);
    job.head.session_id = job.s->id;
    auto plan = st->sessions->begin_turn(job.s, msgs);
    if (!plan) co_return co_await respond(cx, status_reply(plan.error()));
    job.plan = std::move(plan.value());
    co_return co_await run_job(cx, std::move(job));  // the ticket is held until the reply is written
}

}  // namespace

awaitable<bool> handle_create_response(request_ctx& cx) {
    auto read = read_response_request(cx);
    if (auto* e = std::get_if<reply>(&read)) co_return co_await respond(cx, std::move(*e));
    read_request q = std::move(std::get<read_request>(read));
    if (q.prev) {  // what it adds to a history the caller may not own: only user messages and tool results
        const message_list added = continuation(q.prev->r.system, response_system_text(q.rr), q.input);
        if (auto refused = refuse_roles(cx.who, *q.prev->s, added)) co_return co_await respond(cx, std::move(*refused));
    }
    response_job job = job_for(*cx.st, q);
    const bool store = q.rr.store;
    if (!store) co_return co_await unstored_response(cx, std::move(q), std::move(job));
    co_return co_await stored_response_turn(cx, std::move(q), std::move(job));
}

reply handle_get_response(request_ctx& cx) {
    const std::string& id = cx.params.get("id");
    auto f = find_visible(cx, id);
    if (!f) return status_reply(f.error());
    json r = f->r.response;
    // Its instructions are its session's system message: read access only.
    if (!can_read(cx.who, *f->s) && r.contains("instructions")) r["instructions"] = nullptr;
    return json_reply(r);
}

}  // namespace mnemos::agent::server_detail

// POST /v1/responses and GET /v1/responses/{id} (responses.h).
#include "agent/server/src/responses.h"

#include <optional>

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

// A response that is not stored: the history is read, nothing is written.
awaitable<bool> unstored_response(request_ctx& cx, const std::optional<visible_response>& prev, message_list input,
                                  response_job job, const response_request& rr) {
    message_list msgs = prev ? branch(*prev, continuation(prev->r.system, job.system, std::move(input)))
                             : first_messages(rr, std::move(input));
    job.head.id = new_response_id("");
    job.plan = plan_for_messages(cx.st->runner->mdl(), msgs);
    co_return co_await run_job(cx, std::move(job));
}

}  // namespace

awaitable<bool> handle_create_response(request_ctx& cx) {
    auto& st = cx.st;
    auto parsed = parse_body(cx.req);
    if (auto* e = std::get_if<reply>(&parsed)) co_return co_await respond(cx, std::move(*e));
    const json b = std::move(std::get<json>(parsed));
    auto rr = parse_response_request(b);
    if (!rr) co_return co_await respond(cx, status_reply(rr.error()));
    std::optional<visible_response> prev;
    if (!rr->previous_id.empty()) {
        auto f = find_visible(cx, rr->previous_id);
        if (!f && f.error().code() == errc::not_found)
            co_return co_await respond(cx, previous_missing(rr->previous_id));
        if (!f) co_return co_await respond(cx, status_reply(f.error()));
        prev = std::move(f.value());
    }
    input_context ic;
    if (prev) ic.call_names = call_names(prev->r.response);
    request_ctx* cxp = &cx;
    ic.resolve = [cxp](const std::string& id) { return stored_item(*cxp, id); };
    message_list input;
    if (auto ps = parse_response_input(b, ic, input); !ps.ok()) co_return co_await respond(cx, status_reply(ps));
    response_job job;
    job.head.created_at = unix_now();
    job.head.model = st->model_id;
    job.head.previous_id = rr->previous_id;
    job.head.request = b;
    job.system = response_system_text(*rr);
    if (prev && job.system.empty()) job.system = prev->r.system;
    job.tools = rr->tools;
    job.gen = rr->gen;
    if (!rr->store) co_return co_await unstored_response(cx, prev, std::move(input), std::move(job), *rr);
    // Stored: the previous response's session when it is still its latest turn, else a new session.
    turn_ticket ticket;
    if (prev) {
        ticket = co_await acquire_turn(st, prev->s.get(), &cx.stream.socket(), nullptr);
        if (!ticket.slot) {
            if (ticket.client_gone) co_return false;
            co_return co_await respond(cx, std::move(ticket.err));
        }
        if (prev->s->stats().n_messages == prev->r.n_messages)
            job.s = prev->s;
        else
            ticket.slot.reset();
    }
    message_list msgs;
    if (job.s) {
        msgs = continuation(prev->r.system, response_system_text(*rr), std::move(input));
    } else {
        if (!cx.who.may_create())
            co_return co_await respond(cx, error_reply(http_refusal::forbidden,
                                                       "this key may not create sessions, which stored responses "
                                                       "are; send 'store': false"));
        msgs = prev ? branch(*prev, continuation(prev->r.system, response_system_text(*rr), std::move(input)))
                    : first_messages(*rr, std::move(input));
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
    auto plan = st->sessions->begin_turn(job.s, msgs);
    if (!plan) co_return co_await respond(cx, status_reply(plan.error()));
    job.plan = std::move(plan.value());
    co_return co_await run_job(cx, std::move(job));  // the ticket is held until the reply is written
}

reply handle_get_response(request_ctx& cx) {
    const std::string& id = cx.params.get("id");
    auto f = find_visible(cx, id);
    if (!f) return status_reply(f.error());
    return json_reply(f->r.response);
}

}  // namespace mnemos::agent::server_detail

// A server turn's hold on its session (session_turn.h).
#include "agent/server/src/session_turn.h"

namespace mnemos::agent::server_detail {

namespace {

reply shutting_down() { return error_reply(errc::unavailable, "the server is shutting down"); }

}  // namespace

awaitable<turn_ticket> acquire_turn(state_ptr st, const session* expect, tcp::socket* watch, ws_conn* wc) {
    const std::string sid = expect->id;
    turn_ticket t;
    if (st->stopping) {
        t.err = shutting_down();
        co_return t;
    }
    turn_grant g = co_await st->turns->acquire(sid, watch, wc ? &wc->waiters : nullptr);
    if (st->stopping) {
        g.slot.reset();  // hands the session on, or frees it
        t.err = shutting_down();
        co_return t;
    }
    const auto& o = st->turns->opts();
    switch (g.outcome) {
        case turn_wait::granted: {
            // The session may have been deleted (or replaced) while this turn waited.
            auto cur = st->sessions->find(sid);
            if (cur && cur.value().get() == expect) {
                t.slot = std::move(g.slot);
            } else {
                g.slot.reset();
                t.err = error_reply(errc::not_found, "no session '" + sid + "'");
            }
            break;
        }
        case turn_wait::queue_full:
            t.err =
                error_reply(errc::busy, "session '" + sid + "' is busy: " + std::to_string(std::max(o.max_waiting, 0)) +
                                            " turns are already waiting for it; retry later");
            break;
        case turn_wait::timed_out:
            t.err = error_reply(errc::busy, "session '" + sid + "' is busy: timed out after " +
                                                std::to_string(o.timeout_ms) +
                                                " ms waiting for its earlier turns; retry later");
            break;
        case turn_wait::closed:
            t.err = shutting_down();
            break;
        case turn_wait::client_gone:
            t.client_gone = true;
            break;
    }
    co_return t;
}

}  // namespace mnemos::agent::server_detail

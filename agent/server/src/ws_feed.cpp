// The event feed and WebSocket frame writing (ws_feed.h).
#include "agent/server/src/ws_feed.h"

#include <algorithm>

namespace mnemos::agent::server_detail {

// Sends frame to every subscribed socket whose key may read session sid. Any thread.
void publish(const hub_ptr& hub, const std::string& sid, std::string frame) {
    std::vector<std::shared_ptr<ws_conn>> subs;
    {
        std::lock_guard lk(hub->mu);
        auto& v = hub->subs;
        v.erase(std::remove_if(v.begin(), v.end(), [](const auto& w) { return w.expired(); }), v.end());
        for (const auto& w : v)
            if (auto c = w.lock()) subs.push_back(std::move(c));
    }
    if (subs.empty()) return;
    auto shared = std::make_shared<const std::string>(std::move(frame));
    for (auto& c : subs) {
        auto ex = c->ws.get_executor();
        net::post(ex, [c, sid, shared, sessions = hub->sessions] {
            if (!c->subscribed || c->closed) return;
            if (!c->who.admin()) {
                auto s = sessions->find(sid);
                if (!s || !can_read(c->who, *s.value())) return;
            }
            c->out.try_send(error_code{}, std::string(*shared));  // a full queue drops the frame (slow reader)
        });
    }
}

// A {"type": "token"} frame of session sid's streamed text to the subscribers that may read it. Any thread.
void publish_token(const hub_ptr& hub, const std::string& sid, std::string_view text) {
    if (sid.empty() || text.empty() || hub->n_subscribed == 0) return;
    publish(hub, sid, dump(json{{"type", "token"}, {"session_id", sid}, {"text", std::string(text)}}));
}

void start_feed(session_manager& sessions, const hub_ptr& hub, const std::shared_ptr<post_gate>& gate) {
    // Durable events go to the WebSocket event feed while the io_context runs.
    sessions.set_event_observer([hub, gate](const std::string& id, uint64_t seq, const std::string& event_json) {
        if (hub->n_subscribed == 0) return;
        std::lock_guard lk(gate->mu);
        if (!gate->open) return;
        json ev = json::parse(event_json, nullptr, false);
        publish(hub, id, dump(json{{"type", "event"}, {"session_id", id}, {"seq", seq}, {"event", ev}}));
    });
    // Tokens of generations run outside the server (mnemos play's turns) join the same feed.
    sessions.set_token_observer([hub, gate](const std::string& id, std::string_view text) {
        if (hub->n_subscribed == 0) return;
        std::lock_guard lk(gate->mu);
        if (gate->open) publish_token(hub, id, text);
    });
    // Progress of work outside the server (mnemos play's warm-up) as {"type": "status"} frames.
    sessions.set_status_observer([hub, gate](const std::string& id, const json& status) {
        if (hub->n_subscribed == 0) return;
        std::lock_guard lk(gate->mu);
        if (gate->open) publish(hub, id, dump(json{{"type", "status"}, {"session_id", id}, {"status", status}}));
    });
}

void stop_feed(session_manager& sessions) {
    sessions.set_event_observer({});
    sessions.set_token_observer({});
    sessions.set_status_observer({});
}

// Queues a frame for the socket; false when the socket is gone.
awaitable<bool> ws_send(std::shared_ptr<ws_conn> c, std::string frame) {
    if (c->closed) co_return false;
    auto [ec] = co_await c->out.async_send(error_code{}, std::move(frame), use_tuple);
    co_return !ec && !c->closed;
}

awaitable<bool> ws_error(std::shared_ptr<ws_conn> c, std::string message) {
    std::string frame = dump(json{{"type", "error"}, {"message", std::move(message)}});
    co_return co_await ws_send(std::move(c), std::move(frame));
}

// Drains the outgoing queue onto the socket.
awaitable<void> ws_writer(std::shared_ptr<ws_conn> c) {
    for (;;) {
        auto [ec, frame] = co_await c->out.async_receive(use_tuple);
        if (ec || c->closed) break;
        c->ws.text(true);
        auto [wec, n] = co_await c->ws.async_write(net::buffer(frame), use_tuple);
        if (wec) {
            c->closed = true;
            break;
        }
    }
}

}  // namespace mnemos::agent::server_detail

#pragma once
// WebSocket connections and the event feed: every durable event and streamed token of a session goes
// to the sockets subscribed to "events" whose key may read that session.
#include <atomic>
#include <boost/asio/experimental/channel.hpp>
#include <boost/beast/websocket.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/session_manager.h"
#include "agent/server/src/auth.h"
#include "agent/server/src/common.h"
#include "agent/server/turn_queue.h"

namespace mnemos::agent::server_detail {

namespace websocket = beast::websocket;
using ws_stream = websocket::stream<beast::tcp_stream>;
using out_channel = net::experimental::channel<void(error_code, std::string)>;

// One WebSocket connection. Everything but construction runs on its strand.
struct ws_conn {
    ws_stream ws;
    out_channel out;  // frames to write, drained by ws_writer
    caller who;
    bool subscribed = false;
    bool closed = false;
    std::vector<std::weak_ptr<turn_waiter>> waiters;  // turns of this socket waiting for their session
    ws_conn(ws_stream s, caller c) : ws(std::move(s)), out(ws.get_executor(), 1024), who(c) {}
};

// Lets engine-thread callbacks post to the io_context only while it exists.
struct post_gate {
    std::mutex mu;
    bool open = true;
};

// The WebSocket event feed: sockets subscribed to "events".
struct ws_hub {
    session_manager* sessions = nullptr;
    std::mutex mu;  // guards subs
    std::vector<std::weak_ptr<ws_conn>> subs;
    std::atomic<int64_t> n_subscribed{0};
};
using hub_ptr = std::shared_ptr<ws_hub>;

// Sends frame to every subscribed socket whose key may read session sid. Any thread.
void publish(const hub_ptr& hub, const std::string& sid, std::string frame);
// A {"type": "token"} frame of session sid's streamed text to the subscribers that may read it. Any thread.
void publish_token(const hub_ptr& hub, const std::string& sid, std::string_view text);
// Feeds sessions' durable events and the tokens of generations run outside the server to hub while gate
// is open; stop_feed undoes it.
void start_feed(session_manager& sessions, const hub_ptr& hub, const std::shared_ptr<post_gate>& gate);
void stop_feed(session_manager& sessions);

// Queues a frame for the socket; false when the socket is gone.
awaitable<bool> ws_send(std::shared_ptr<ws_conn> c, std::string frame);
// Queues {"type": "error", "message"}; false when the socket is gone.
awaitable<bool> ws_error(std::shared_ptr<ws_conn> c, std::string message);
// Drains the outgoing queue onto the socket until it closes.
awaitable<void> ws_writer(std::shared_ptr<ws_conn> c);

}  // namespace mnemos::agent::server_detail

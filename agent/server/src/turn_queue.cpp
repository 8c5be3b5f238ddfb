// Per-session turn order (agent/server/turn_queue.h).
#include "agent/server/turn_queue.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <chrono>

namespace mnemos::agent::server_detail {

namespace net = boost::asio;
using boost::system::error_code;

turn_slot::~turn_slot() { q_->release(sid_); }

namespace {

// Wakes w if the client behind socket closes (EOF or an error) while it waits.
void watch_socket(net::ip::tcp::socket* socket, const waiter_ptr& w) {
    // Readable while waiting: the client closed (EOF) or pipelined its next request (then stop watching).
    socket->async_wait(net::ip::tcp::socket::wait_read, [w, socket](const error_code& ec) {
        if (ec || w->done) return;
        char b;
        const ssize_t n = ::recv(socket->native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) w->abandon();
    });
}

}  // namespace

net::awaitable<turn_grant> turn_queue::acquire(std::string sid, net::ip::tcp::socket* watch,
                                               std::vector<std::weak_ptr<turn_waiter>>* waiters) {
    turn_grant g;
    auto ex = co_await net::this_coro::executor;
    waiter_ptr w;
    {
        std::lock_guard lk(mu_);
        if (closed_) co_return g;  // closed
        auto& e = by_session_[sid];
        if (!e.running) {
            e.running = true;
            g.outcome = turn_wait::granted;
            g.slot = std::make_unique<turn_slot>(shared_from_this(), sid);
            co_return g;
        }
        if (e.waiting.size() >= static_cast<size_t>(std::max(opt_.max_waiting, 0))) {
            g.outcome = turn_wait::queue_full;
            co_return g;
        }
        w = std::make_shared<turn_waiter>(ex);
        if (opt_.timeout_ms > 0)
            w->timer.expires_after(std::chrono::milliseconds(opt_.timeout_ms));
        else
            w->timer.expires_at(net::steady_timer::time_point::max());
        e.waiting.push_back(w);
        n_waiting_++;
    }
    if (waiters) {
        waiters->erase(std::remove_if(waiters->begin(), waiters->end(), [](const auto& x) { return x.expired(); }),
                       waiters->end());
        waiters->push_back(w);
    }
    if (watch) watch_socket(watch, w);
    co_await w->timer.async_wait(net::as_tuple(net::use_awaitable));
    w->done = true;
    if (watch) {
        error_code ignored;
        watch->cancel(ignored);
    }
    g.outcome = finish_wait(sid, w);
    if (g.outcome == turn_wait::granted) g.slot = std::make_unique<turn_slot>(shared_from_this(), sid);
    co_return g;
}

turn_wait turn_queue::finish_wait(const std::string& sid, const waiter_ptr& w) {
    std::lock_guard lk(mu_);
    if (w->granted) return turn_wait::granted;
    auto it = by_session_.find(sid);
    if (it != by_session_.end()) {
        auto& ws = it->second.waiting;
        if (auto p = std::find(ws.begin(), ws.end(), w); p != ws.end()) {
            ws.erase(p);
            n_waiting_--;
        }
        if (!it->second.running && ws.empty()) by_session_.erase(it);
    }
    if (closed_) return turn_wait::closed;
    if (w->gone) return turn_wait::client_gone;
    return turn_wait::timed_out;
}

void turn_queue::release(const std::string& sid) {
    std::lock_guard lk(mu_);
    auto it = by_session_.find(sid);
    if (it == by_session_.end()) return;
    auto& e = it->second;
    if (!closed_ && !e.waiting.empty()) {
        waiter_ptr w = std::move(e.waiting.front());
        e.waiting.pop_front();
        n_waiting_--;
        w->granted = true;  // e.running stays true: the waiter owns the session now
        net::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
        return;
    }
    e.running = false;
    if (e.waiting.empty()) by_session_.erase(it);
}

void turn_queue::close() {
    std::lock_guard lk(mu_);
    closed_ = true;
    for (auto& [sid, e] : by_session_)
        for (auto& w : e.waiting) net::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
}

}  // namespace mnemos::agent::server_detail

#pragma once
// What an engine-thread callback may hold of the io side. An engine request (and the callbacks in it) can
// outlive the server's io_context: a turn cancelled at shutdown is dropped by the engine thread whenever
// that thread gets to it, possibly after the io_context is destroyed. Anything the callbacks own then dies
// on the engine thread, and a channel or a strand executor touches its io_context's services as it dies
// (a heap-use-after-free). So the coroutine owns the io objects (an engine_link), the callbacks hold it
// weakly, and they reach it only under the server's post_gate, which is closed before the io_context goes:
// a strong reference taken by the engine thread is always released while the io_context exists.
#include <memory>
#include <mutex>
#include <utility>

#include "agent/server/src/common.h"
#include "agent/server/src/ws_feed.h"

namespace mnemos::agent::server_detail {

// The io objects of a coroutine that engine callbacks post to: its executor (often a strand) and a
// channel of events. Owned by the coroutine (shared_ptr), held by the callbacks as a weak_ptr.
template <class Channel>
struct engine_link {
    net::any_io_executor ex;
    Channel ch;
    engine_link(net::any_io_executor e, size_t capacity) : ex(e), ch(e, capacity) {}
};

// From any thread: while gate is open and the link still exists, posts fn(link.ch) to the link's
// executor (where it runs only if the link still exists then). Otherwise nothing.
template <class Channel, class Fn>
void post_to_link(const std::shared_ptr<post_gate>& gate, const std::weak_ptr<engine_link<Channel>>& w, Fn fn) {
    std::lock_guard lk(gate->mu);
    if (!gate->open) return;
    auto link = w.lock();  // released below, under the open gate
    if (!link) return;
    net::post(link->ex, [w, fn = std::move(fn)]() mutable {
        if (auto l = w.lock()) fn(l->ch);
    });
}

}  // namespace mnemos::agent::server_detail

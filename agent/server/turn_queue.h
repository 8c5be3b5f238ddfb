#pragma once
// Per-session turn order: each session is an actor whose turns run one at a time, in arrival order.
// A turn that finds its session running waits in that session's FIFO (at most options::max_waiting
// waiters, for at most options::timeout_ms) on a steady_timer of its own strand, so no io thread
// blocks; the turn that ends hands the session to the first waiter by cancelling its timer (posted to
// the waiter's strand). A waiter also wakes when its client disconnects or the queue is closed.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace mnemos::agent::server_detail {

// One turn waiting for its session.
struct turn_waiter {
    boost::asio::steady_timer timer;
    bool granted = false;  // guarded by turn_queue's mutex: the session was handed to this waiter
    bool done = false;     // waiter's strand: the wait is over (socket watch and WebSocket close ignore it)
    bool gone = false;     // waiter's strand: the client disconnected
    explicit turn_waiter(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
    // The client went away (waiter's strand): ends the wait unless it is over.
    void abandon() {
        if (done) return;
        gone = true;
        timer.cancel();
    }
};
using waiter_ptr = std::shared_ptr<turn_waiter>;

class turn_queue;

// Holds a session for one turn; the next waiter gets it (or it is freed) on destruction.
class turn_slot {
  public:
    turn_slot(std::shared_ptr<turn_queue> q, std::string sid) : q_(std::move(q)), sid_(std::move(sid)) {}
    turn_slot(const turn_slot&) = delete;
    turn_slot& operator=(const turn_slot&) = delete;
    ~turn_slot();

  private:
    std::shared_ptr<turn_queue> q_;
    std::string sid_;
};

enum class turn_wait {
    granted,      // the turn holds its session (turn_grant::slot)
    queue_full,   // max_waiting turns were already waiting
    timed_out,    // timeout_ms passed while waiting
    closed,       // the queue was closed (server stop)
    client_gone,  // the client disconnected while waiting
};

struct turn_grant {
    turn_wait outcome = turn_wait::closed;
    std::unique_ptr<turn_slot> slot;  // set iff outcome == granted
};

class turn_queue : public std::enable_shared_from_this<turn_queue> {
  public:
    struct options {
        // Turns that may wait per session; one more gets queue_full. 0: a running session refuses at once.
        // Default: 16
        int32_t max_waiting = 16;
        // How long a turn waits; 0: no limit.
        // Default: 120000
        int32_t timeout_ms = 120000;
    };
    explicit turn_queue(options o) : opt_(o) {}

    // Waits (asynchronously, on the calling coroutine's strand) until sid runs no other turn, in arrival
    // order. watch: a socket watched for a disconnect while waiting (EOF or an error: client_gone; data:
    // the watch stops); waiters: where the waiter is registered so that its owner can abandon() it.
    boost::asio::awaitable<turn_grant> acquire(std::string sid, boost::asio::ip::tcp::socket* watch = nullptr,
                                               std::vector<std::weak_ptr<turn_waiter>>* waiters = nullptr);

    // The turn holding sid ends: hands the session to its first waiter, or frees it. Any thread.
    void release(const std::string& sid);
    // Wakes every waiter (they get closed) and refuses later turns. Any thread.
    void close();

    const options& opts() const { return opt_; }
    // Turns waiting now, over all sessions.
    int64_t n_waiting() const { return n_waiting_.load(); }

  private:
    struct entry {
        bool running = false;  // a turn holds the session
        std::deque<waiter_ptr> waiting;
    };
    // After the wait: the waiter's outcome; a waiter not granted leaves the FIFO.
    turn_wait finish_wait(const std::string& sid, const waiter_ptr& w);

    const options opt_;
    std::mutex mu_;                            // guards by_session_, closed_, turn_waiter::granted
    std::map<std::string, entry> by_session_;  // only sessions with a running turn
    bool closed_ = false;
    std::atomic<int64_t> n_waiting_{0};
};

}  // namespace mnemos::agent::server_detail

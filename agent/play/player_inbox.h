#pragma once
// Lines of interactive scenario players that arrive from outside the game
// (mnemos play --serve: a WebSocket {"type": "player"} frame, agent/server.h)
// and wait for the player's turn. Thread-safe: post() from any thread (the
// server's io threads), wait() from the game's thread. Lines of one player are
// kept in arrival order; a line posted before the player's turn is used by
// that turn. No Boost here.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mnemos::agent {

class player_inbox {
  public:
    // Lines queued for one player at most; one more is refused.
    static constexpr size_t max_queued = 16;

    // players: the names lines may be posted for (the scenario's interactive
    // players, as play_options::ask_player receives them).
    explicit player_inbox(std::vector<std::string> players = {}) {
        for (auto& p : players) queues_[std::move(p)];
    }

    // Queues a line for player `name`. Returns "" when queued, else why not:
    // an unknown player, or too many lines waiting.
    std::string post(const std::string& name, std::string content) {
        {
            std::lock_guard lk(mu_);
            auto it = queues_.find(name);
            if (it == queues_.end()) return "no interactive player '" + name + "' in this game";
            if (it->second.size() >= max_queued) return "too many lines waiting for player '" + name + "'";
            it->second.push_back(std::move(content));
        }
        cv_.notify_all();
        return {};
    }

    // The next line of player `name`, waiting at most `timeout` for one;
    // nullopt on timeout, after close(), or for an unknown player.
    std::optional<std::string> wait(const std::string& name, std::chrono::milliseconds timeout) {
        std::unique_lock lk(mu_);
        auto it = queues_.find(name);
        if (it == queues_.end()) return std::nullopt;
        auto w = waiting_.insert(name);
        cv_.wait_for(lk, timeout, [&] { return closed_ || !it->second.empty(); });
        waiting_.erase(w);
        if (it->second.empty()) return std::nullopt;
        std::string line = std::move(it->second.front());
        it->second.pop_front();
        return line;
    }

    // Whether a wait() for `name` is in progress (the game is waiting for that player).
    bool waiting_for(const std::string& name) const {
        std::lock_guard lk(mu_);
        return waiting_.count(name) > 0;
    }

    // Lines queued for `name` and not yet taken by a turn.
    size_t queued(const std::string& name) const {
        std::lock_guard lk(mu_);
        auto it = queues_.find(name);
        return it == queues_.end() ? 0 : it->second.size();
    }

    // Ends every wait (they return what is queued, else nullopt) and every later one at once.
    void close() {
        {
            std::lock_guard lk(mu_);
            closed_ = true;
        }
        cv_.notify_all();
    }

  private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::map<std::string, std::deque<std::string>> queues_;
    std::multiset<std::string> waiting_;
    bool closed_ = false;
};

}  // namespace mnemos::agent

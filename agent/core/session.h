#pragma once
// One conversation held in memory: its character, messages and tokens.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/core/character.h"
#include "engine/chat_template.h"
#include "engine/engine.h"

namespace mnemos::agent {

class session_manager;

// What a session holds now, read under its lock.
struct session_stats {
    size_t n_messages = 0;
    size_t n_tokens = 0;
    int64_t n_turns = 0;
    bool busy = false;
};

// The tokens a session's messages render to, and where each message starts in them.
struct session_tokens {
    std::vector<engine::token_id> tokens;
    std::vector<int32_t> message_starts;
};

// One conversation: its character, its messages and the tokens they render to (append-only: new turns only
// append tokens). The identity fields are set when the session is created or loaded and never change; the
// conversation itself changes only through session_manager (begin_turn / continue_turn / end_turn), which
// holds the session's lock; readers get snapshots.
class session {
  public:
    std::string id;
    character chr;
    std::string owner_key;   // key name that created it ("" when open access)
    int64_t created = 0;     // unix seconds
    std::string agent_json;  // tool-agent settings (agent/tooling/agent_settings.h) as JSON; "" = plain chat
    // How its turns' KV blocks are hashed (agent/core/cache_scope.h): salted by the session when the manager
    // isolates sessions (session_manager::set_cache_isolation), its shared prefix's tokens unsalted.
    engine::cache_scope scope;

    // Thread-safe snapshots.
    std::vector<engine::chat_message> messages() const;
    session_stats stats() const;
    session_tokens tokens() const;
    int64_t n_turns() const { return stats().n_turns; }
    // Whether a turn is running (begin_turn .. end_turn).
    bool busy() const { return busy_.load(); }

  private:
    friend class session_manager;
    mutable std::mutex mu_;  // guards messages_, tokens_, message_starts_, n_turns_
    std::vector<engine::chat_message> messages_;
    std::vector<engine::token_id> tokens_;  // render_message(messages_, i) tokenized, i = 0..n-1
    std::vector<int32_t> message_starts_;   // where message i's tokens start in tokens_
    int64_t n_turns_ = 0;
    std::atomic<bool> busy_{false};  // the one turn guard: set by begin_turn, cleared by end_turn
};
using session_ptr = std::shared_ptr<session>;

}  // namespace mnemos::agent

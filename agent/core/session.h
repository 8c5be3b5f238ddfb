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

// One conversation: its character, its messages and the tokens they render to
// (append-only: new turns only append tokens).
struct session {
    std::string id;
    character chr;
    std::string owner_key;  // key name that created it ("" when open access)
    int64_t created = 0;    // unix seconds
    std::mutex mu;          // guards messages, tokens, n_turns
    std::vector<engine::chat_message> messages;
    std::vector<engine::token_id> tokens;  // render_message(messages, i) tokenized, i = 0..n-1
    std::vector<int32_t> message_starts;   // where message i's tokens start in `tokens`
    int64_t n_turns = 0;
    std::string agent_json;         // tool-agent settings (agent/agent_loop.h) as JSON; "" = plain chat
    std::atomic<bool> busy{false};  // a turn is running
};
using session_ptr = std::shared_ptr<session>;

}  // namespace mnemos::agent

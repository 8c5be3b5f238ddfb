// session snapshots (agent/core/session.h).
#include "agent/core/session.h"

namespace mnemos::agent {

std::vector<engine::chat_message> session::messages() const {
    std::lock_guard lk(mu_);
    return messages_;
}

session_tokens session::tokens() const {
    std::lock_guard lk(mu_);
    return {tokens_, message_starts_};
}

session_stats session::stats() const {
    std::lock_guard lk(mu_);
    return {messages_.size(), tokens_.size(), n_turns_, busy_.load()};
}

}  // namespace mnemos::agent

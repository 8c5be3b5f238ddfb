#pragma once
// Prefix-cache isolation (engine/types.h cache_scope; README "Threat model"): the salts of principals and
// sessions, and how many leading tokens of a prompt are a shared prefix's (reused by everyone who may read it).
#include <span>
#include <string>
#include <string_view>

#include "engine/engine.h"
#include "engine/model.h"

namespace mnemos::agent {

// A salt that only this principal's requests carry: SHA-256 of a domain tag and the name (never all zero).
engine::block_hash principal_salt(std::string_view principal);

// The salt of a session's turns: its id, owner and creation time (a session re-created under the same id is
// another principal).
engine::block_hash session_salt(const std::string& id, const std::string& owner, int64_t created);

// How many leading tokens of `tokens` (a rendered prompt) a system message holding only prefix_text renders to:
// those tokens come from the shared prefix's text alone, so every prompt that starts with it may share their
// KV. 0 when prefix_text is empty or the prompt does not start with it.
int32_t shared_prefix_tokens(const engine::model& m, std::span<const engine::token_id> tokens,
                             const std::string& prefix_text);

}  // namespace mnemos::agent

#pragma once
// "session_id" on chat completions: the session is created on first use (with the request's "character", as
// POST /v1/sessions takes it, when given), and a resent history is matched against its log so that only the
// new tail is appended (agent/server/history_match.h).
#include <variant>
#include <vector>

#include "agent/core/session_manager.h"
#include "agent/server/src/api.h"

namespace mnemos::agent::server_detail {

// The session `sid` when the caller may talk to it; when there is none, a new one owned by the caller (who must
// be allowed to create sessions), with body["character"] when given. Otherwise the error reply (404 for a
// session the caller may not talk to, 403 when it may not create one, 400 for a bad id or character).
std::variant<session_ptr, reply> find_or_create_session(request_ctx& cx, const std::string& sid, const json& body);

// The messages of msgs that are not in s's log yet; a 409 session_history_mismatch reply when msgs resend a
// history that differs from the log, or add nothing to it. Call while holding the session's turn.
std::variant<std::vector<engine::chat_message>, reply> new_messages_of(const session& s, const session_manager& sm,
                                                                       const std::vector<engine::chat_message>& msgs);

}  // namespace mnemos::agent::server_detail

#pragma once
// Stored responses (POST /v1/responses with store: true): a chain of responses is one session of the
// server's session store ("resp-" + 24 hex; durable with --store), and each stored response is an event
// {"type": "response", "response_id", "n_messages", "system", "response"} appended to its session after the
// reply's message. The ids say where they are stored: a response id is "resp_" + the session's 24 hex + 16
// random hex, its items "msg_<those 40 hex>" and "fc_<those 40 hex>_<k>". So the mapping from a response to
// its session and position needs no index of its own: it lasts exactly as long as the session does.
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "agent/core/session_manager.h"
#include "agent/server/src/common.h"

namespace mnemos::agent::server_detail {

// A new chain's session id ("resp-" + 24 hex).
std::string new_chain_session_id();
// A new response id in the chain of session_id ("" session: a response that is not stored, 40 random hex).
std::string new_response_id(const std::string& session_id);
// The session a response id is stored in; nullopt when id has not the shape of a stored response's id.
std::optional<std::string> session_of_response(std::string_view response_id);
// The response an item id ("msg_..." / "fc_..._k") belongs to; nullopt when it has not the shape.
std::optional<std::string> response_of_item(std::string_view item_id);
// The ids of a response's items: its message, and its k-th function call.
std::string message_item_id(std::string_view response_id);
std::string call_item_id(std::string_view response_id, size_t k);

// One stored response.
struct stored_response {
    std::string session_id;
    size_t n_messages = 0;  // the session's messages up to and including this response's reply
    std::string system;     // the system text in effect (instructions + tool section)
    json response;          // the Response object as it was answered
};

// The event that stores r.
json response_event(const stored_response& r);

// The stored response `id`, read from its session's events (the latest first). Errors: not_found when id
// names no stored response (not its shape, no such session, no such event); the store's errors.
result<stored_response> load_response(session_manager& sessions, const std::string& id);

// An item of a stored response by its item id, as it was answered. Errors: not_found.
result<json> find_item(const stored_response& r, const std::string& item_id);

// call_id -> function name of the function_call items of a Response object.
std::map<std::string, std::string> call_names(const json& response);

}  // namespace mnemos::agent::server_detail

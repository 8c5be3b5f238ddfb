#pragma once
// Access: who a request comes from (its API key), what that key may reach, and how often it may ask.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/core/session.h"
#include "agent/server/server.h"
#include "agent/server/src/common.h"

namespace mnemos::agent::server_detail {

struct server_state;
struct reply;

struct caller {
    std::shared_ptr<const api_key> key;  // nullptr: open access; keeps a cluster key's snapshot alive
    std::string name() const { return key ? key->name : std::string(); }
    bool admin() const { return !key || key->admin; }
    bool may_create() const { return admin() || key->create; }
};

// True when id matches one of patterns: an exact id, "*", or a prefix followed by "*".
bool pattern_match(const std::vector<std::string>& patterns, const std::string& id);
// May read s's events and private fields: admin, owner, or a "read" pattern.
bool can_read(const caller& c, const session& s);
// May post to s: a reader, or a "sessions" or "characters" pattern.
bool can_talk(const caller& c, const session& s);

// The value of name in the query string of target ("" when absent), %XX and '+' decoded.
std::string query_param(const std::string& target, const std::string& name);

// The caller of req; nullopt when keys are configured and req has no valid key.
// allow_query: a "?key=" query parameter is accepted too (WebSocket upgrades: browsers cannot set headers).
// shared: keys from the cluster (server_options::cluster_keys), tried after auth.keys by their secret's SHA-256.
std::optional<caller> authenticate(const auth_config& auth, const request_t& req, bool allow_query = false,
                                   const std::shared_ptr<const std::vector<api_key>>& shared = nullptr);
// The same with st's keys and its cluster keys.
std::optional<caller> authenticate(const server_state& st, const request_t& req, bool allow_query = false);

// When the caller is over its rate limit: the error message and the seconds to wait.
struct rate_limit_hit {
    std::string message;
    int64_t retry_after = 0;
};
// Takes one request from the caller's bucket (its key's, or under open access its client address's).
std::optional<rate_limit_hit> over_rate_limit(server_state& st, const caller& who, const beast::tcp_stream& stream);
// A 429 reply (with Retry-After) when the caller is over its rate limit.
std::optional<reply> rate_limited(server_state& st, const caller& who, const beast::tcp_stream& stream);

}  // namespace mnemos::agent::server_detail

#pragma once
// Cluster mode in the server (server_options::session_owner, cluster_status, cluster_metrics): the redirect of
// a request for a session another node owns, and GET /v1/cluster.
#include <optional>
#include <string>

#include "agent/server/src/api.h"

namespace mnemos::agent::server_detail {

// For a request whose route has a session "{id}" under /v1/sessions/: 307 to the owning node when it is
// another one, 503 when ownership cannot be settled, nullopt to serve it here (and always in single-node mode).
std::optional<reply> cluster_redirect(request_ctx& cx, const std::string& target);
// The same for a request that names its session in its body (a chat completion's "session_id", a Responses
// continuation's previous_response_id): 307 to the owner's URL plus this request's target.
std::optional<reply> cluster_redirect_session(request_ctx& cx, const std::string& session_id);
// The owner's base URL when another node owns the session, "" when this node does (or in single-node mode).
// Errors: unavailable (ownership cannot be settled), invalid_argument (bad id).
result<std::string> cluster_owner(const server_state& st, const std::string& session_id);
// GET /v1/cluster.
reply handle_cluster(request_ctx& cx);

}  // namespace mnemos::agent::server_detail

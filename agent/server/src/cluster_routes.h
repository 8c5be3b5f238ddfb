#pragma once
// Cluster mode in the server (server_options::session_owner, cluster_status): the redirect of a request
// for a session another node owns, and GET /v1/cluster.
#include <optional>
#include <string>

#include "agent/server/src/api.h"

namespace mnemos::agent::server_detail {

// For a request whose route has a session "{id}" under /v1/sessions/: 307 to the owning node when it is
// another one, 503 when ownership cannot be settled, nullopt to serve it here (and always in single-node mode).
std::optional<reply> cluster_redirect(request_ctx& cx, const std::string& target);
// GET /v1/cluster.
reply handle_cluster(request_ctx& cx);

}  // namespace mnemos::agent::server_detail

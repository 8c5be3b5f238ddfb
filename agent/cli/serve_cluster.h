#pragma once
// `mnemos serve --cluster`: the cluster node (agent/cluster/cluster_node.h) wired into the runtime and the
// server. Built only with libnats (MNEMOS_HAVE_CLUSTER); without it, --cluster is refused.
#include <memory>
#include <string>

#include "agent/config/serve_config.h"
#include "agent/core/runtime.h"
#include "agent/server/server.h"

namespace mnemos::cli {

struct serve_cluster;  // the node

// nullptr when s.cluster is empty (single node). Otherwise connects, and sets the runtime's session and block
// store hooks and the server's session_owner and cluster_status. Errors: unsupported (built without libnats),
// invalid_argument (bad URL list, no --store), those of cluster_node::open.
result<std::shared_ptr<serve_cluster>> open_serve_cluster(const agent::serve_settings& s, agent::runtime_options& ro,
                                                          agent::server_options& so);
// Once the server is bound: starts leasing with this node's advertised URL (--advertise, else url).
void attach_serve_cluster(serve_cluster& c, agent::session_manager& sessions, const std::string& url);
// After the server stopped: uploads pending blocks and releases every lease (the graceful hand-over).
void drain_serve_cluster(serve_cluster& c);

}  // namespace mnemos::cli

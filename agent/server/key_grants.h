#pragma once
// API-key grants shared by the nodes of a cluster (README "Cluster mode"): each node publishes the grants of its
// configured keys (everything but the secret, plus the secret's SHA-256) in a bucket, and accepts the keys other
// nodes published as if configured here (server_options::cluster_keys). The snapshot is swapped whole, so a
// request keeps the key it authenticated with even when the table changes under it.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/server/server.h"

namespace mnemos::agent {

// The published form of k: {"name", "secret_sha256", "admin", "create", "sessions", "characters", "read",
// "prefixes", "metrics", "requests_per_minute"?}. Never the secret.
std::string key_grant_json(const api_key& k);
// Parses one published grant (validated like a key of the auth config file); the result has secret_sha256 set and
// an empty secret. Errors: invalid_argument naming what is wrong.
result<api_key> parse_key_grant(const std::string& text);

// The keys other nodes published, as an immutable snapshot: replaced whole by the cluster's poll, read by the io
// threads.
class shared_key_table {
  public:
    // Keeps the grants (published values) whose name is not one of local's: a locally configured key always wins
    // on its node. Logs (once per change) a grant that cannot be parsed or that differs from a local key of
    // the same name.
    void update(const std::vector<std::string>& published, const std::vector<api_key>& local);
    std::shared_ptr<const std::vector<api_key>> snapshot() const;

  private:
    mutable std::mutex mu_;
    std::shared_ptr<const std::vector<api_key>> keys_ = std::make_shared<const std::vector<api_key>>();
    std::vector<std::string> last_published_;  // what the last update() saw (logs only on change)
};

}  // namespace mnemos::agent

#pragma once
// One mnemos node of a cluster (README "Cluster mode"): its connection to the
// NATS JetStream cluster, the shared stream and buckets, the leases of the
// sessions it owns, and what `mnemos serve --cluster` wires into the runtime
// and the server:
//
//   make_session_store   sessions' events and metadata in JetStream (cluster_session_store.h)
//   make_block_store     the node's RocksDB in front of the shared KV-block tier
//   owner_url            called before a request for /v1/sessions/{id}...: "" when this node owns
//                        the session (it takes a free or expired lease), else the owner's advertised
//                        URL (the server redirects there with 307)
//   status_json          GET /v1/cluster: every live node (heartbeats), this node's sessions, counters
//   metrics_text         the same counters for GET /metrics, labelled node="ID"
//
// A background thread renews this node's leases every lease_ttl_ms / 3, writes
// its heartbeat, releases the leases of sessions idle for idle_release_ms, and
// copies shared prefixes put through other nodes (the prefixes bucket) into the
// session manager. A failed append (fenced, or not acknowledged) drops the
// session at once: the next request re-takes the lease (or is redirected) and
// reloads the session from the stream.
// A lease it fails to renew (expired, taken) is dropped and the session is
// forgotten here (the next request reloads it from the stream, or is
// redirected). drain() releases every lease (graceful hand-over, SIGTERM).
// Each tick also hands the keys bucket's grants to share_keys' callback.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/session_manager.h"
#include "agent/core/session_store.h"
#include "engine/block_store.h"
#include "engine/status.h"

namespace mnemos::memory {
class store;
}

namespace mnemos::cluster {
class client;
class event_stream;
class kv_bucket;
class lease_table;
class block_tier;
class cluster_block_store;
}  // namespace mnemos::cluster

namespace mnemos::agent {

class cluster_session_store;

struct cluster_options {
    // nats:// URLs of the NATS servers (--cluster, comma-separated).
    // Default: {} (required)
    std::vector<std::string> urls;
    // This node's id, unique in the cluster (--node-id).
    // Default: "" (the host name and the process id)
    std::string node_id;
    // The base URL other nodes redirect this node's sessions to (--advertise).
    // Default: "" (http://HOST:PORT of the server as bound)
    std::string advertise;
    // A session lease's lifetime without renewal: how long a dead node's
    // sessions stay unreachable (--lease-ttl-ms).
    // Default: 10000
    int64_t lease_ttl_ms = 10000;
    // Release the lease of a session with no request for this long.
    // Default: 300000 (5 min)
    int64_t idle_release_ms = 300000;
    // Copies of the stream and of every bucket (--cluster-replicas; at most the NATS servers).
    // Default: 3
    int replicas = 3;
};

class cluster_node {
  public:
    // Connects and creates (or opens) the stream and the buckets. Errors:
    // invalid_argument (no URL, bad options), unavailable (no JetStream).
    static result<std::unique_ptr<cluster_node>> open(const cluster_options& options);
    // Releases every lease if drain() was not called (without flushing uploads: the runtime may be gone).
    ~cluster_node();

    // The session store and the block store for runtime_options (each once; the node keeps a pointer: it
    // must outlive them).
    std::unique_ptr<session_store_i> make_session_store();
    std::unique_ptr<engine::block_store_i> make_block_store(memory::store& local);
    // Starts leasing and the renewal thread once the server is bound: sessions is the server's manager,
    // url this node's advertised URL (options.advertise when set).
    void attach(session_manager& sessions, const std::string& url);

    // "" when this node owns the session now (acquired if free), else the owner's advertised URL.
    // Errors: unavailable (not attached yet, NATS unreachable), invalid_argument (bad id).
    result<std::string> owner_url(const std::string& session);
    // API-key grants (agent/server/key_grants.h): puts this node's (values, keyed by key name) in the keys
    // bucket (a name another node published is overwritten: the latest put wins), then hands every value of the
    // bucket to on_sync, now and on every renewal tick (on the renewal thread). Call before attach().
    // Errors: unavailable (NATS).
    status share_keys(const std::vector<std::pair<std::string, std::string>>& mine,
                      std::function<void(const std::vector<std::string>&)> on_sync);
    // GET /v1/cluster's body.
    std::string status_json();
    // Prometheus text: this node's sessions owned, leases, redirects, appends and block tier counters.
    std::string metrics_text();
    // Stops the renewal thread and releases every lease this node holds. Idempotent.
    void drain();

    const std::string& node_id() const { return options_.node_id; }

  private:
    explicit cluster_node(cluster_options options);
    struct held_lease;
    void renew_loop();
    void renew_all();
    void heartbeat();
    void sync_prefixes();
    void sync_keys();
    void drop(const std::string& session);

    cluster_options options_;
    std::unique_ptr<cluster::client> client_;
    std::unique_ptr<cluster::event_stream> events_;
    std::unique_ptr<cluster::kv_bucket> sessions_bucket_, prefixes_bucket_, leases_bucket_, nodes_bucket_;
    std::unique_ptr<cluster::kv_bucket> keys_bucket_;
    std::function<void(const std::vector<std::string>&)> on_keys_;  // share_keys
    std::unique_ptr<cluster::block_tier> tier_;
    std::unique_ptr<cluster::lease_table> leases_;             // created by attach()
    cluster_session_store* store_ = nullptr;                   // made by make_session_store (owned by the runtime)
    cluster::cluster_block_store* blocks_ = nullptr;           // made by make_block_store (owned by the runtime)
    session_manager* manager_ = nullptr;                       // the server's (attach)
    std::string url_;                                          // advertised
    std::mutex mu_;                                            // guards held_, stop_
    std::map<std::string, std::unique_ptr<held_lease>> held_;  // sessions this node owns
    std::condition_variable cv_;                               // wakes the renewal thread
    bool stop_ = false;
    std::atomic<int64_t> n_acquired_{0}, n_lost_{0}, n_redirected_{0};
    std::thread renewer_;
};

}  // namespace mnemos::agent

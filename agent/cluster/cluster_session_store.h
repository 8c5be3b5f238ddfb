#pragma once
// session_store_i on a NATS JetStream cluster (cluster/): every session's
// events on its own subject of the replicated events stream, its metadata
// and the shared prefixes in key-value buckets, visible to every node.
//
// Fencing: the store remembers, per session, the stream sequence of the last
// event it read or appended, and every append expects it
// (event_stream::append). A node that lost a session to another node, and
// appends from its stale copy after the other node appended, gets errc::busy
// ("fenced ...") and nothing is written. forget() drops what the store
// remembers of a session (its owner changed: the next read reloads it).
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/core/session_store.h"
#include "cluster/event_stream.h"
#include "cluster/kv_bucket.h"

namespace mnemos::agent {

class cluster_session_store final : public session_store_i {
  public:
    // events, sessions (metadata) and prefixes must outlive the store.
    cluster_session_store(cluster::event_stream& events, cluster::kv_bucket& sessions, cluster::kv_bucket& prefixes);

    status put_session(const std::string& id, const std::string& meta_json) override;
    result<std::string> get_session(const std::string& id) override;
    std::vector<std::string> list_sessions() override;
    status delete_session(const std::string& id) override;
    // Errors: busy ("fenced": another node appended since this node last read the session), unavailable.
    result<uint64_t> append_event(const std::string& id, const std::string& event_json) override;
    result<std::vector<std::string>> read_events(const std::string& id) override;
    status put_prefix(const std::string& id, const std::string& text) override;
    std::map<std::string, std::string> load_prefixes() override;

    // Forgets the last sequence known for the session (its next append first reads the stream's).
    void forget(const std::string& id);
    // Called after an append failed (fenced, or JetStream did not acknowledge it: it may still have been
    // written), once the session's fence is forgotten; on the appending thread, outside the store's lock.
    // The cluster node drops the session (its resident copy may be stale) so the next request reloads it.
    void set_append_failure_hook(std::function<void(const std::string& id, const status& why)> fn);

    struct append_counters {
        int64_t appended = 0;  // acknowledged appends
        int64_t fenced = 0;    // refused: another writer appended since this node last read the session
        int64_t failed = 0;    // other failures (no quorum, timeout)
    };
    append_counters counters() const;

  private:
    struct fence {
        uint64_t last_stream_seq = 0;  // the stream sequence of the session's last event known here
        uint64_t n_events = 0;         // events in the session's log known here (the next event's number)
    };
    cluster::event_stream& events_;        // the events stream
    cluster::kv_bucket& sessions_;         // session metadata, keyed by encode_token(id)
    cluster::kv_bucket& prefixes_;         // shared prefix texts, keyed by encode_token(id)
    mutable std::mutex mu_;                // guards fences_, counters_
    std::map<std::string, fence> fences_;  // per session, what this node last saw
    append_counters counters_;
    std::function<void(const std::string&, const status&)> on_append_failed_;  // set before use
};

}  // namespace mnemos::agent

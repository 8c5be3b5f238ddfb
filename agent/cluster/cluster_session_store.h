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

  private:
    struct fence {
        uint64_t last_stream_seq = 0;  // the stream sequence of the session's last event known here
        uint64_t n_events = 0;         // events in the session's log known here (the next event's number)
    };
    cluster::event_stream& events_;        // the events stream
    cluster::kv_bucket& sessions_;         // session metadata, keyed by encode_token(id)
    cluster::kv_bucket& prefixes_;         // shared prefix texts, keyed by encode_token(id)
    std::mutex mu_;                        // guards fences_
    std::map<std::string, fence> fences_;  // per session, what this node last saw
};

}  // namespace mnemos::agent

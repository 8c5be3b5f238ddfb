#pragma once
// Session ownership: one node owns a session at a time, by a lease in a
// key-value bucket whose TTL is the lease time (bucket_options::ttl_ms).
//
//   acquire   create-if-absent (or take a released lease, revision-checked);
//             when another node holds it, that node's lease is returned
//   renew     a revision-checked update (resets the TTL); fails once another
//             node took the session, or the lease expired and was taken
//   release   a revision-checked update to "released", so the next acquire
//             by any node succeeds at once (graceful hand-over)
//
// A lease that is not renewed within the TTL expires (JetStream removes the
// value) and the next acquire by any node wins it. Losing a lease is not
// enough to stop a slow node from writing; the event stream's expected
// sequence check fences it (event_stream.h).
#include <cstdint>
#include <string>
#include <string_view>

#include "cluster/kv_bucket.h"
#include "engine/status.h"

namespace mnemos::cluster {

struct lease {
    std::string session;    // the session id
    std::string node;       // the owner's node id
    std::string url;        // the owner's advertised HTTP URL
    uint64_t revision = 0;  // the bucket revision of the owner's last write (the fence of renew / release)
};

class lease_table {
  public:
    // bucket: created with the lease TTL; node_id / url: this node's.
    lease_table(kv_bucket& bucket, std::string node_id, std::string url);

    // The session's lease: this node's (now acquired, or already held) or
    // another live node's. Errors: invalid_argument (bad id), unavailable.
    result<lease> acquire(std::string_view session);
    // Renews this node's lease (l.revision is updated). Errors: busy (lost:
    // expired or taken), unavailable.
    status renew(lease& l);
    // Gives the lease up. Errors: busy (already lost), unavailable.
    status release(const lease& l);
    // The live lease of the session. Errors: not_found (none or released), unavailable.
    result<lease> lookup(std::string_view session);

    const std::string& node_id() const { return node_id_; }
    const std::string& url() const { return url_; }

  private:
    kv_bucket& bucket_;    // the leases bucket (outlives this)
    std::string node_id_;  // this node
    std::string url_;      // this node's advertised URL
};

}  // namespace mnemos::cluster

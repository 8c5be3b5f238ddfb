#pragma once
// One JetStream key-value bucket (session metadata, shared prefixes, API-key
// grants, leases, KV blocks): replicated like the event stream, with
// optimistic concurrency by revision. Keys: [-/_=.a-zA-Z0-9], not starting
// or ending with '.' (use encode_token for free text).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/nats_client.h"
#include "engine/status.h"

namespace mnemos::cluster {

struct bucket_options {
    // The bucket's name ([-_a-zA-Z0-9]).
    // Default: "" (required)
    std::string name;
    // Copies of every value.
    // Default: 3
    int replicas = 3;
    // Values expire this long after their last write (the lease TTL); 0: never.
    // Default: 0
    int64_t ttl_ms = 0;
    // The largest value accepted; -1: the servers' payload limit.
    // Default: -1
    int32_t max_value_size = -1;
};

struct kv_entry {
    std::string value;      // the bytes stored
    uint64_t revision = 0;  // the bucket's sequence of this write (the fence of an update)
};

class kv_bucket {
  public:
    // Creates the bucket or opens it when it exists. Errors: invalid_argument
    // (bad name or options), unavailable, io_error.
    static result<std::unique_ptr<kv_bucket>> open(client& c, const bucket_options& options);
    ~kv_bucket();

    // Errors: not_found (absent, deleted or expired), invalid_argument (bad key), unavailable.
    result<kv_entry> get(std::string_view key);
    // Writes unconditionally; returns the revision.
    result<uint64_t> put(std::string_view key, std::string_view value);
    // Writes only when the key is absent (or deleted / expired). Errors:
    // already_exists (it has a value), invalid_argument, unavailable.
    result<uint64_t> create(std::string_view key, std::string_view value);
    // Writes only when the key's current revision is expected_revision.
    // Errors: busy (another write came in between, or it expired), invalid_argument, unavailable.
    result<uint64_t> update(std::string_view key, std::string_view value, uint64_t expected_revision);
    // Deletes the key (a delete marker; get then gives not_found). Absent keys are fine.
    status erase(std::string_view key);
    // Every key with a value. Errors: unavailable.
    result<std::vector<std::string>> keys();

    const bucket_options& options() const { return options_; }

    struct impl;  // the libnats kvStore

  private:
    kv_bucket(std::unique_ptr<impl> p, bucket_options options);
    std::unique_ptr<impl> impl_;  // the libnats kvStore
    bucket_options options_;      // as opened
};

// Whether key is a valid key-value key.
bool valid_kv_key(std::string_view key);

}  // namespace mnemos::cluster

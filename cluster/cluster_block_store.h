#pragma once
// The KV-block store of a cluster node: the node's RocksDB store (its warm
// cache) in front of the shared block tier (block_tier.h).
//
//   load     the local store first; on a miss the shared tier (its CRC-32C
//            verified), the encoded block written into the local store, then
//            decoded and verified there as any local block
//   persist  into the local store (its own write-behind), and queued for
//            upload: a background thread waits until the local store has
//            written the block, reads its encoded bytes and puts them into
//            the shared tier unless a node already did (content addressed)
//
// A tier that cannot be reached costs recomputation, never a wrong block:
// a load miss is a miss, an upload failure is counted and dropped.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "cluster/block_tier.h"
#include "engine/block_store.h"
#include "memory/store.h"

namespace mnemos::cluster {

struct cluster_block_counters {
    uint64_t local_hits = 0;      // blocks served by the local store
    uint64_t shared_hits = 0;     // blocks fetched from the shared tier (then cached locally)
    uint64_t shared_misses = 0;   // blocks neither had (recomputed)
    uint64_t shared_corrupt = 0;  // shared blocks that failed a check (treated as missing)
    uint64_t uploads = 0;         // blocks written to the shared tier
    uint64_t upload_skipped = 0;  // ... already there
    uint64_t upload_failed = 0;   // ... that failed (lost to the tier, kept locally)
    uint64_t upload_dropped = 0;  // ... dropped because the queue was full
};

class cluster_block_store final : public engine::block_store_i {
  public:
    // local and tier must outlive this. max_queue: blocks waiting for upload at most.
    cluster_block_store(memory::store& local, block_tier& tier, size_t max_queue = 4096);
    // Uploads what is queued (bounded by the tier's retry time), then stops the thread.
    ~cluster_block_store() override;

    bool load(const engine::block_hash& hash, std::span<uint8_t> out) override;
    size_t load_many(std::span<const engine::block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                     std::span<uint8_t> ok) override;
    void persist(const engine::block_hash& hash, const engine::block_hash& parent,
                 std::span<const engine::token_id> tokens, std::span<const uint8_t> page_bytes) override;
    void wait_persisted() override;
    void persist_summary(const engine::block_hash& hash, std::span<const uint8_t> bytes) override;
    size_t load_summaries(std::span<const engine::block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                          std::span<uint8_t> ok) override;

    // Blocks until every block persisted before the call was uploaded (or failed).
    void flush_uploads();
    cluster_block_counters counters() const;

  private:
    bool fetch_shared(const engine::block_hash& hash);
    void upload_loop();
    void upload_one(const engine::block_hash& hash);

    memory::store& local_;  // the node's RocksDB (warm cache)
    block_tier& tier_;      // the shared tier
    size_t max_queue_;      // upload queue bound
    mutable std::mutex mu_;
    std::condition_variable cv_;            // wakes the uploader, and flush_uploads waiters
    std::deque<engine::block_hash> queue_;  // blocks to upload, oldest first
    uint64_t n_enqueued_ = 0;               // blocks ever queued
    uint64_t n_done_ = 0;                   // ... uploaded, skipped or failed
    bool stopping_ = false;                 // set by the destructor
    cluster_block_counters counters_;       // guarded by mu_
    std::thread uploader_;                  // runs upload_loop
};

}  // namespace mnemos::cluster

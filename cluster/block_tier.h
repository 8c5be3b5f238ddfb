#pragma once
// The shared KV-block tier: encoded KV blocks (memory/codec.h values) in a
// key-value bucket keyed by the lower-case hex of the chained block hash, so
// that a block computed on any node is reused by every node. Each node's
// RocksDB stays in front of it as a warm cache (cluster_block_store.h).
//
// Layout: key <hex> holds a manifest: magic "MNKB", version, the value's
// size, its chunk count and its CRC-32C; the value follows inline when it
// fits one message, else it is split into chunks <hex>.0, <hex>.1, ...,
// written before the manifest (a reader never sees a manifest whose chunks
// are not written yet). get() verifies the size and the CRC-32C of the whole
// value: a damaged or missing chunk is errc::corrupt, never served.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cluster/kv_bucket.h"
#include "engine/status.h"
#include "engine/types.h"

namespace mnemos::cluster {

struct block_tier_options {
    // The bucket's name.
    // Default: "MNEMOS_BLOCKS"
    std::string bucket = "MNEMOS_BLOCKS";
    // Copies of every block.
    // Default: 3
    int replicas = 3;
    // Bytes per chunk; 0: the servers' payload limit less 4 KiB for headers.
    // Default: 0
    size_t chunk_bytes = 0;
};

class block_tier {
  public:
    // Errors: those of kv_bucket::open; invalid_argument when chunk_bytes is
    // below 1 KiB or above the payload limit.
    static result<std::unique_ptr<block_tier>> open(client& c, const block_tier_options& options);

    // Stores value (an encoded block) under hash, chunked when needed.
    // Errors: invalid_argument (empty value), unavailable.
    status put(const engine::block_hash& hash, std::string_view value);
    // The value stored under hash. Errors: not_found, corrupt (a chunk
    // missing, a size or checksum mismatch, a bad manifest), unavailable.
    result<std::string> get(const engine::block_hash& hash);
    // Whether a manifest is stored for hash (not verified).
    bool has(const engine::block_hash& hash);

    size_t chunk_bytes() const { return chunk_bytes_; }
    // The bucket itself (tests damage chunks through it).
    kv_bucket& bucket() { return *bucket_; }
    static std::string key_of(const engine::block_hash& hash);

  private:
    block_tier(std::unique_ptr<kv_bucket> b, size_t chunk_bytes) : bucket_(std::move(b)), chunk_bytes_(chunk_bytes) {}
    std::unique_ptr<kv_bucket> bucket_;  // the blocks bucket
    size_t chunk_bytes_;                 // largest value of one key
};

}  // namespace mnemos::cluster

#pragma once
// The storage interface the KV pool (engine/kv_cache.h) uses to reach blocks
// beyond memory. memory/ implements it on RocksDB (codec, checksum,
// write-behind); memory_block_store below is an in-process implementation for
// tests and for running without a database.
//
// A block is one full page of the pool in the pool's layout (see
// paged_kv_layout in engine/kv_cache.h): page_bytes() bytes holding K and V of
// every layer for page_size tokens. It is addressed by its chained block hash.
#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/sha256.h"
#include "engine/types.h"

namespace mnemos::engine {

class block_store_i {
  public:
    virtual ~block_store_i();

    // Copies the block's page bytes (exactly out.size() == page_bytes() long,
    // in the pool layout) into out and returns true if the store has a valid
    // block for hash. Returns false when the block is missing, corrupt, or of
    // another size; out's contents are then unspecified. Never throws.
    virtual bool load(const block_hash& hash, std::span<uint8_t> out) = 0;

    // Loads several blocks at once (resume): for each i, as load(hashes[i],
    // outs[i]), with ok[i] set to 1 when outs[i] now holds a valid block and
    // to 0 otherwise (missing, corrupt, or of another size). hashes, outs and
    // ok have the same size. An implementation may batch the reads and verify
    // and decode in parallel; the default calls load() for each block in
    // order. Returns the number of blocks loaded. Never throws.
    virtual size_t load_many(std::span<const block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                             std::span<uint8_t> ok);

    // Persists a full block: its hash, its parent's hash (the model
    // fingerprint for the first block of a sequence), its tokens and its page
    // bytes. May be asynchronous (write-behind); the spans are only valid
    // during the call, so an implementation copies what it keeps. Failures are
    // the store's to log: a lost block costs recomputation, never data. Never
    // throws.
    virtual void persist(const block_hash& hash, const block_hash& parent, std::span<const token_id> tokens,
                         std::span<const uint8_t> page_bytes) = 0;

    // Returns once every block handed to persist() before the call can be load()ed (a write-behind store
    // drains its queue). The pool calls it before reloading a page it gave up (sparse attention), so a block
    // still in flight is not taken for missing. Default: nothing to wait for. Never throws.
    virtual void wait_persisted() {}

    // -- page summaries (sparse attention) ---------------------------------
    // A summary is a small record derived from a block (engine/attention.h: per-channel key bounds), stored
    // beside it so that resuming a long history need not read every block. It can always be recomputed from
    // the block; a store may drop it with its block.

    // Persists hash's summary bytes (copied). Default: not kept. Never throws.
    virtual void persist_summary(const block_hash& hash, std::span<const uint8_t> bytes);
    // For each i: ok[i] = 1 when a valid summary of hashes[i] exactly outs[i].size() bytes long was copied into
    // outs[i], else 0 (missing, corrupt, another size). Returns the number loaded. Default: none. Never throws.
    virtual size_t load_summaries(std::span<const block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                                  std::span<uint8_t> ok);
};

// In-memory block store: an unordered_map from hash to a copy of the block,
// with a SHA-256 checksum of the bytes verified on load. Single-threaded.
class memory_block_store final : public block_store_i {
  public:
    struct entry {
        block_hash parent;             // the chain link, as persisted
        std::vector<token_id> tokens;  // the block's tokens, as persisted
        std::vector<uint8_t> bytes;    // the page bytes
        sha256_digest checksum{};      // of bytes at persist time; load() rejects a mismatch
    };

    // True and fills out when hash is stored, its size equals out.size() and
    // its checksum matches; false otherwise. Counts every call in n_loads().
    bool load(const block_hash& hash, std::span<uint8_t> out) override;
    // Stores (or replaces) a copy of the block. Counts every call in n_persists().
    void persist(const block_hash& hash, const block_hash& parent, std::span<const token_id> tokens,
                 std::span<const uint8_t> page_bytes) override;

    size_t size() const { return blocks_.size(); }
    bool contains(const block_hash& hash) const { return blocks_.count(hash) != 0; }
    // The stored entry for hash, or nullptr.
    const entry* find(const block_hash& hash) const;
    // Removes hash; returns whether it was there.
    bool erase(const block_hash& hash) { return blocks_.erase(hash) != 0; }
    // Flips one byte of the stored block (not its checksum) so that load()
    // reports it corrupt. Returns false when hash is not stored. For tests.
    bool corrupt(const block_hash& hash);

    void persist_summary(const block_hash& hash, std::span<const uint8_t> bytes) override;
    size_t load_summaries(std::span<const block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                          std::span<uint8_t> ok) override;
    size_t n_summaries() const { return summaries_.size(); }

    int64_t n_loads() const { return n_loads_; }
    int64_t n_persists() const { return n_persists_; }

  private:
    std::unordered_map<block_hash, entry, block_hash_hasher> blocks_;                    // the blocks, by content hash
    std::unordered_map<block_hash, std::vector<uint8_t>, block_hash_hasher> summaries_;  // page summaries
    int64_t n_loads_ = 0;     // load() calls, for tests that check the store was (not) asked
    int64_t n_persists_ = 0;  // persist() calls, for tests that check write-behind happened once per block
};

}  // namespace mnemos::engine

#pragma once
// The durable store of mnemos: one RocksDB database holding every session's
// event log (the truth), its metadata, and the KV blocks computed from it (a
// cache), as laid out in ../shared/DESIGN.md:
//
//   family    key                                 value
//   events    session id, 0x00, big-endian seq    one event as JSON
//   sessions  session id                          session_meta as JSON
//   kv        32-byte block hash                  codec header + tokens + K/V payload + checksum (memory/codec.h)
//   refs      32-byte block hash, session id      empty (who uses a block; for garbage collection)
//
// The store reaches the engine through engine::block_store_i: attach
// blocks() with kv_cache::set_store() and full pages are written behind on a
// background thread; on a prefix miss the pool reads them back (resume
// without prefill). A block that is missing or fails its checksum is reported
// missing, so the engine recomputes it; it is never served.
//
// Thread safety: every method may be called from any thread.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/block_store.h"
#include "engine/status.h"
#include "engine/types.h"

namespace mnemos::memory {

// How KV blocks are encoded on disk. The pool is always f16; decoding gives
// f16 page bytes back.
enum class kv_codec : uint8_t {
    // The page bytes as they are: exact.
    fp16 = 1,
    // 8 bits per element, block format version 2 (memory/codec.h): K per
    // channel (one range per channel over the page's 16 tokens, as in KIVI), V
    // per token row; asymmetric, x' = lo + q * s, s = (max - min) / 255.
    // Error: |x - x'| <= (max - min) / 510 of the element's K channel or V row
    // (step rounded up to f16: times 1 + 2^-10), plus f16 rounding of x'
    // (relative 2^-11). Needs int8_group == kv_dim; other groups, and blocks
    // written before version 2, use version 1: symmetric, one f32 scale per
    // int8_group elements, |x - x'| <= max|group| / 254 (per token row it
    // flattens K's outlier channels). Both are read back. Bytes per token:
    // 0.5625 + 1 / kv_dim of fp16 (v1 per row: 0.5 + 2 / kv_dim), plus the
    // token ids and header.
    int8 = 2,
};
const char* kv_codec_name(kv_codec c);

struct store_options {
    // Directory of the RocksDB database.
    // Default: "" (required)
    std::string path;
    // Create the database (and its column families) when it does not exist.
    // Default: true
    bool create_if_missing = true;
    // Sync the write-ahead log before append_event / put_session /
    // delete_session return (durable across power loss, not just a crash of
    // the process). Only turn off for benchmarks.
    // Default: true
    bool sync_events = true;
    // Codec for new KV blocks. Blocks of either codec are read back.
    // Default: kv_codec::fp16
    kv_codec codec = kv_codec::fp16;
    // int8 only: the model's kv_dim (n_head_kv * head_dim), which selects the
    // per-channel K / per-token V encoding (version 2). Any other value writes
    // version 1 blocks with this many elements per scale (it must divide the
    // page's element count, else groups of 64).
    // Default: 0 (version 1, groups of 64)
    int32_t int8_group = 0;
    // Write KV blocks through RocksDB's write-ahead log. Off, they reach disk
    // when the kv memtable is flushed (kv_flush_interval_ms, kv_flush_bytes,
    // when it fills, and on close): a crash loses the blocks written since
    // the last flush (they are recomputed: KV is a cache), each block is
    // written once instead of twice (WAL, then blob file), and a synced event
    // never waits for KV bytes in the WAL.
    // Default: false
    bool kv_wal = false;
    // With kv_wal off: flush the kv and summaries memtables this long after
    // the first block written since the last flush, so a crash (SIGKILL,
    // power loss) loses at most the blocks of about the last interval, plus
    // those still queued for write-behind, not everything since the memtable
    // last filled. Each flush writes one blob file and one small table file
    // (on a RocksDB background thread); 0 turns it off (flush only when the
    // 64 MiB memtable fills, and on close).
    // Default: 5000 (5 s)
    int64_t kv_flush_interval_ms = 5000;
    // With kv_wal off: also flush as soon as this many bytes of blocks are
    // unflushed, before the interval is up. 0: no byte bound below the
    // memtable's 64 MiB.
    // Default: 0
    size_t kv_flush_bytes = 0;
    // Blocks waiting for the write-behind thread at most. When the queue is
    // full, persist() waits for room (back-pressure) unless drop_when_full.
    // Default: 256
    size_t write_behind_queue = 256;
    // Nice value of the write-behind thread (Linux), and when > 0 RocksDB's
    // compaction threads run at its lowest CPU priority (process-wide: they
    // belong to RocksDB's default Env): on a machine whose cores all run the
    // engine, writing behind takes what is left over.
    // Default: 10
    int32_t background_nice = 10;
    // When the write-behind queue is full, drop the new block (it is
    // recomputed if ever needed) instead of waiting.
    // Default: false
    bool drop_when_full = false;
    // RocksDB block cache (events, sessions, refs, and kv keys).
    // Default: 64 MiB
    size_t block_cache_bytes = size_t(64) << 20;
    // KV values at least this long go to RocksDB's integrated blob files
    // (kept out of the LSM tree, so compactions do not rewrite them).
    // Default: 4096
    uint64_t min_blob_size = 4096;
    // Read SST and blob files through mmap (RocksDB allow_mmap_reads): a KV
    // block is then copied once from the page cache (into RocksDB's blob
    // buffer) instead of twice (read(2), then that copy).
    // Default: true
    bool mmap_reads = true;
    // Threads that read, verify and decode one batch of KV blocks
    // (block_store_i::load_many, i.e. a resume): the caller and
    // load_threads - 1 helper threads started for the call.
    // Default: 2
    int32_t load_threads = 2;
    // Page bytes per RocksDB MultiGet inside load_many (1 to 64 blocks), so
    // that a value is still in cache when it is verified and decoded.
    // Default: 1 MiB
    size_t load_chunk_bytes = size_t(1) << 20;
    // Compress blob files (KV payloads) with LZ4. f16/int8 activations
    // compress by only a few percent, so it costs CPU on the resume path for
    // little; events/sessions/refs are always LZ4 (bottommost ZSTD).
    // Default: false
    bool compress_blobs = false;
};

// One event of a session's log, as appended.
struct event_record {
    uint64_t seq = 0;  // 0, 1, 2, ... per session, in append order
    std::string json;  // the event as given to append_event
};

// A session's metadata (family sessions, stored as JSON).
struct session_meta {
    std::string id;                 // the session id (the key)
    std::string character;          // the character / agent it runs, free text
    std::string model_fingerprint;  // hex of the model fingerprint its KV blocks were computed with
    int64_t n_tokens = 0;           // tokens rendered from its events so far
    std::string last_block_hash;    // hex of the chained hash of its last full block; empty when none
    int64_t created_ms = 0;         // Unix ms; put_session sets it when 0 and the session is new
    int64_t updated_ms = 0;         // Unix ms; put_session and append_event set it
    uint64_t n_events = 0;          // events in the log (maintained by the store; ignored by put_session)
    std::string extra_json;         // any further JSON the agent keeps (object or empty)
};

struct gc_report {
    uint64_t n_blocks_scanned = 0;  // KV blocks looked at
    uint64_t n_blocks_deleted = 0;  // unreferenced blocks removed
    uint64_t bytes_deleted = 0;     // their value bytes
};

struct store_stats {
    uint64_t n_sessions = 0;     // session records
    uint64_t n_events = 0;       // events over all sessions
    uint64_t n_blocks = 0;       // KV blocks stored
    uint64_t n_refs = 0;         // (block, session) references
    uint64_t block_bytes = 0;    // value bytes of the KV blocks (header + tokens + payload + checksum)
    uint64_t block_tokens = 0;   // tokens covered by the KV blocks
    double bytes_per_token = 0;  // block_bytes / block_tokens
    uint64_t disk_bytes = 0;     // SST + blob files on disk, all families
    // Since open():
    uint64_t n_loads = 0;            // blocks().load() calls
    uint64_t n_load_hits = 0;        // ... that returned a valid block
    uint64_t n_load_missing = 0;     // ... for a hash not in the store
    uint64_t n_load_corrupt = 0;     // ... whose value failed the header / checksum / size check
    uint64_t n_persists = 0;         // blocks().persist() calls
    uint64_t n_persist_skipped = 0;  // ... for a block already stored (content-addressed: written once)
    uint64_t n_persist_dropped = 0;  // ... dropped (queue full with drop_when_full, or after close began)
    uint64_t n_persist_failed = 0;   // ... whose write failed
    uint64_t n_pending = 0;          // blocks waiting for the write-behind thread now
    // Over the store's life (kept in the database when a store closes; a
    // crash loses the counts of that run): what `mnemos store stats` shows.
    uint64_t lifetime_loads = 0;            // block loads
    uint64_t lifetime_load_hits = 0;        // ... that returned a valid block
    uint64_t lifetime_load_missing = 0;     // ... for a hash not in the store
    uint64_t lifetime_load_corrupt = 0;     // ... that failed a check (recomputed)
    uint64_t lifetime_persists = 0;         // blocks handed to write-behind
    uint64_t lifetime_persist_skipped = 0;  // ... already stored (a shared prefix, written once)
    double lifetime_hit_rate() const {
        return lifetime_loads ? double(lifetime_load_hits) / double(lifetime_loads) : 0.0;
    }
    double lifetime_dedup_rate() const {
        return lifetime_persists ? double(lifetime_persist_skipped) / double(lifetime_persists) : 0.0;
    }
    // This process's resume path:
    uint64_t n_load_batches = 0;    // RocksDB MultiGet calls made by load / load_many
    uint64_t load_value_bytes = 0;  // encoded bytes those reads returned
    uint64_t load_read_ns = 0;      // time in those reads (RocksDB: index lookup, blob read), summed over threads
    uint64_t load_decode_ns = 0;    // time verifying (CRC-32C) and decoding into the pages, summed over threads
    uint64_t load_wall_ns = 0;      // wall time of the load / load_many calls
    uint64_t load_cpu_ns = 0;       // CPU time (user + system) of their threads, summed
    uint64_t persist_ns = 0;        // wall time the caller (the engine thread) spent inside persist()
    double hit_rate() const { return n_loads ? double(n_load_hits) / double(n_loads) : 0.0; }
};

class store {
  public:
    // Opens (or creates) the database with its column families. A damaged
    // database is refused, never half served: before RocksDB opens it,
    // CURRENT must name an existing MANIFEST and that MANIFEST and every WAL
    // must verify record by record, ending on a record boundary (RocksDB
    // would silently drop a torn MANIFEST tail or what follows a zeroed
    // record); RocksDB then recovers with paranoid checks and
    // WALRecoveryMode::kAbsoluteConsistency (any bad WAL record refuses the
    // open), and every family must be listed in the MANIFEST. Every read
    // verifies RocksDB's block and blob checksums. New files get a whole-file
    // CRC-32C in the MANIFEST (mnemos store check verifies them).
    // Errors: invalid_argument (empty path), corrupt (a damaged file, named in
    // the message), io_error (from RocksDB, with its message; e.g. the
    // database is locked by another process).
    static result<std::unique_ptr<store>> open(const store_options& options);
    // Flushes pending block writes, then closes the database.
    ~store();
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    const store_options& options() const;

    // -- events ---------------------------------------------------------------

    // Appends one event (a message, tool call or tool result, as a JSON
    // value) to the session's log and returns its sequence number; the write
    // is synced (sync_events) before this returns. Creates the session's
    // metadata when it has none. Errors: invalid_argument (bad session id:
    // empty, longer than 128 bytes, or not printable ASCII; event_json not
    // valid JSON), corrupt (the log's last key or the session record cannot
    // be read: the next sequence number is unknown), io_error; nothing is
    // written then.
    result<uint64_t> append_event(std::string_view session_id, std::string_view event_json);
    // Up to max_n events with seq >= from_seq, in order. An unknown session
    // gives an empty list. Errors: invalid_argument (bad id), corrupt (a
    // damaged table or blob file holds these events: never an empty or
    // shortened list), io_error.
    result<std::vector<event_record>> read_events(std::string_view session_id, uint64_t from_seq = 0,
                                                  uint64_t max_n = UINT64_MAX);

    // -- sessions -------------------------------------------------------------

    // Creates or replaces a session's metadata (n_events is kept by the
    // store; created_ms is kept from the existing record or set to now when
    // 0; updated_ms is set to now). Errors: invalid_argument (bad id,
    // extra_json not a JSON object), io_error.
    status put_session(const session_meta& meta);
    // Errors: not_found, invalid_argument (bad id), corrupt, io_error.
    result<session_meta> get_session(std::string_view id);
    // Every session, ordered by id.
    result<std::vector<session_meta>> list_sessions();
    // Deletes the session's events, metadata and block references, then the
    // blocks no other session references (content addressing: shared
    // prefixes stay). Errors: not_found (no metadata and no events),
    // invalid_argument, io_error.
    status delete_session(std::string_view id);

    // -- KV blocks -------------------------------------------------------------

    // The write-behind block store to attach with kv_cache::set_store(). It
    // lives as long as the store. persist() copies the page and returns; a
    // background thread encodes it with the configured codec and writes it.
    // load() reads synchronously, checks header, size and checksum, decodes.
    engine::block_store_i& blocks();
    // Records that the session uses these blocks (family refs), so garbage
    // collection keeps them. Idempotent. Errors: invalid_argument, io_error.
    status add_block_refs(std::string_view session_id, std::span<const engine::block_hash> hashes);
    // The block hashes of the full pages of tokens, chained from the model
    // fingerprint exactly as the KV pool chains them (kv_cache::scoped_hash under
    // scope, the session's cache_scope): what a session's add_block_refs needs.
    static std::vector<engine::block_hash> block_hashes(const engine::block_hash& fingerprint,
                                                        std::span<const engine::token_id> tokens,
                                                        int32_t page_size = 16, const engine::cache_scope& scope = {});
    // Whether a (valid or not) value is stored for hash.
    bool has_block(const engine::block_hash& hash);
    // Deletes every KV block that no session references and that was written
    // at least min_age_ms ago (blocks of a running session may not be
    // referenced yet). Flushes pending writes first. When it deleted any,
    // compacts the kv family relocating every live block, so that the blob
    // files of the deleted ones are removed (disk space returns; costs one
    // rewrite of the live blocks). Errors: io_error.
    result<gc_report> collect_garbage(int64_t min_age_ms = 0);

    // -- maintenance -----------------------------------------------------------

    // Counts (exact: scans every family, reading each KV value; O(store)) and counters.
    store_stats stats();
    // Only the counters of stats() (since open and lifetime), without the scan: cheap.
    store_stats counters();
    // Blocks until every block persisted before the call is written to the
    // database's files (with kv_wal off this flushes the kv memtable, one
    // small blob file per call: call it at the end of a run, not per token).
    void flush();

    // For tests and tools: raw access to a stored KV value (the encoded
    // block) or page summary. get returns not_found when absent, corrupt
    // when RocksDB's checksum of the file fails; put replaces it as is.
    result<std::string> raw_block(const engine::block_hash& hash);
    status put_raw_block(const engine::block_hash& hash, std::string_view value);
    result<std::string> raw_summary(const engine::block_hash& hash);
    // Flushes done by kv_flush_interval_ms / kv_flush_bytes since open.
    uint64_t n_periodic_flushes();
    // RocksDB's memory now (its own accounting, all families): what the process RSS holds for the store.
    struct memory_use {
        uint64_t memtables = 0;      // active and immutable memtables (each family up to its write buffer)
        uint64_t block_cache = 0;    // the shared block cache (up to block_cache_bytes)
        uint64_t table_readers = 0;  // index and filter blocks of open table files outside the cache
    };
    memory_use memory_usage();

    struct impl;  // opaque: RocksDB handles, write-behind thread, counters (keeps RocksDB out of this header)

  private:
    explicit store(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;  // the state behind the API
};

// Session ids: 1..128 bytes of printable ASCII (0x21..0x7e).
bool valid_session_id(std::string_view id);

}  // namespace mnemos::memory

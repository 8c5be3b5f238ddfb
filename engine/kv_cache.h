#pragma once
// Paged KV pool with a content-addressed prefix index (the vLLM block-pool
// design): pages are ref-counted; a page that becomes full gets a chained block
// hash H(parent hash || tokens) and is entered in the prefix index, so any
// sequence with the same prefix reuses it; a page whose refcount drops to 0
// goes to an intrusive LRU free list but stays in the index (cached) until it
// is taken for reuse (lazy eviction). Full blocks are written behind to an
// optional block_store_i, and read back from it on a prefix miss. Parked pages
// that fetch() read back from the store and that no later fetch found resident
// are freed onto a small probation list instead (see park()), so that sparse
// attention over more history than the pool holds does not make LRU cycle.
//
// Thread safety: none. One owner (the scheduler) calls every method from one
// thread; the listener and the store are called synchronously from inside
// these methods and must not call back into the kv_cache.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/block_store.h"
#include "engine/status.h"
#include "engine/types.h"

#if defined(__CUDACC__)
#define MNEMOS_HOST_DEVICE __host__ __device__
#else
#define MNEMOS_HOST_DEVICE
#endif

namespace mnemos::engine {

// ---------------------------------------------------------------------------
// Memory layout (read by the CPU attention and the CUDA kernels)
// ---------------------------------------------------------------------------
//
// KV entries are f16 (uint16_t bits); kv_dim = n_head_kv * head_dim. One
// contiguous 64-byte-aligned array holds n_pages pages:
//   page p             at element p * page_stride
//   layer l's K        at page + l * layer_stride      [page_size][kv_dim]
//   layer l's V        at page + l * layer_stride + v_offset   [page_size][kv_dim]
// page_stride = n_layer * layer_stride, layer_stride = 2 * page_size * kv_dim,
// v_offset = page_size * kv_dim; rows are token t of the page, then head, then dim.
struct paged_kv_layout {
    int64_t page_stride = 0;   // elements per page (all layers, K and V)
    int64_t layer_stride = 0;  // elements per layer inside a page (K then V)
    int64_t v_offset = 0;      // elements from a layer's K to its V
    int32_t page_size = 0;     // tokens per page
    int32_t kv_dim = 0;        // n_head_kv * head_dim: elements per token row

    // Element offset of token t's K (V) row of layer l in page p.
    MNEMOS_HOST_DEVICE int64_t k_index(int32_t p, int32_t l, int32_t t) const {
        return p * page_stride + l * layer_stride + int64_t(t) * kv_dim;
    }
    MNEMOS_HOST_DEVICE int64_t v_index(int32_t p, int32_t l, int32_t t) const {
        return p * page_stride + l * layer_stride + v_offset + int64_t(t) * kv_dim;
    }
};

// ---------------------------------------------------------------------------
// Options, sequences, events, stats
// ---------------------------------------------------------------------------

struct kv_cache_options {
    // Transformer layers whose K and V the pool holds.
    // Default: 0 (required, > 0)
    int32_t n_layer = 0;
    // KV heads per layer (fewer than query heads under GQA).
    // Default: 0 (required, > 0)
    int32_t n_head_kv = 0;
    // Elements per head.
    // Default: 0 (required, > 0)
    int32_t head_dim = 0;
    // Tokens per page; also the block size of the prefix index and the store.
    // Default: 16
    int32_t page_size = 16;
    // Pages in the pool. When 0, as many pages as fit in max_bytes.
    // Default: 0
    int32_t n_pages = 0;
    // Byte budget for the pool, used only when n_pages == 0.
    // Default: 0
    size_t max_bytes = 0;
    // Identifies the model and KV format (weights digest, KV dtype, rope
    // settings, page size); the parent hash of a sequence's first block, so
    // blocks of another model never match.
    // Default: all zero
    block_hash fingerprint{};
};

// One sequence's page table. Owned by the caller, changed only through kv_cache.
// Token i lives in pages[i / page_size], row i % page_size. A full page may be
// parked (pages[k] == -1, sparse attention): its block is known by hashes[k]
// and comes back with kv_cache::fetch().
struct kv_sequence {
    std::vector<page_idx> pages;     // page table, append-only except truncate(); may run ahead of n_tokens (reserve)
    std::vector<block_hash> hashes;  // chained hashes of the full pages, in order
    int32_t n_tokens = 0;            // tokens whose KV is (or is about to be) written
    std::vector<token_id> tokens;    // the tokens in the cache, needed to hash pages when they fill
    // Sparse attention (engine/attention.h): per full page, layer and KV head the per-channel min and max of
    // the page's un-rotated keys, [n_summarized][n_layer][n_head_kv][2][head_dim]; filled on demand.
    std::vector<float> key_summary;
    int32_t n_summarized = 0;  // pages with a summary (a prefix of the full pages)
    // The same per group of 16 pages (min of the mins, max of the maxes): an upper bound for every page of the
    // group, so a selection can skip whole groups. [n groups][n_layer][n_head_kv][2][head_dim].
    std::vector<float> group_summary;
    std::vector<float> super_summary;  // the same per 256 pages (a second level for histories of millions)
    int64_t n_pages_loaded = 0;        // parked pages brought back by fetch() for this sequence
    int32_t park_cursor = 0;           // sparse attention: candidate pages below it were parked when they could be
    // Preemption (kv_cache::swap_out): while the sequence waits, the bytes of the pages it had resident, in host
    // memory, one page_bytes() each, and the page numbers they belong to (pages[k] is -1 meanwhile). Empty while
    // the sequence is resident.
    std::vector<int32_t> swapped_pages;
    std::vector<uint8_t> swapped_bytes;
    bool swapped() const { return !swapped_pages.empty(); }
    cache_scope scope;  // how its blocks are hashed (set before match_prefix or the first commit)
};

enum class kv_event_type {
    stored,   // hash is now resident at page (a page filled, or a block was loaded from the store)
    evicted,  // hash is no longer resident (its cached page was taken for reuse or rewritten)
};

struct kv_event {
    kv_event_type type = kv_event_type::stored;
    block_hash hash;
    page_idx page = -1;
};

struct kv_cache_stats {
    int32_t n_pages = 0;           // pool size
    int32_t n_free = 0;            // pages with refcount 0 (cached or not): what reserve() can get
    int32_t n_cached = 0;          // pages in the prefix index (in use or free)
    int32_t n_cached_free = 0;     // of which free: reusable, evicted last
    int64_t hits_resident = 0;     // prompt tokens reused from resident pages (match_prefix)
    int64_t hits_store = 0;        // prompt tokens reused from blocks loaded from the store
    int64_t misses = 0;            // prompt tokens match_prefix could not reuse (to be computed)
    int64_t evictions = 0;         // cached pages dropped from the index for reuse
    int64_t n_stored = 0;          // pages entered in the index by commit()
    int64_t n_store_failures = 0;  // store loads that returned false (missing or corrupt) where a prefix stopped
    int64_t n_store_batches = 0;   // load_many() calls made by match_prefix
    int64_t match_ns = 0;          // wall time spent in match_prefix (hashing, lookups, store loads)
    int64_t store_load_ns = 0;     // ... of which inside the store's load / load_many
    int64_t n_fetch_hits = 0;      // parked pages fetch() found still resident (no read)
    int64_t n_fetch_loads = 0;     // parked pages fetch() read back from the store or the host tier
};

// ---------------------------------------------------------------------------
// kv_cache
// ---------------------------------------------------------------------------

class kv_cache {
  public:
    // Allocates the pool (zero-filled) with every page free. Errors:
    // invalid_argument (a dimension <= 0, or neither n_pages nor a max_bytes
    // that fits one page), out_of_memory (the allocation failed or the size
    // overflows).
    static result<std::unique_ptr<kv_cache>> open(const kv_cache_options& options);
    ~kv_cache();
    kv_cache(const kv_cache&) = delete;
    kv_cache& operator=(const kv_cache&) = delete;

    // Chained block hash: SHA-256(parent's 32 bytes || tokens as little-endian int32).
    static block_hash chain_hash(const block_hash& parent, std::span<const token_id> tokens);
    // The hash of block k (tokens: its page of tokens) under scope: chain_hash, with SHA-256(parent || salt) as
    // the parent when the block ends past scope.n_shared and the salt is not zero (engine/types.h cache_scope).
    static block_hash scoped_hash(const block_hash& parent, std::span<const token_id> tokens, int64_t k,
                                  const cache_scope& scope);

    // -- sequences ----------------------------------------------------------

    // For an empty seq: finds the longest run of full pages of prompt that
    // are cached, counting only pages entirely inside prompt[0 .. n-1) (the
    // last prompt token is always recomputed so its logits exist, and no
    // shared page is ever written). Looks each block up in the prefix index,
    // else (with a store attached) loads it from the store into a newly
    // allocated page and indexes it. Retains every matched page, appends them
    // to seq (pages, hashes, tokens, n_tokens) and returns the number of
    // tokens reused (a multiple of page_size). Stops at the first block that
    // is neither resident nor loadable, or when no page is free for a load.
    // Returns 0 and changes nothing when seq is not empty.
    // Store loads are batched: a run of consecutive blocks that are not
    // resident is read with block_store_i::load_many() into free uncached
    // pages, in batches of 2, 4, 8, ... up to max_load_batch blocks (a prompt
    // the store does not have costs one small batch); when only cached pages
    // are free, blocks are loaded one at a time through a scratch page so that
    // a miss evicts nothing. Blocks of a batch after the first that fails are
    // given back unused.
    // hooks (sparse attention, a history longer than the pool): on_page is called with (seq, k) as each
    // matched page k becomes resident in seq (in order) and may park(seq, k); store loads may then also reuse
    // free cached pages. take_parked(k) true for a block that is not resident: it joins seq parked, without
    // being read (the caller knows its summary); such pages count as reused from the store.
    struct match_hooks {
        std::function<void(kv_sequence&, int32_t)> on_page;
        std::function<bool(int32_t)> take_parked;
        // Chained hashes of the prompt's leading blocks when the caller has them already (not recomputed).
        std::vector<block_hash> hashes;
    };
    int32_t match_prefix(kv_sequence& seq, std::span<const token_id> prompt, const match_hooks& hooks = {});

    // Makes room for n_new more tokens after seq.n_tokens, allocating pages
    // (free uncached pages first, then the least recently freed cached page,
    // which is evicted). Does not advance n_tokens. Errors: out_of_memory when
    // the pool has too few free pages even after evicting every cached free
    // page, invalid_argument for n_new < 0; seq and the pool are then unchanged.
    // invalid_argument also for a swapped-out seq (swap_in first).
    status reserve(kv_sequence& seq, int32_t n_new);

    // After the forward pass wrote KV for new_tokens at positions
    // [seq.n_tokens, seq.n_tokens + new_tokens.size()): appends the tokens and
    // advances n_tokens; for every page that became full computes its chained
    // hash (appended to seq.hashes) and, unless another page already holds
    // that hash (then this page stays unshared and unindexed), enters it in
    // the prefix index, emits `stored` and persists it to the store. Errors:
    // invalid_argument when fewer positions are reserved than new tokens;
    // nothing changes then.
    status commit(kv_sequence& seq, std::span<const token_id> new_tokens);

    // Drops one reference from every page of seq (last page first, so on
    // eviction a chain's tail goes before its shared head) and clears seq
    // (a swapped-out seq's host copy too).
    void release(kv_sequence& seq);

    // Drops tokens from the tail so that seq holds n_tokens (no-op when it
    // holds no more than that). Pages past the new end are released. If the
    // new end falls inside a page that is shared or indexed, that page is
    // replaced by a private copy of its first rows (so later writes never
    // touch a shared or cached page); when no page is free for the copy, an
    // unshared indexed page is removed from the index instead (`evicted`).
    // Errors: out_of_memory when the page is shared and no page is free;
    // invalid_argument for n_tokens < 0 or a swapped-out seq; seq is then unchanged.
    status truncate(kv_sequence& seq, int32_t n_tokens);

    // -- parking (sparse attention: the history lives beyond the pool) ------

    // Gives up seq's page number k (a full page) while keeping its hash: pages[k] becomes -1 and the page joins
    // the free lists (still in the prefix index until reused). A page that fetch() read back from the store (or
    // the host tier) and that no fetch has found resident since joins the probation list: while that list holds
    // more than n_pages / 16 pages its newest page is reused first, before the least recently used cached page.
    // When the running sequences attend to more parked pages than the pool holds, their pages come round in a
    // cycle and plain LRU would evict each one just before it is needed again (every fetch a store read); this
    // way the pages that stay resident keep staying, and only the pages read back take turns. A page found
    // resident by a fetch leaves probation for the LRU list. Its block comes back through fetch(): from the
    // prefix index while cached, else from the store; with no store attached the page bytes are first copied
    // to a host-memory tier. Returns false and changes nothing when k is not a full resident page or the page
    // is not indexed (an unshared duplicate of a block another page holds).
    bool park(kv_sequence& seq, int32_t k);
    // Makes seq's parked pages among page_nos resident again (from the index, else the host tier or the store
    // in one batch). Adds the number of pages read back from the store or the host tier to *n_loaded. Errors:
    // out_of_memory (not enough free pages), not_found (a block is gone: missing or corrupt in the store);
    // pages fetched before the failure stay resident.
    status fetch(kv_sequence& seq, std::span<const int32_t> page_nos, int64_t* n_loaded = nullptr);
    // Resident pages of seq (not parked).
    int32_t n_resident(const kv_sequence& seq) const;

    // -- preemption (the pool is full and a sequence must give way) ----------

    // Copies the bytes of every resident page of seq (full or not) to seq.swapped_bytes and releases the pages
    // (indexed ones stay in the prefix index until reused, as after release()); pages reserved past n_tokens are
    // given back. seq keeps its tokens, hashes, summaries and parked pages. Returns the pages copied (0 when seq
    // holds none or is already swapped out: nothing changes then).
    int32_t swap_out(kv_sequence& seq);
    // Pages swap_in(seq) takes from the pool (at most; a page still holding the same bytes is shared instead).
    int32_t swap_in_pages(const kv_sequence& seq) const { return int32_t(seq.swapped_pages.size()); }
    // Makes a swapped-out seq resident again with exactly the bytes it had: a full page whose block is still
    // resident with the same bytes is shared, every other page is copied back into a free page (a full one is
    // indexed when its block is not). Errors: out_of_memory when fewer than swap_in_pages(seq) pages are free;
    // nothing changes then. A no-op for a sequence that is not swapped out.
    status swap_in(kv_sequence& seq);

    // -- store and events ----------------------------------------------------

    // Blocks per block_store_i::load_many() call in match_prefix.
    static constexpr int32_t max_load_batch = 256;

    // Attaches a non-owning block store (nullptr detaches). It must outlive
    // its attachment.
    void set_store(block_store_i* store) { store_ = store; }
    block_store_i* store() const { return store_; }
    // Called synchronously on every stored / evicted event; empty to disable.
    void set_listener(std::function<void(const kv_event&)> listener) { listener_ = std::move(listener); }

    // -- memory layout -------------------------------------------------------

    paged_kv_layout layout() const { return layout_; }
    const kv_cache_options& options() const { return options_; }
    int32_t n_pages() const { return n_pages_; }
    int32_t page_size() const { return layout_.page_size; }
    // Bytes of one page (= one block in the store).
    size_t page_bytes() const { return size_t(layout_.page_stride) * sizeof(uint16_t); }
    // The whole pool, n_pages * page_stride f16 values, 64-byte aligned.
    uint16_t* data() { return data_.get(); }
    const uint16_t* data() const { return data_.get(); }
    uint16_t* page_data(page_idx p) { return data_.get() + p * layout_.page_stride; }
    const uint16_t* page_data(page_idx p) const { return data_.get() + p * layout_.page_stride; }
    // K (V) of `layer` in page p: [page_size][kv_dim].
    uint16_t* k_ptr(page_idx p, int layer) { return page_data(p) + layer * layout_.layer_stride; }
    uint16_t* v_ptr(page_idx p, int layer) { return k_ptr(p, layer) + layout_.v_offset; }
    const uint16_t* k_ptr(page_idx p, int layer) const { return page_data(p) + layer * layout_.layer_stride; }
    const uint16_t* v_ptr(page_idx p, int layer) const { return k_ptr(p, layer) + layout_.v_offset; }

    // -- inspection ----------------------------------------------------------

    kv_cache_stats stats() const;
    int32_t ref_count(page_idx p) const { return ref_[p]; }
    // The resident page holding hash, or -1.
    page_idx find(const block_hash& hash) const;
    // Whether page p is in the prefix index (then page_hash(p) is its hash).
    bool is_indexed(page_idx p) const { return indexed_[p] != 0; }
    const block_hash& page_hash(page_idx p) const { return hash_[p]; }
    // Free pages in the order reserve() takes them: uncached ones, then the probation pages above its cap
    // (newest first), cached ones least recently freed first, then the rest of probation (newest first).
    std::vector<page_idx> free_pages() const;
    // Checks the pool's internal invariants (free lists linked both ways and
    // holding exactly the pages with refcount 0, counts, index <-> page
    // hashes). Returns internal with the first violation. For tests and debug.
    status check_consistency() const;

  private:
    struct free_deleter {
        void operator()(uint16_t* p) const;
    };
    enum : uint8_t { list_none = 0, list_uncached = 1, list_cached = 2, list_probation = 3 };

    kv_cache(const kv_cache_options& options, int32_t n_pages, paged_kv_layout layout, uint16_t* data);

    page_idx sentinel(uint8_t list) const { return n_pages_ + list - 1; }
    void list_push_back(uint8_t list, page_idx p);
    void list_unlink(page_idx p);
    // The free cached page allocate() evicts next: the newest probation page while probation is over its cap
    // (or the LRU list is empty), else the least recently freed cached page; -1 when none.
    page_idx next_victim() const;
    int32_t probation_cap() const { return std::max(1, n_pages_ / 16); }
    // Takes a free page (uncached first, else evicts next_victim()) with refcount 1; -1 when none.
    page_idx allocate();
    // When no uncached page is free: loads block h from the store through the scratch page into a newly
    // allocated (evicted) page (refcount 1, not yet indexed); -1 when the store misses or no page is free.
    // A miss evicts no cached page.
    page_idx load_from_store(const block_hash& h);
    // Loads hashes (not resident) with one load_many() into newly allocated uncached pages (the caller
    // checked that enough are free), indexes the leading run that loaded and appends it to seq; gives the
    // other pages back. Returns the number of blocks appended.
    int64_t load_run_from_store(kv_sequence& seq, std::span<const block_hash> hashes);
    // Enters a page loaded from the store in the prefix index under h.
    void index_loaded(page_idx p, const block_hash& h);
    void retain(page_idx p);
    void release_page(page_idx p);
    void unindex(page_idx p);
    void emit(kv_event_type type, const block_hash& hash, page_idx p);
    std::span<uint8_t> page_span(page_idx p) { return {reinterpret_cast<uint8_t*>(page_data(p)), page_bytes()}; }

    kv_cache_options options_;                        // as given, for options()
    int32_t n_pages_ = 0;                             // pool size (pages), fixed at open()
    paged_kv_layout layout_;                          // strides shared with the kernels
    std::unique_ptr<uint16_t[], free_deleter> data_;  // the pool: n_pages * page_stride f16, 64-byte aligned

    std::vector<int32_t> ref_;      // per page: sequences using it; 0 = on a free list
    std::vector<block_hash> hash_;  // per page: its block hash, valid while indexed_
    std::vector<uint8_t> indexed_;  // per page: 1 when index_[hash_[p]] == p
    std::vector<uint8_t> list_;     // per page: which free list holds it (list_none while in use)
    std::vector<uint8_t> reread_;   // per page: 1 when fetch() read its block back and no fetch found it since
    std::vector<page_idx> prev_;    // intrusive doubly-linked free lists; n_pages + 3 nodes,
    std::vector<page_idx> next_;    //   the last three are the sentinels (uncached, cached, probation)
    int32_t n_free_uncached_ = 0;   // length of the uncached free list
    int32_t n_free_cached_ = 0;     // length of the cached free lists (LRU and probation)
    int32_t n_free_probation_ = 0;  // ... of which on probation
    std::unordered_map<block_hash, page_idx, block_hash_hasher> index_;  // prefix index: hash -> resident page

    block_store_i* store_ = nullptr;                 // optional, non-owning: blocks beyond the pool
    std::function<void(const kv_event&)> listener_;  // optional: follows stored / evicted
    std::vector<uint8_t> scratch_;                   // one page, for store loads when only cached pages are free
    kv_cache_stats counters_;                        // the cumulative counters of stats()
    struct host_block {
        std::vector<uint8_t> bytes;  // the page, as it was parked
        int32_t n_parked = 0;        // parked references from sequences
    };
    std::unordered_map<block_hash, host_block, block_hash_hasher> host_;  // parked pages when no store is attached
    void host_unref(const block_hash& h);
    // Reads parked blocks back: from the store (waiting for write-behind once on a miss), else the host tier.
    void read_parked(std::span<const block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                     std::span<uint8_t> ok);
};

}  // namespace mnemos::engine

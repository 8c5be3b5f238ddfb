#include "engine/kv_cache.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>

namespace mnemos::engine {

// ---------------------------------------------------------------------------
// kv_cache: construction
// ---------------------------------------------------------------------------

void kv_cache::free_deleter::operator()(uint16_t* p) const { std::free(p); }

result<std::unique_ptr<kv_cache>> kv_cache::open(const kv_cache_options& o) {
    if (o.n_layer <= 0 || o.n_head_kv <= 0 || o.head_dim <= 0 || o.page_size <= 0)
        return make_error(errc::invalid_argument,
                          "kv_cache: n_layer, n_head_kv, head_dim and page_size must be > 0 (got " +
                              std::to_string(o.n_layer) + ", " + std::to_string(o.n_head_kv) + ", " +
                              std::to_string(o.head_dim) + ", " + std::to_string(o.page_size) + ")");
    if (o.n_pages < 0) return make_error(errc::invalid_argument, "kv_cache: n_pages must be >= 0");

    constexpr int64_t max_elems = std::numeric_limits<int64_t>::max() / 4;
    int64_t kv_dim = int64_t(o.n_head_kv) * o.head_dim;
    if (kv_dim > max_elems / o.page_size / 2 / o.n_layer)
        return make_error(errc::out_of_memory, "kv_cache: page size overflows");
    paged_kv_layout layout;
    layout.page_size = o.page_size;
    layout.kv_dim = int32_t(kv_dim);
    if (int64_t(layout.kv_dim) != kv_dim) return make_error(errc::invalid_argument, "kv_cache: kv_dim exceeds int32");
    layout.v_offset = int64_t(o.page_size) * kv_dim;
    layout.layer_stride = 2 * layout.v_offset;
    layout.page_stride = int64_t(o.n_layer) * layout.layer_stride;
    size_t page_bytes = size_t(layout.page_stride) * sizeof(uint16_t);

    int64_t n_pages = o.n_pages;
    if (n_pages == 0) n_pages = int64_t(o.max_bytes / page_bytes);
    if (n_pages <= 0)
        return make_error(errc::invalid_argument, "kv_cache: need n_pages > 0 or max_bytes >= one page (" +
                                                      std::to_string(page_bytes) + " bytes)");
    if (n_pages > std::numeric_limits<int32_t>::max() - 2 || n_pages > max_elems / layout.page_stride)
        return make_error(errc::out_of_memory, "kv_cache: pool of " + std::to_string(n_pages) + " pages overflows");

    size_t n_bytes = size_t(n_pages) * page_bytes;
    size_t n_alloc = (n_bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of the alignment
    auto* data = static_cast<uint16_t*>(std::aligned_alloc(64, n_alloc));
    if (!data)
        return make_error(errc::out_of_memory, "kv_cache: cannot allocate " + std::to_string(n_alloc) + " bytes");
    std::memset(data, 0, n_alloc);
    return std::unique_ptr<kv_cache>(new kv_cache(o, int32_t(n_pages), layout, data));
}

kv_cache::kv_cache(const kv_cache_options& options, int32_t n_pages, paged_kv_layout layout, uint16_t* data)
    : options_(options),
      n_pages_(n_pages),
      layout_(layout),
      data_(data),
      ref_(n_pages, 0),
      hash_(n_pages),
      indexed_(n_pages, 0),
      list_(n_pages, list_none),
      reread_(n_pages, 0),
      prev_(n_pages + 3),
      next_(n_pages + 3) {
    options_.n_pages = n_pages;
    for (uint8_t list : {list_uncached, list_cached, list_probation}) {
        page_idx s = sentinel(list);
        prev_[s] = next_[s] = s;
    }
    for (page_idx p = 0; p < n_pages; ++p) list_push_back(list_uncached, p);
}

kv_cache::~kv_cache() = default;

block_hash kv_cache::chain_hash(const block_hash& parent, std::span<const token_id> tokens) {
    sha256 h;
    h.update(parent.bytes.data(), parent.bytes.size());
    uint8_t buf[256];
    size_t n = 0;
    for (token_id t : tokens) {
        uint32_t u = uint32_t(t);
        buf[n++] = uint8_t(u);
        buf[n++] = uint8_t(u >> 8);
        buf[n++] = uint8_t(u >> 16);
        buf[n++] = uint8_t(u >> 24);
        if (n == sizeof buf) {
            h.update(buf, n);
            n = 0;
        }
    }
    h.update(buf, n);
    block_hash out;
    out.bytes = h.finish();
    return out;
}

block_hash kv_cache::scoped_hash(const block_hash& parent, std::span<const token_id> tokens, int64_t k,
                                 const cache_scope& scope) {
    if (scope.salt.is_zero() || (k + 1) * int64_t(tokens.size()) <= int64_t(scope.n_shared))
        return chain_hash(parent, tokens);
    sha256 h;
    h.update(parent.bytes.data(), parent.bytes.size());
    h.update(scope.salt.bytes.data(), scope.salt.bytes.size());
    block_hash salted;
    salted.bytes = h.finish();
    return chain_hash(salted, tokens);
}

void kv_cache::emit(kv_event_type type, const block_hash& hash, page_idx p) {
    if (listener_) listener_(kv_event{type, hash, p});
}

// ---------------------------------------------------------------------------
// sequences
// ---------------------------------------------------------------------------

int32_t kv_cache::match_prefix(kv_sequence& seq, std::span<const token_id> prompt, const match_hooks& hooks) {
    const auto& on_page = hooks.on_page;
    if (!seq.pages.empty() || seq.n_tokens != 0 || !seq.tokens.empty()) return 0;
    const auto t0 = std::chrono::steady_clock::now();
    const int32_t ps = layout_.page_size;
    const int64_t n_prompt = int64_t(prompt.size());
    const int64_t n_blocks = n_prompt > 0 ? (n_prompt - 1) / ps : 0;  // full pages inside prompt[0 .. n-1)

    // The caller's hashes of the leading blocks (hooks.hashes), then the rest.
    std::vector<block_hash> hashes(static_cast<size_t>(n_blocks));
    const int64_t n_given = std::min<int64_t>(n_blocks, int64_t(hooks.hashes.size()));
    std::copy_n(hooks.hashes.begin(), n_given, hashes.begin());
    block_hash parent = n_given > 0 ? hashes[size_t(n_given - 1)] : options_.fingerprint;
    for (int64_t k = n_given; k < n_blocks; ++k)
        parent = hashes[k] = scoped_hash(parent, prompt.subspan(size_t(k * ps), size_t(ps)), k, seq.scope);

    int64_t n_resident = 0, n_loaded = 0;
    int64_t batch = 2;  // blocks per load_many: doubles up to max_load_batch, so a prompt the store lacks costs little
    for (int64_t k = 0; k < n_blocks;) {
        const block_hash& h = hashes[size_t(k)];
        page_idx p = find(h);
        if (p >= 0) {
            retain(p);
            ++n_resident;
            seq.pages.push_back(p);
            seq.hashes.push_back(h);
            seq.n_tokens = int32_t(seq.pages.size()) * ps;
            if (on_page) on_page(seq, int32_t(k));
            ++k;
            continue;
        }
        if (!store_) break;
        if (hooks.take_parked && hooks.take_parked(int32_t(k))) {
            // Not needed now (its summary is known): kept as a parked page, read only if a query selects it.
            seq.pages.push_back(-1);
            seq.hashes.push_back(h);
            seq.n_tokens = int32_t(seq.pages.size()) * ps;
            ++n_loaded;
            ++k;
            continue;
        }
        // The run of blocks from k that are not resident, as far as free uncached pages go (with on_page, which
        // parks what it does not need, cached free pages too).
        const int64_t cap = std::min<int64_t>(batch, n_free_uncached_ + (on_page ? n_free_cached_ : 0));
        batch = std::min<int64_t>(2 * batch, max_load_batch);
        int64_t j = k;
        while (j < n_blocks && j - k < cap && find(hashes[size_t(j)]) < 0 &&
               !(hooks.take_parked && hooks.take_parked(int32_t(j))))
            ++j;
        if (j > k) {
            const int64_t n_run = j - k;
            const int64_t n =
                load_run_from_store(seq, std::span<const block_hash>(hashes).subspan(size_t(k), size_t(n_run)));
            n_loaded += n;
            seq.n_tokens = int32_t(seq.pages.size()) * ps;
            if (on_page)
                for (int64_t i = k; i < k + n; ++i) on_page(seq, int32_t(i));
            if (n < n_run) break;
            k = j;
            continue;
        }
        // Only cached pages are free: one block through the scratch page.
        const auto l0 = std::chrono::steady_clock::now();
        p = load_from_store(h);
        counters_.store_load_ns +=
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - l0).count();
        if (p < 0) break;
        index_loaded(p, h);
        ++n_loaded;
        seq.pages.push_back(p);
        seq.hashes.push_back(h);
        seq.n_tokens = int32_t(seq.pages.size()) * ps;
        if (on_page) on_page(seq, int32_t(k));
        ++k;
    }
    int32_t n_reused = int32_t(seq.pages.size()) * ps;
    seq.n_tokens = n_reused;
    seq.tokens.assign(prompt.begin(), prompt.begin() + n_reused);
    counters_.hits_resident += n_resident * ps;
    counters_.hits_store += n_loaded * ps;
    counters_.misses += n_prompt - n_reused;
    counters_.match_ns +=
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    return n_reused;
}

void kv_cache::index_loaded(page_idx p, const block_hash& h) {
    hash_[p] = h;
    indexed_[p] = 1;
    index_.emplace(h, p);
    emit(kv_event_type::stored, h, p);
}

int64_t kv_cache::load_run_from_store(kv_sequence& seq, std::span<const block_hash> hashes) {
    const size_t n = hashes.size();
    std::vector<page_idx> pages(n);
    std::vector<std::span<uint8_t>> outs(n);
    std::vector<uint8_t> ok(n, 0);
    for (size_t i = 0; i < n; ++i) {
        pages[i] = allocate();  // uncached: the caller checked n <= n_free_uncached_, so nothing is evicted
        outs[i] = page_span(pages[i]);
    }
    const auto l0 = std::chrono::steady_clock::now();
    store_->load_many(hashes, outs, ok);
    counters_.store_load_ns +=
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - l0).count();
    ++counters_.n_store_batches;
    size_t n_ok = 0;
    while (n_ok < n && ok[n_ok]) ++n_ok;
    if (n_ok < n) ++counters_.n_store_failures;
    for (size_t i = 0; i < n_ok; ++i) {
        index_loaded(pages[i], hashes[i]);
        seq.pages.push_back(pages[i]);
        seq.hashes.push_back(hashes[i]);
    }
    for (size_t i = n; i-- > n_ok;) release_page(pages[i]);  // unindexed: back to the uncached list
    return int64_t(n_ok);
}

page_idx kv_cache::load_from_store(const block_hash& h) {
    // Called when only cached pages are free: load into scratch first so that a miss evicts nothing.
    if (n_free_cached_ == 0) return -1;
    scratch_.resize(page_bytes());
    if (!store_->load(h, scratch_)) {
        ++counters_.n_store_failures;
        return -1;
    }
    page_idx p = allocate();
    std::memcpy(page_data(p), scratch_.data(), scratch_.size());
    return p;
}

status kv_cache::reserve(kv_sequence& seq, int32_t n_new) {
    if (n_new < 0) return make_error(errc::invalid_argument, "kv_cache::reserve: n_new < 0");
    if (seq.swapped()) return make_error(errc::invalid_argument, "kv_cache::reserve: the sequence is swapped out");
    const int64_t ps = layout_.page_size;
    int64_t n_need = (int64_t(seq.n_tokens) + n_new + ps - 1) / ps - int64_t(seq.pages.size());
    if (n_need <= 0) return ok_status();
    int64_t n_free = int64_t(n_free_uncached_) + n_free_cached_;
    if (n_need > n_free)
        return make_error(errc::out_of_memory, "kv_cache: need " + std::to_string(n_need) + " pages, " +
                                                   std::to_string(n_free) + " free of " + std::to_string(n_pages_));
    for (int64_t i = 0; i < n_need; ++i) seq.pages.push_back(allocate());
    return ok_status();
}

status kv_cache::commit(kv_sequence& seq, std::span<const token_id> new_tokens) {
    const int32_t ps = layout_.page_size;
    int64_t n_end = int64_t(seq.n_tokens) + int64_t(new_tokens.size());
    if (n_end > int64_t(seq.pages.size()) * ps)
        return make_error(errc::invalid_argument, "kv_cache::commit: " + std::to_string(n_end) + " tokens but only " +
                                                      std::to_string(seq.pages.size()) + " pages reserved");
    seq.tokens.insert(seq.tokens.end(), new_tokens.begin(), new_tokens.end());
    seq.n_tokens = int32_t(n_end);
    for (size_t k = seq.hashes.size(); int64_t(k + 1) * ps <= n_end; ++k) {
        const block_hash parent = k == 0 ? options_.fingerprint : seq.hashes[k - 1];  // a copy: push_back below
        std::span<const token_id> toks(seq.tokens.data() + k * ps, size_t(ps));
        block_hash h = scoped_hash(parent, toks, int64_t(k), seq.scope);
        seq.hashes.push_back(h);
        page_idx p = seq.pages[k];
        if (indexed_[p] || index_.count(h)) continue;  // another page already holds this block: keep it
        hash_[p] = h;
        indexed_[p] = 1;
        index_.emplace(h, p);
        ++counters_.n_stored;
        emit(kv_event_type::stored, h, p);
        if (store_) {
            auto bytes = page_span(p);
            store_->persist(h, parent, toks, {bytes.data(), bytes.size()});
        }
    }
    return ok_status();
}

void kv_cache::release(kv_sequence& seq) {
    for (size_t k = seq.pages.size(); k-- > 0;) {
        const bool swapped = std::binary_search(seq.swapped_pages.begin(), seq.swapped_pages.end(), int32_t(k));
        if (seq.pages[k] >= 0)
            release_page(seq.pages[k]);
        else if (!store_ && !swapped)
            host_unref(seq.hashes[k]);
    }
    seq.swapped_pages.clear();
    seq.swapped_bytes.clear();
    seq.pages.clear();
    seq.hashes.clear();
    seq.tokens.clear();
    seq.n_tokens = 0;
    seq.key_summary.clear();
    seq.group_summary.clear();
    seq.super_summary.clear();
    seq.park_cursor = 0;
    seq.n_summarized = 0;
}

status kv_cache::truncate(kv_sequence& seq, int32_t n_tokens) {
    if (n_tokens < 0) return make_error(errc::invalid_argument, "kv_cache::truncate: n_tokens < 0");
    if (seq.swapped()) return make_error(errc::invalid_argument, "kv_cache::truncate: the sequence is swapped out");
    if (n_tokens >= seq.n_tokens) return ok_status();
    const int32_t ps = layout_.page_size;
    const size_t n_keep = size_t((n_tokens + ps - 1) / ps);
    const int32_t n_rows = n_tokens % ps;  // rows kept in the new last page; 0 = it ends on a page boundary

    if (n_rows != 0 && seq.pages[n_keep - 1] < 0)
        return make_error(errc::invalid_argument, "kv_cache::truncate: the new end is inside a parked page");
    if (n_rows != 0) {
        page_idx old = seq.pages[n_keep - 1];
        if (ref_[old] > 1 || indexed_[old]) {
            page_idx fresh = allocate();
            if (fresh >= 0) {
                for (int32_t l = 0; l < options_.n_layer; ++l) {
                    size_t n = size_t(n_rows) * size_t(layout_.kv_dim) * sizeof(uint16_t);
                    std::memcpy(k_ptr(fresh, l), k_ptr(old, l), n);
                    std::memcpy(v_ptr(fresh, l), v_ptr(old, l), n);
                }
                seq.pages[n_keep - 1] = fresh;
                release_page(old);
            } else if (ref_[old] == 1) {
                unindex(old);  // we are its only user: rewrite it in place, dropping it from the cache
            } else {
                return make_error(errc::out_of_memory, "kv_cache::truncate: no free page to copy a shared page");
            }
        }
    }
    while (seq.pages.size() > n_keep) {
        if (seq.pages.back() >= 0)
            release_page(seq.pages.back());
        else if (!store_)
            host_unref(seq.hashes[seq.pages.size() - 1]);
        seq.pages.pop_back();
    }
    seq.hashes.resize(std::min(seq.hashes.size(), size_t(n_tokens / ps)));
    seq.tokens.resize(size_t(n_tokens));
    seq.n_tokens = n_tokens;
    seq.n_summarized = std::min(seq.n_summarized, n_tokens / ps);
    seq.park_cursor = std::min(seq.park_cursor, n_tokens / ps);
    return ok_status();
}

// ---------------------------------------------------------------------------
// inspection
// ---------------------------------------------------------------------------

kv_cache_stats kv_cache::stats() const {
    kv_cache_stats s = counters_;
    s.n_pages = n_pages_;
    s.n_free = n_free_uncached_ + n_free_cached_;
    s.n_cached = int32_t(index_.size());
    s.n_cached_free = n_free_cached_;
    return s;
}

page_idx kv_cache::find(const block_hash& hash) const {
    auto it = index_.find(hash);
    return it == index_.end() ? -1 : it->second;
}

status kv_cache::check_consistency() const {
    auto fail = [](std::string what) { return make_error(errc::internal, "kv_cache: " + what); };
    std::vector<uint8_t> seen(size_t(n_pages_), 0);
    int32_t n_cached_lists = 0;
    for (uint8_t list : {list_uncached, list_cached, list_probation}) {
        page_idx s = sentinel(list);
        int32_t n = 0;
        for (page_idx p = next_[s]; p != s; p = next_[p]) {
            if (p < 0 || p >= n_pages_) return fail("free list link out of range: " + std::to_string(p));
            if (seen[p]++) return fail("page " + std::to_string(p) + " twice on the free lists");
            if (prev_[next_[p]] != p) return fail("free list not doubly linked at page " + std::to_string(p));
            if (list_[p] != list) return fail("page " + std::to_string(p) + " on the wrong free list");
            if (ref_[p] != 0)
                return fail("page " + std::to_string(p) + " free with refcount " + std::to_string(ref_[p]));
            if ((list != list_uncached) != (indexed_[p] != 0))
                return fail("page " + std::to_string(p) + " cached flag disagrees with its free list");
            if (++n > n_pages_) return fail("free list cycle");
        }
        if (prev_[next_[s]] != s) return fail("sentinel not linked");
        if (list != list_uncached) n_cached_lists += n;
        if ((list == list_uncached && n != n_free_uncached_) || (list == list_probation && n != n_free_probation_))
            return fail("free list count mismatch");
    }
    if (n_cached_lists != n_free_cached_) return fail("cached free list count mismatch");
    int32_t n_indexed = 0;
    for (page_idx p = 0; p < n_pages_; ++p) {
        if (ref_[p] < 0) return fail("negative refcount at page " + std::to_string(p));
        if (ref_[p] == 0 && !seen[p]) return fail("page " + std::to_string(p) + " leaked: refcount 0, not free");
        if (ref_[p] > 0 && list_[p] != list_none) return fail("page " + std::to_string(p) + " in use but listed");
        if (indexed_[p]) {
            ++n_indexed;
            auto it = index_.find(hash_[p]);
            if (it == index_.end() || it->second != p)
                return fail("page " + std::to_string(p) + " marked indexed but the index disagrees");
        }
    }
    for (const auto& [h, p] : index_) {
        if (p < 0 || p >= n_pages_ || !indexed_[p] || !(hash_[p] == h))
            return fail("index entry maps to page " + std::to_string(p) + " whose hash differs");
    }
    if (n_indexed != int32_t(index_.size())) return fail("indexed page count != index size");
    return ok_status();
}

}  // namespace mnemos::engine

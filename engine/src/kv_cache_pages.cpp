// kv_cache (engine/kv_cache.h): the free lists (uncached, cached LRU, probation), which page allocate() reuses,
// reference counts, and leaving the index.
#include <vector>

#include "engine/kv_cache.h"

namespace mnemos::engine {

void kv_cache::list_push_back(uint8_t list, page_idx p) {
    page_idx s = sentinel(list);
    page_idx last = prev_[s];
    next_[last] = p;
    prev_[p] = last;
    next_[p] = s;
    prev_[s] = p;
    list_[p] = list;
    (list == list_uncached ? n_free_uncached_ : n_free_cached_)++;
    n_free_probation_ += list == list_probation;
}

void kv_cache::list_unlink(page_idx p) {
    next_[prev_[p]] = next_[p];
    prev_[next_[p]] = prev_[p];
    prev_[p] = next_[p] = -1;
    (list_[p] == list_uncached ? n_free_uncached_ : n_free_cached_)--;
    n_free_probation_ -= list_[p] == list_probation;
    list_[p] = list_none;
}

page_idx kv_cache::next_victim() const {
    const page_idx lru = next_[sentinel(list_cached)];
    const bool lru_empty = lru == sentinel(list_cached);
    if (n_free_probation_ > 0 && (n_free_probation_ > probation_cap() || lru_empty))
        return prev_[sentinel(list_probation)];  // the newest: probation pages take turns among themselves
    return lru_empty ? -1 : lru;
}

page_idx kv_cache::allocate() {
    page_idx p = next_[sentinel(list_uncached)];
    if (p == sentinel(list_uncached)) {
        p = next_victim();
        if (p < 0) return -1;
        // Lazy eviction: a cached page leaves the index only now, when it is reused.
        unindex(p);
        ++counters_.evictions;
    }
    list_unlink(p);
    ref_[p] = 1;
    reread_[p] = 0;
    return p;
}

void kv_cache::retain(page_idx p) {
    if (ref_[p]++ == 0) list_unlink(p);
    reread_[p] = 0;  // found resident: an ordinary page from now on
}

void kv_cache::release_page(page_idx p) {
    if (--ref_[p] > 0) return;
    list_push_back(indexed_[p] ? list_cached : list_uncached, p);
}

void kv_cache::unindex(page_idx p) {
    index_.erase(hash_[p]);
    indexed_[p] = 0;
    block_hash h = hash_[p];
    hash_[p] = block_hash{};
    emit(kv_event_type::evicted, h, p);
}

std::vector<page_idx> kv_cache::free_pages() const {
    std::vector<page_idx> out;
    out.reserve(size_t(n_free_uncached_ + n_free_cached_));
    for (page_idx s = sentinel(list_uncached), p = next_[s]; p != s; p = next_[p]) out.push_back(p);
    // As allocate() would: probation above its cap (newest first), the LRU list, the rest of probation.
    const page_idx sp = sentinel(list_probation);
    page_idx q = prev_[sp];
    for (int32_t n = n_free_probation_; n > probation_cap(); --n, q = prev_[q]) out.push_back(q);
    for (page_idx s = sentinel(list_cached), p = next_[s]; p != s; p = next_[p]) out.push_back(p);
    for (; q != sp; q = prev_[q]) out.push_back(q);
    return out;
}

}  // namespace mnemos::engine

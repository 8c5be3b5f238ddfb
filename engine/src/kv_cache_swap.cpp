// kv_cache's preemption (engine/kv_cache.h): a sequence that must give way to others copies its resident pages to
// host memory and frees them; later it gets exactly those bytes back, so it continues as if it had never left.
#include <algorithm>
#include <cstring>

#include "engine/kv_cache.h"

namespace mnemos::engine {

int32_t kv_cache::swap_out(kv_sequence& seq) {
    if (seq.swapped()) return 0;
    const int64_t ps = layout_.page_size;
    const size_t n_used = size_t((int64_t(seq.n_tokens) + ps - 1) / ps);
    // Pages reserved past the written tokens hold nothing yet: given back (last first), reserve() takes new ones.
    while (seq.pages.size() > n_used) {
        if (seq.pages.back() >= 0) release_page(seq.pages.back());
        seq.pages.pop_back();
    }
    for (size_t k = 0; k < seq.pages.size(); ++k)
        if (seq.pages[k] >= 0) seq.swapped_pages.push_back(int32_t(k));
    seq.swapped_bytes.resize(seq.swapped_pages.size() * page_bytes());
    for (size_t i = 0; i < seq.swapped_pages.size(); ++i)
        std::memcpy(seq.swapped_bytes.data() + i * page_bytes(), page_data(seq.pages[size_t(seq.swapped_pages[i])]),
                    page_bytes());
    // Last page first, as release(): on eviction a chain's tail goes before its shared head.
    for (size_t i = seq.swapped_pages.size(); i-- > 0;) {
        page_idx& p = seq.pages[size_t(seq.swapped_pages[i])];
        release_page(p);
        p = -1;
    }
    return int32_t(seq.swapped_pages.size());
}

status kv_cache::swap_in(kv_sequence& seq) {
    if (!seq.swapped()) return ok_status();
    const int64_t n_free = int64_t(n_free_uncached_) + n_free_cached_;
    if (int64_t(seq.swapped_pages.size()) > n_free)
        return make_error(errc::out_of_memory, "kv_cache: swap in needs " + std::to_string(seq.swapped_pages.size()) +
                                                   " pages, " + std::to_string(n_free) + " free");
    // First the full pages whose block is still resident with the same bytes (shared, taken off the free list
    // before any allocation could evict them), then copies into free pages.
    std::vector<uint8_t> placed(seq.swapped_pages.size(), 0);
    for (size_t i = 0; i < seq.swapped_pages.size(); ++i) {
        const size_t k = size_t(seq.swapped_pages[i]);
        if (k >= seq.hashes.size()) continue;
        const page_idx p = find(seq.hashes[k]);
        if (p < 0 || std::memcmp(page_data(p), seq.swapped_bytes.data() + i * page_bytes(), page_bytes()) != 0)
            continue;
        retain(p);
        seq.pages[k] = p;
        placed[i] = 1;
    }
    for (size_t i = 0; i < seq.swapped_pages.size(); ++i) {
        if (placed[i]) continue;
        const size_t k = size_t(seq.swapped_pages[i]);
        const page_idx p = allocate();
        std::memcpy(page_data(p), seq.swapped_bytes.data() + i * page_bytes(), page_bytes());
        if (k < seq.hashes.size() && find(seq.hashes[k]) < 0) index_loaded(p, seq.hashes[k]);
        seq.pages[k] = p;
    }
    seq.swapped_pages.clear();
    seq.swapped_bytes.clear();
    seq.swapped_bytes.shrink_to_fit();
    return ok_status();
}

}  // namespace mnemos::engine

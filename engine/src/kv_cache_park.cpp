// kv_cache's parking (sparse attention): pages of a long sequence that no query needs now leave the pool and
// come back from the prefix index, the store or the host-memory tier (engine/kv_cache.h).
#include <algorithm>
#include <chrono>
#include <cstring>

#include "engine/kv_cache.h"

namespace mnemos::engine {

bool kv_cache::park(kv_sequence& seq, int32_t k) {
    if (k < 0 || size_t(k) >= seq.hashes.size() || size_t(k) >= seq.pages.size()) return false;
    const page_idx p = seq.pages[size_t(k)];
    if (p < 0 || !indexed_[p] || !(hash_[p] == seq.hashes[size_t(k)])) return false;
    if (!store_) {
        host_block& hb = host_[seq.hashes[size_t(k)]];
        if (hb.bytes.empty()) {
            const auto* b = reinterpret_cast<const uint8_t*>(page_data(p));
            hb.bytes.assign(b, b + page_bytes());
        }
        ++hb.n_parked;
    }
    // A page read back and not needed since is freed onto probation (kv_cache.h: park()); any other to LRU.
    if (reread_[p] && ref_[p] == 1) {
        --ref_[p];
        list_push_back(list_probation, p);
    } else {
        release_page(p);
    }
    seq.pages[size_t(k)] = -1;
    return true;
}

void kv_cache::host_unref(const block_hash& h) {
    auto it = host_.find(h);
    if (it != host_.end() && --it->second.n_parked <= 0) host_.erase(it);
}

int32_t kv_cache::n_resident(const kv_sequence& seq) const {
    int32_t n = 0;
    for (page_idx p : seq.pages) n += p >= 0;
    return n;
}

void kv_cache::read_parked(std::span<const block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                           std::span<uint8_t> ok) {
    if (store_) {
        store_->load_many(hashes, outs, ok);
        if (std::find(ok.begin(), ok.end(), uint8_t(0)) != ok.end()) {
            // A block written behind may still be on its way: wait for the writes, then read the misses again.
            store_->wait_persisted();
            for (size_t i = 0; i < hashes.size(); ++i)
                if (!ok[i]) ok[i] = store_->load(hashes[i], outs[i]);
        }
        ++counters_.n_store_batches;
        return;
    }
    for (size_t i = 0; i < hashes.size(); ++i) {
        auto it = host_.find(hashes[i]);
        if (it == host_.end() || it->second.bytes.size() != outs[i].size()) continue;
        std::memcpy(outs[i].data(), it->second.bytes.data(), outs[i].size());
        ok[i] = 1;
    }
}

status kv_cache::fetch(kv_sequence& seq, std::span<const int32_t> page_nos, int64_t* n_loaded) {
    std::vector<int32_t> missing;
    for (int32_t k : page_nos) {
        if (k < 0 || size_t(k) >= seq.pages.size() || seq.pages[size_t(k)] >= 0) continue;
        const block_hash& h = seq.hashes[size_t(k)];
        if (const page_idx p = find(h); p >= 0) {
            retain(p);  // found resident again: an ordinary page from now on (retain clears reread_)
            ++counters_.n_fetch_hits;
            if (!store_) host_unref(h);
            seq.pages[size_t(k)] = p;
        } else if (std::find(missing.begin(), missing.end(), k) == missing.end()) {
            missing.push_back(k);
        }
    }
    if (missing.empty()) return ok_status();
    if (int64_t(missing.size()) > int64_t(n_free_uncached_) + n_free_cached_)
        return make_error(errc::out_of_memory, "kv_cache: " + std::to_string(missing.size()) +
                                                   " parked pages to bring back, too few free pages");
    std::vector<page_idx> pages(missing.size());
    std::vector<block_hash> hashes(missing.size());
    std::vector<std::span<uint8_t>> outs(missing.size());
    std::vector<uint8_t> ok(missing.size(), 0);
    for (size_t i = 0; i < missing.size(); ++i) {
        pages[i] = allocate();
        hashes[i] = seq.hashes[size_t(missing[i])];
        outs[i] = page_span(pages[i]);
    }
    const auto l0 = std::chrono::steady_clock::now();
    read_parked(hashes, outs, ok);
    counters_.store_load_ns +=
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - l0).count();
    status st;
    for (size_t i = 0; i < missing.size(); ++i) {
        if (!ok[i]) {
            release_page(pages[i]);
            ++counters_.n_store_failures;
            st = make_error(errc::not_found, "kv_cache: a parked block of the history could not be read back");
            continue;
        }
        index_loaded(pages[i], hashes[i]);
        reread_[pages[i]] = 1;
        ++counters_.n_fetch_loads;
        if (!store_) host_unref(hashes[i]);
        seq.pages[size_t(missing[i])] = pages[i];
        if (n_loaded) ++*n_loaded;
    }
    return st;
}

}  // namespace mnemos::engine

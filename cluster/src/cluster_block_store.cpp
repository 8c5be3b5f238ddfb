#include "cluster/cluster_block_store.h"

#include <cstdio>

namespace mnemos::cluster {

cluster_block_store::cluster_block_store(memory::store& local, block_tier& tier, size_t max_queue)
    : local_(local), tier_(tier), max_queue_(max_queue), uploader_([this] { upload_loop(); }) {}

cluster_block_store::~cluster_block_store() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    uploader_.join();
}

bool cluster_block_store::fetch_shared(const engine::block_hash& hash) {
    auto value = tier_.get(hash);
    std::lock_guard lk(mu_);
    if (!value) {
        if (value.error().code() == errc::corrupt) {
            ++counters_.shared_corrupt;
            std::fprintf(stderr, "mnemos cluster: shared block refused: %s\n", value.error().message().c_str());
        } else {
            ++counters_.shared_misses;
        }
        return false;
    }
    if (!local_.put_raw_block(hash, *value).ok()) return false;
    ++counters_.shared_hits;
    return true;
}

bool cluster_block_store::load(const engine::block_hash& hash, std::span<uint8_t> out) {
    if (local_.blocks().load(hash, out)) {
        std::lock_guard lk(mu_);
        ++counters_.local_hits;
        return true;
    }
    // Written into the local store, the block is decoded and verified there like any other.
    return fetch_shared(hash) && local_.blocks().load(hash, out);
}

size_t cluster_block_store::load_many(std::span<const engine::block_hash> hashes,
                                      std::span<const std::span<uint8_t>> outs, std::span<uint8_t> ok) {
    size_t n = local_.blocks().load_many(hashes, outs, ok);
    {
        std::lock_guard lk(mu_);
        counters_.local_hits += n;
    }
    for (size_t i = 0; i < hashes.size(); ++i) {
        if (ok[i]) continue;
        ok[i] = fetch_shared(hashes[i]) && local_.blocks().load(hashes[i], outs[i]) ? 1 : 0;
        n += ok[i];
    }
    return n;
}

void cluster_block_store::persist(const engine::block_hash& hash, const engine::block_hash& parent,
                                  std::span<const engine::token_id> tokens, std::span<const uint8_t> page_bytes) {
    local_.blocks().persist(hash, parent, tokens, page_bytes);
    {
        std::lock_guard lk(mu_);
        if (queue_.size() >= max_queue_) {
            ++counters_.upload_dropped;
            return;
        }
        queue_.push_back(hash);
        ++n_enqueued_;
    }
    cv_.notify_all();
}

void cluster_block_store::wait_persisted() { local_.blocks().wait_persisted(); }

void cluster_block_store::persist_summary(const engine::block_hash& hash, std::span<const uint8_t> bytes) {
    local_.blocks().persist_summary(hash, bytes);
}

size_t cluster_block_store::load_summaries(std::span<const engine::block_hash> hashes,
                                           std::span<const std::span<uint8_t>> outs, std::span<uint8_t> ok) {
    return local_.blocks().load_summaries(hashes, outs, ok);
}

void cluster_block_store::upload_one(const engine::block_hash& hash) {
    bool skipped = tier_.has(hash), failed = false;
    if (!skipped) {
        local_.blocks().wait_persisted();  // the local write-behind has written it by now
        auto value = local_.raw_block(hash);
        failed = !value || !tier_.put(hash, *value).ok();
    }
    std::lock_guard lk(mu_);
    if (skipped)
        ++counters_.upload_skipped;
    else if (failed)
        ++counters_.upload_failed;
    else
        ++counters_.uploads;
}

void cluster_block_store::upload_loop() {
    std::unique_lock lk(mu_);
    for (;;) {
        cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything is uploaded
        engine::block_hash h = queue_.front();
        queue_.pop_front();
        lk.unlock();
        upload_one(h);
        lk.lock();
        ++n_done_;
        cv_.notify_all();
    }
}

void cluster_block_store::flush_uploads() {
    std::unique_lock lk(mu_);
    const uint64_t target = n_enqueued_;
    cv_.wait(lk, [&] { return n_done_ >= target; });
}

cluster_block_counters cluster_block_store::counters() const {
    std::lock_guard lk(mu_);
    return counters_;
}

}  // namespace mnemos::cluster

// block_store_i's defaults and memory_block_store: the in-process block store (engine/block_store.h).
#include "engine/block_store.h"

#include <algorithm>
#include <cstring>

namespace mnemos::engine {

// ---------------------------------------------------------------------------
// block stores
// ---------------------------------------------------------------------------

block_store_i::~block_store_i() = default;

size_t block_store_i::load_many(std::span<const block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                                std::span<uint8_t> ok) {
    size_t n_ok = 0;
    for (size_t i = 0; i < hashes.size(); ++i) {
        ok[i] = load(hashes[i], outs[i]) ? 1 : 0;
        n_ok += ok[i];
    }
    return n_ok;
}

bool memory_block_store::load(const block_hash& hash, std::span<uint8_t> out) {
    ++n_loads_;
    auto it = blocks_.find(hash);
    if (it == blocks_.end()) return false;
    const entry& e = it->second;
    if (e.bytes.size() != out.size()) return false;
    if (sha256::hash(e.bytes.data(), e.bytes.size()) != e.checksum) return false;
    std::memcpy(out.data(), e.bytes.data(), out.size());
    return true;
}

void memory_block_store::persist(const block_hash& hash, const block_hash& parent, std::span<const token_id> tokens,
                                 std::span<const uint8_t> page_bytes) {
    ++n_persists_;
    entry e;
    e.parent = parent;
    e.tokens.assign(tokens.begin(), tokens.end());
    e.bytes.assign(page_bytes.begin(), page_bytes.end());
    e.checksum = sha256::hash(e.bytes.data(), e.bytes.size());
    blocks_[hash] = std::move(e);
}

void block_store_i::persist_summary(const block_hash&, std::span<const uint8_t>) {}

size_t block_store_i::load_summaries(std::span<const block_hash>, std::span<const std::span<uint8_t>>,
                                     std::span<uint8_t> ok) {
    std::fill(ok.begin(), ok.end(), uint8_t(0));
    return 0;
}

void memory_block_store::persist_summary(const block_hash& hash, std::span<const uint8_t> bytes) {
    summaries_[hash].assign(bytes.begin(), bytes.end());
}

size_t memory_block_store::load_summaries(std::span<const block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                                          std::span<uint8_t> ok) {
    size_t n = 0;
    for (size_t i = 0; i < hashes.size(); ++i) {
        auto it = summaries_.find(hashes[i]);
        ok[i] = it != summaries_.end() && it->second.size() == outs[i].size();
        if (!ok[i]) continue;
        std::memcpy(outs[i].data(), it->second.data(), outs[i].size());
        ++n;
    }
    return n;
}

const memory_block_store::entry* memory_block_store::find(const block_hash& hash) const {
    auto it = blocks_.find(hash);
    return it == blocks_.end() ? nullptr : &it->second;
}

bool memory_block_store::corrupt(const block_hash& hash) {
    auto it = blocks_.find(hash);
    if (it == blocks_.end()) return false;
    if (it->second.bytes.empty()) {
        it->second.checksum[0] ^= 1;
    } else {
        it->second.bytes[it->second.bytes.size() / 2] ^= 0x5a;
    }
    return true;
}

}  // namespace mnemos::engine

#pragma once
// Small id types shared across the engine.
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>

namespace mnemos::engine {

using token_id = int32_t;  // index into the model's vocabulary
using seq_id = int64_t;    // one sequence (request) in the scheduler
using page_idx = int32_t;  // index of a page in the KV pool

// 32-byte content hash of a KV block: H(model fingerprint / parent hash, tokens).
struct block_hash {
    std::array<uint8_t, 32> bytes{};
    bool operator==(const block_hash&) const = default;
    bool is_zero() const {
        for (uint8_t b : bytes)
            if (b) return false;
        return true;
    }
};

// Who may reuse a prompt's KV blocks (prefix-cache isolation; README "Threat model"). A block wholly inside
// the first n_shared tokens is hashed as usual, so every sequence with those tokens shares it (e.g. a game's
// rules). Every later block has salt mixed into its chain (kv_cache::scoped_hash), so only sequences with the
// same salt (one principal's) find it: another principal can neither reuse it nor learn that it is cached.
// An all-zero salt: no isolation (every block shared, the default).
struct cache_scope {
    block_hash salt{};
    int32_t n_shared = 0;
};

struct block_hash_hasher {
    size_t operator()(const block_hash& h) const {
        size_t v;
        std::memcpy(&v, h.bytes.data(), sizeof v);
        return v;
    }
};

}  // namespace mnemos::engine

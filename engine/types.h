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

struct block_hash_hasher {
    size_t operator()(const block_hash& h) const {
        size_t v;
        std::memcpy(&v, h.bytes.data(), sizeof v);
        return v;
    }
};

}  // namespace mnemos::engine

#pragma once
// SHA-256 (FIPS 180-4), self-contained. Used for content-addressed KV block
// hashes (engine/kv_cache.h) and block checksums. Not constant-time; not meant
// for secrets.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mnemos::engine {

using sha256_digest = std::array<uint8_t, 32>;

// Incremental hasher: update() any number of times, then finish() once.
class sha256 {
  public:
    sha256() { reset(); }

    // Starts a new message (the state after construction).
    void reset();
    // Appends n bytes of message. Never fails; messages up to 2^61 - 1 bytes.
    void update(const void* data, size_t n);
    void update(std::span<const uint8_t> bytes) { update(bytes.data(), bytes.size()); }
    void update(std::string_view s) { update(s.data(), s.size()); }
    // Pads, returns the digest and resets the hasher for a new message.
    sha256_digest finish();

    // One-shot digests.
    static sha256_digest hash(const void* data, size_t n);
    static sha256_digest hash(std::string_view s) { return hash(s.data(), s.size()); }

  private:
    void compress(const uint8_t* block);

    std::array<uint32_t, 8> state_{};   // H0..H7 of the message so far
    std::array<uint8_t, 64> buffer_{};  // bytes not yet compressed (a partial block)
    size_t n_buffered_ = 0;             // how many of buffer_ are valid
    uint64_t n_bytes_ = 0;              // message length so far (for the padding)
};

// Lower-case hex of any byte string ("ba7816bf..."), for logs and tests.
std::string to_hex(std::span<const uint8_t> bytes);

}  // namespace mnemos::engine

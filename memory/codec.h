#pragma once
// The on-disk encoding of one KV block (a value of family kv, see
// memory/store.h). Little-endian:
//
//   offset  size          field
//   0       4             magic "MNKV"
//   4       2             format version (1)
//   6       1             codec (kv_codec)
//   7       1             reserved (0)
//   8       4             n_tokens: tokens in the block (the pool's page size)
//   12      4             group: int8 elements per scale (0 for fp16)
//   16      8             raw_bytes: decoded page bytes (f16, the pool layout)
//   24      8             written_ms: Unix ms when encoded (garbage collection age)
//   32      32            parent block hash (the chain link)
//   64      8             payload_bytes
//   72      4 * n_tokens  tokens (int32)
//   ..      payload       fp16: the page bytes; int8: f32 scales [raw/2/group], then int8 [raw/2]
//   end-4   4             CRC-32C of the block's hash (the key) followed by every byte above
//
// The checksum covers the key, so a value stored under the wrong hash fails
// too. Decoding checks everything: magic, version, codec, sizes, checksum.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "engine/types.h"
#include "memory/store.h"

namespace mnemos::memory {

inline constexpr uint16_t block_format_version = 1;
inline constexpr size_t block_header_bytes = 72;

struct block_info {
    kv_codec codec = kv_codec::fp16;
    uint32_t n_tokens = 0;
    uint32_t group = 0;
    uint64_t raw_bytes = 0;
    int64_t written_ms = 0;
    engine::block_hash parent;
    std::vector<engine::token_id> tokens;
};

// CRC-32C (Castagnoli), hardware-accelerated with SSE4.2 when available.
// crc32c(b, crc32c(a)) == crc32c(a || b).
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

// Encodes a block. page is the f16 page bytes (even length). For int8, group
// elements share a scale; it must divide page.size() / 2 (else 64 is used, and
// if that does not divide either, 1). Never fails.
std::string encode_block(kv_codec codec, int32_t group, const engine::block_hash& hash,
                         const engine::block_hash& parent, std::span<const engine::token_id> tokens,
                         std::span<const uint8_t> page, int64_t written_ms);

// Parses and verifies the header and checksum of value (stored under hash)
// without decoding the payload. Errors: corrupt (what failed).
result<block_info> inspect_block(const engine::block_hash& hash, std::string_view value);

// Verifies value and decodes its payload into out (f16 page bytes); out.size()
// must equal the block's raw_bytes. Errors: corrupt (bad magic / version /
// codec / sizes / checksum), invalid_argument (out has another size); out's
// contents are unspecified then.
status decode_block(const engine::block_hash& hash, std::string_view value, std::span<uint8_t> out,
                    block_info* info = nullptr);

// Encoded size of a block of raw_bytes with n_tokens tokens.
size_t encoded_block_bytes(kv_codec codec, int32_t group, size_t raw_bytes, size_t n_tokens);

}  // namespace mnemos::memory

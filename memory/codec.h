#pragma once
// The on-disk encoding of one KV block (a value of family kv, see
// memory/store.h). Little-endian:
//
//   offset  size          field
//   0       4             magic "MNKV"
//   4       2             format version (1 or 2; new blocks are 2, see below)
//   6       1             codec (kv_codec)
//   7       1             reserved (0)
//   8       4             n_tokens: tokens in the block (the pool's page size)
//   12      4             group: v1 int8: elements per scale; v2 int8: kv_dim; 0 for fp16
//   16      8             raw_bytes: decoded page bytes (f16, the pool layout)
//   24      8             written_ms: Unix ms when encoded (garbage collection age)
//   32      32            parent block hash (the chain link)
//   64      8             payload_bytes
//   72      4 * n_tokens  tokens (int32)
//   ..      payload       fp16: the page bytes; int8: see below
//   end-4   4             CRC-32C of the block's hash (the key) followed by every byte above
//
// int8 payloads. The page is the pool's layout (engine/kv_cache.h): per layer,
// K [n_tokens][kv_dim] then V [n_tokens][kv_dim], f16.
//
//   version 1 (read only, and written where version 2 does not fit): symmetric,
//     f32 scales [raw/2/group], then int8 [raw/2] in page order; element i is
//     q_i * s_(i / group), s = max|group| / 127.
//     Error: |x - x'| <= max|group| / 254, plus f16 rounding of x'.
//     Per token row (group = kv_dim) this flattens K's outlier channels (as
//     trained qwen2 models' k biases make): every channel gets the outlier's step.
//   version 2 (KIVI-like): K per channel (one range per channel over the
//     block's n_tokens tokens), V per token (one range per row). Asymmetric:
//     each range stores f16 lo = min x (exact: x is f16) and f16 step
//     s = (max - min) / 255 rounded up to f16; element x' = lo + q * s with q
//     uint8. Payload: for each layer, K ranges [kv_dim] then V ranges
//     [n_tokens], each (lo, s) as 2 x f16; then uint8 q [raw/2] in page order.
//     Error, with max and min over the range the element belongs to (its K
//     channel or its V row):
//       |x - x'| <= s / 2 + 2^-11 |x'| <= (max - min) / 510 * (1 + 2^-10) + 2^-25 + 2^-11 |x'|
//     (step rounded up to f16: relative 2^-10, or the f16 subnormal step
//     2^-24; then f16 rounding of x'). A constant range is exact. An outlier
//     channel of K only widens its own channel's step, not its rows'.
//     Size: per layer and token 2 * kv_dim + kv_dim / 4 + 4 bytes (kv_dim / 4:
//     K ranges shared by the 16 tokens of a page), fp16 4 * kv_dim: 0.5625 +
//     1 / kv_dim of fp16, plus header and token ids.
//     Needs group == kv_dim with raw/2 a multiple of 2 * n_tokens * kv_dim;
//     otherwise encode_block writes version 1.
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

// The version encode_block writes; decoding accepts 1 and 2.
inline constexpr uint16_t block_format_version = 2;
inline constexpr size_t block_header_bytes = 72;

struct block_info {
    uint16_t version = block_format_version;
    kv_codec codec = kv_codec::fp16;
    uint32_t n_tokens = 0;
    uint32_t group = 0;
    uint64_t raw_bytes = 0;
    int64_t written_ms = 0;
    engine::block_hash parent;
    std::vector<engine::token_id> tokens;
};

// CRC-32C (Castagnoli), hardware-accelerated with SSE4.2 when available.
// A page summary (sparse attention; engine/block_store.h) as stored beside its block:
//   offset  size  field
//   0       4     magic "MSUM"
//   4       2     format version (1)
//   6       2     reserved (0)
//   8       4     payload bytes
//   12      4     CRC-32C of the 32-byte block hash, then the payload
//   16      n     payload (the engine's bytes, opaque here)
std::string encode_summary(const engine::block_hash& hash, std::span<const uint8_t> payload);
// True and out filled when v is a valid summary of hash whose payload is exactly out.size() bytes.
bool decode_summary(const engine::block_hash& hash, std::string_view v, std::span<uint8_t> out);

// crc32c(b, crc32c(a)) == crc32c(a || b).
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

// Encodes a block. page is the f16 page bytes (even length), tokens the
// block's tokens (n_tokens of the layout). For int8, group is the model's
// kv_dim: version 2 (K per channel, V per token) when it fits the layout, else
// version 1 with group elements per scale (group must divide page.size() / 2,
// else 64 is used, and if that does not divide either, 1). version = 1 forces
// the old encoding (tests, compatibility). Never fails.
std::string encode_block(kv_codec codec, int32_t group, const engine::block_hash& hash,
                         const engine::block_hash& parent, std::span<const engine::token_id> tokens,
                         std::span<const uint8_t> page, int64_t written_ms, uint16_t version = block_format_version);

// Parses and verifies the header and checksum of value (stored under hash)
// without decoding the payload. Errors: corrupt (what failed).
result<block_info> inspect_block(const engine::block_hash& hash, std::string_view value);

// Verifies value and decodes its payload into out (f16 page bytes); out.size()
// must equal the block's raw_bytes. Errors: corrupt (bad magic / version /
// codec / sizes / checksum), invalid_argument (out has another size); out's
// contents are unspecified then.
status decode_block(const engine::block_hash& hash, std::string_view value, std::span<uint8_t> out,
                    block_info* info = nullptr);

// Encoded size of a block of raw_bytes with n_tokens tokens, as encode_block
// writes it with the same arguments.
size_t encoded_block_bytes(kv_codec codec, int32_t group, size_t raw_bytes, size_t n_tokens,
                           uint16_t version = block_format_version);

}  // namespace mnemos::memory

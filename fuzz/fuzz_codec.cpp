// The KV block codec and page summaries (memory/codec.h). Byte 0 picks the mode:
//   0: arbitrary bytes as a stored block value (byte 1 bit 0: fix the checksum up first, so that the
//      header and payload checks behind it are reached): inspect_block, decode_block;
//   1: a round trip: codec, group, n_tokens and version from the input, then the page bytes:
//      encode_block must give encoded_block_bytes() bytes that inspect and decode back, fp16
//      exactly and int8 within max|page| / 254 (plus f16 rounding) for finite pages;
//   2: arbitrary bytes as a stored summary (checksum fixed up when asked), then a summary round trip;
//   3: crc32c(b, crc32c(a)) == crc32c(a || b) at a split chosen by the input.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "memory/codec.h"

using namespace mnemos;
using memory::kv_codec;

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_codec: %s\n", what);
    std::abort();
}

engine::block_hash hash_from(const uint8_t* p, size_t n) {
    engine::block_hash h;
    for (size_t i = 0; i < h.bytes.size() && i < n; ++i) h.bytes[i] = p[i];
    return h;
}

void put_crc(std::string& v, uint32_t crc) { std::memcpy(v.data() + v.size() - 4, &crc, 4); }

void decode_any(const engine::block_hash& h, std::string v, bool fix_crc) {
    if (fix_crc && v.size() >= 4) {
        put_crc(v, memory::crc32c(v.data(), v.size() - 4, memory::crc32c(h.bytes.data(), h.bytes.size())));
    }
    auto info = memory::inspect_block(h, v);
    if (!info) return;
    // A header that passed cannot describe more page bytes than a few per stored byte.
    if (info->raw_bytes > 8 * v.size() + 64) fail("inspect_block accepted raw_bytes beyond the value's size");
    if (info->tokens.size() != info->n_tokens) fail("inspect_block: token count differs from n_tokens");
    std::vector<uint8_t> out(info->raw_bytes);
    memory::block_info again;
    if (!memory::decode_block(h, v, out, &again).ok()) fail("inspect_block accepted what decode_block refuses");
    std::vector<uint8_t> wrong(info->raw_bytes + 2);
    if (memory::decode_block(h, v, wrong).ok()) fail("decode_block accepted an output of the wrong size");
}

void round_trip(const uint8_t* data, size_t size) {
    if (size < 8) return;
    const kv_codec codec = data[0] & 1 ? kv_codec::int8 : kv_codec::fp16;
    const uint16_t version = data[0] & 2 ? 1 : 2;
    const size_t n_tokens = 1 + data[1] % 16;
    // Small groups and kv_dims: the pool's shapes (v2 needs page elements = layers x 2 x n_tokens x kv_dim).
    const int32_t group = int32_t(data[2] % 65) - (data[0] & 4 ? 1 : 0);
    const int64_t written_ms = int64_t(data[3]) << 32 | data[4];
    const engine::block_hash h = hash_from(data, size), parent = hash_from(data + 5, size - 5);
    std::vector<engine::token_id> tokens(n_tokens);
    for (size_t i = 0; i < n_tokens; ++i) tokens[i] = engine::token_id(data[5 + i % 3] * 131 + i);
    std::span<const uint8_t> page(data + 8, (size - 8) & ~size_t(1));

    const std::string v = memory::encode_block(codec, group, h, parent, tokens, page, written_ms, version);
    if (v.size() != memory::encoded_block_bytes(codec, group, page.size(), n_tokens, version))
        fail("encoded size differs from encoded_block_bytes");
    auto info = memory::inspect_block(h, v);
    if (!info) fail("inspect_block refuses a fresh block");
    if (info->codec != codec || info->n_tokens != n_tokens || info->raw_bytes != page.size() ||
        info->written_ms != written_ms || !(info->parent == parent) || info->tokens != tokens)
        fail("inspect_block reads other fields than were written");
    std::vector<uint8_t> out(page.size());
    if (!memory::decode_block(h, v, out).ok()) fail("decode_block refuses a fresh block");
    if (codec == kv_codec::fp16) {
        if (!std::equal(out.begin(), out.end(), page.begin())) fail("fp16 is not exact");
    } else {
        const size_t n = page.size() / 2;
        std::vector<float> x(n), y(n);
        float max_abs = 0;
        bool finite = true;
        for (size_t i = 0; i < n; ++i) {
            uint16_t a, b;
            std::memcpy(&a, page.data() + 2 * i, 2);
            std::memcpy(&b, out.data() + 2 * i, 2);
            x[i] = kernels::fp16_to_fp32(a);
            y[i] = kernels::fp16_to_fp32(b);
            finite = finite && std::isfinite(x[i]);
            max_abs = std::max(max_abs, std::fabs(x[i]));
        }
        // Away from the top of f16's range (where lo + 255 s may round past 65504).
        if (finite && max_abs < 30000) {
            for (size_t i = 0; i < n; ++i) {
                const double bound = max_abs / 254.0 * (1 + 1.0 / 512) + 1e-7 + std::fabs(y[i]) / 1024.0;
                if (!(std::fabs(double(x[i]) - y[i]) <= bound)) {
                    std::fprintf(stderr, "element %zu: %g decoded as %g (max|x| %g, version %u)\n", i, x[i], y[i],
                                 max_abs, unsigned(info->version));
                    fail("int8 error beyond its bound");
                }
            }
        }
    }
    // Any flipped byte is detected.
    if (!v.empty()) {
        std::string bad = v;
        bad[size_t(data[3]) * 7919 % bad.size()] ^= char(1 + data[4] % 255);
        if (memory::inspect_block(h, bad).ok()) fail("a flipped byte passed inspect_block");
    }
}

void summary(const engine::block_hash& h, std::string v, bool fix_crc) {
    if (fix_crc && v.size() >= 16) {
        const uint32_t crc = memory::crc32c(v.data() + 16, v.size() - 16, memory::crc32c(h.bytes.data(), 32));
        std::memcpy(v.data() + 12, &crc, 4);
    }
    uint32_t n = 0;
    if (v.size() >= 12) std::memcpy(&n, v.data() + 8, 4);
    std::vector<uint8_t> out(std::min<size_t>(n, v.size()));
    volatile bool ok = memory::decode_summary(h, v, out);
    (void)ok;
    const std::span<const uint8_t> payload(reinterpret_cast<const uint8_t*>(v.data()), v.size());
    const std::string enc = memory::encode_summary(h, payload);
    std::vector<uint8_t> back(payload.size());
    if (!memory::decode_summary(h, enc, back) || !std::equal(back.begin(), back.end(), payload.begin()))
        fail("summary round trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const uint8_t mode = data[0] % 4;
    const bool fix = data[1] & 1;
    const engine::block_hash h = hash_from(data + 2, size - 2);
    const std::string rest(reinterpret_cast<const char*>(data + 2), size - 2);
    switch (mode) {
        case 0:
            decode_any(h, rest, fix);
            break;
        case 1:
            round_trip(data + 1, size - 1);
            break;
        case 2:
            summary(h, rest, fix);
            break;
        default: {
            const size_t cut = rest.empty() ? 0 : data[1] % (rest.size() + 1);
            const uint32_t whole = memory::crc32c(rest.data(), rest.size());
            const uint32_t split =
                memory::crc32c(rest.data() + cut, rest.size() - cut, memory::crc32c(rest.data(), cut));
            if (whole != split) fail("crc32c is not incremental");
        }
    }
    return 0;
}

#include "cluster/block_tier.h"

#include <cstring>

#include "engine/sha256.h"
#include "memory/codec.h"

namespace mnemos::cluster {

namespace {

constexpr char k_magic[4] = {'M', 'N', 'K', 'B'};
constexpr uint8_t k_version = 1;
constexpr size_t k_manifest_bytes = 24;  // magic 4, version 1, pad 3, size 8, chunks 4, crc 4

struct manifest {
    uint64_t size = 0;      // bytes of the whole value
    uint32_t n_chunks = 0;  // 0: the value follows the manifest inline
    uint32_t crc = 0;       // CRC-32C of the whole value
};

std::string encode_manifest(const manifest& m) {
    std::string out(k_manifest_bytes, '\0');
    std::memcpy(out.data(), k_magic, 4);
    out[4] = char(k_version);
    std::memcpy(out.data() + 8, &m.size, 8);
    std::memcpy(out.data() + 16, &m.n_chunks, 4);
    std::memcpy(out.data() + 20, &m.crc, 4);
    return out;
}

result<manifest> decode_manifest(std::string_view v, const std::string& key) {
    if (v.size() < k_manifest_bytes || std::memcmp(v.data(), k_magic, 4) != 0 || uint8_t(v[4]) != k_version)
        return make_error(errc::corrupt, "block " + key + ": bad manifest");
    manifest m;
    std::memcpy(&m.size, v.data() + 8, 8);
    std::memcpy(&m.n_chunks, v.data() + 16, 4);
    std::memcpy(&m.crc, v.data() + 20, 4);
    return m;
}

status verify(const manifest& m, std::string_view value, const std::string& key) {
    if (value.size() != m.size)
        return make_error(errc::corrupt, "block " + key + ": " + std::to_string(value.size()) +
                                             " bytes, manifest says " + std::to_string(m.size));
    if (memory::crc32c(value.data(), value.size()) != m.crc)
        return make_error(errc::corrupt, "block " + key + ": checksum mismatch");
    return {};
}

}  // namespace

std::string block_tier::key_of(const engine::block_hash& hash) { return engine::to_hex(hash.bytes); }

result<std::unique_ptr<block_tier>> block_tier::open(client& c, const block_tier_options& options) {
    size_t limit = size_t(c.max_payload());
    size_t chunk = options.chunk_bytes ? options.chunk_bytes : limit - 4096;
    if (chunk < 1024 || chunk + k_manifest_bytes > limit)
        return make_error(errc::invalid_argument, "block chunk size " + std::to_string(chunk) +
                                                      " must be 1 KiB to the payload limit (" + std::to_string(limit) +
                                                      ") less 24");
    bucket_options bo;
    bo.name = options.bucket;
    bo.replicas = options.replicas;
    bo.max_value_size = int32_t(chunk + k_manifest_bytes);
    auto b = kv_bucket::open(c, bo);
    if (!b) return b.error();
    return std::unique_ptr<block_tier>(new block_tier(std::move(*b), chunk));
}

status block_tier::put(const engine::block_hash& hash, std::string_view value) {
    if (value.empty()) return make_error(errc::invalid_argument, "empty block value");
    const std::string key = key_of(hash);
    manifest m{value.size(), 0, memory::crc32c(value.data(), value.size())};
    if (value.size() + k_manifest_bytes <= chunk_bytes_) {
        auto r = bucket_->put(key, encode_manifest(m) + std::string(value));
        return r ? status{} : r.error();
    }
    m.n_chunks = uint32_t((value.size() + chunk_bytes_ - 1) / chunk_bytes_);
    for (uint32_t i = 0; i < m.n_chunks; ++i) {
        auto r = bucket_->put(key + "." + std::to_string(i), value.substr(size_t(i) * chunk_bytes_, chunk_bytes_));
        if (!r) return r.error();
    }
    auto r = bucket_->put(key, encode_manifest(m));
    return r ? status{} : r.error();
}

result<std::string> block_tier::get(const engine::block_hash& hash) {
    const std::string key = key_of(hash);
    auto head = bucket_->get(key);
    if (!head) return head.error();
    auto m = decode_manifest(head->value, key);
    if (!m) return m.error();
    std::string value;
    if (m->n_chunks == 0) {
        value = head->value.substr(k_manifest_bytes);
    } else {
        value.reserve(m->size);
        for (uint32_t i = 0; i < m->n_chunks; ++i) {
            auto part = bucket_->get(key + "." + std::to_string(i));
            if (!part) {
                if (part.error().code() == errc::not_found)
                    return make_error(errc::corrupt, "block " + key + ": chunk " + std::to_string(i) + " of " +
                                                         std::to_string(m->n_chunks) + " is missing");
                return part.error();
            }
            value += part->value;
        }
    }
    if (auto st = verify(*m, value, key); !st.ok()) return st;
    return value;
}

bool block_tier::has(const engine::block_hash& hash) { return bool(bucket_->get(key_of(hash))); }

}  // namespace mnemos::cluster

#pragma once
// Helpers shared by the memory tests: temporary database directories and
// deterministic page contents.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/types.h"
#include "kernels/cpu/kernels.h"
#include "memory/store.h"

namespace mnemos::test {

// A fresh directory under /tmp, removed when the object dies.
struct temp_dir {
    std::string path;
    explicit temp_dir(const std::string& name) {
        static int counter = 0;
        path = (std::filesystem::temp_directory_path() /
                ("mnemos-mem-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + name))
                   .string();
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string sub(const std::string& name) const { return path + "/" + name; }
};

// n f16 values drawn from N(0, sigma) with a seed, as page bytes.
inline std::vector<uint8_t> random_page(size_t n_elems, uint32_t seed, float sigma = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, sigma);
    std::vector<uint8_t> out(n_elems * 2);
    for (size_t i = 0; i < n_elems; ++i) {
        const uint16_t h = kernels::fp32_to_fp16(d(rng));
        std::memcpy(out.data() + 2 * i, &h, 2);
    }
    return out;
}

inline engine::block_hash hash_of(uint32_t i) {
    engine::block_hash h;
    for (int k = 0; k < 32; ++k) h.bytes[k] = uint8_t((i * 2654435761u) >> ((k % 4) * 8)) ^ uint8_t(k * 37);
    std::memcpy(h.bytes.data(), &i, 4);
    return h;
}

// The 16 (or n) tokens of test block i: i * 100 + k.
inline std::vector<engine::token_id> tokens_of(uint32_t i, int n = 16) {
    std::vector<engine::token_id> t(static_cast<size_t>(n));
    for (int k = 0; k < n; ++k) t[size_t(k)] = engine::token_id(i * 100 + uint32_t(k));
    return t;
}

// Opens (creating) a store at path with the given block codec; fails the test on error.
inline std::unique_ptr<memory::store> open_store(const std::string& path,
                                                 memory::kv_codec codec = memory::kv_codec::fp16, int32_t group = 0) {
    memory::store_options o;
    o.path = path;
    o.codec = codec;
    o.int8_group = group;
    auto s = memory::store::open(o);
    INFO((s.ok() ? std::string() : s.error().to_string()));
    REQUIRE(s.ok());
    return std::move(s.value());
}

}  // namespace mnemos::test

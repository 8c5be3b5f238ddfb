#pragma once
// Helpers shared by the memory tests: temporary database directories and
// deterministic page contents.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <utility>
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

// A child process: this test binary re-executed to run only the hidden test case `tag`, with `env` set and a pipe
// whose write end's descriptor number is in the variable `fd_var` (the child reports through it). Returns the pid
// and the read end. quiet: the child's stdout goes to /dev/null.
struct test_child {
    pid_t pid = -1;
    int read_fd = -1;
};
inline test_child spawn_test_child(const char* tag, const char* fd_var,
                                   const std::vector<std::pair<std::string, std::string>>& env, bool quiet = false) {
    int p[2];
    REQUIRE(::pipe(p) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(p[0]);
        if (quiet) ::dup2(::open("/dev/null", O_WRONLY), 1);
        for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
        ::setenv(fd_var, std::to_string(p[1]).c_str(), 1);
        char exe[] = "/proc/self/exe";
        std::string t = tag;
        char* argv[] = {exe, t.data(), nullptr};
        ::execv(exe, argv);
        ::_exit(127);
    }
    ::close(p[1]);
    return {pid, p[0]};
}

}  // namespace mnemos::test

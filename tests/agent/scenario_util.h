#pragma once
// Helpers shared by the scenario and play tests: where scenarios/ is, a
// temporary directory removed at the end of a test, and the tiny play model.
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "agent/core/runtime.h"
#include "engine/model.h"
#include "tests/support/tiny_model.h"

namespace mnemos::test_agent {

// The repository's scenarios/ (MNEMOS_SOURCE_DIR, a compile definition of every test binary; not __FILE__,
// which ccache's base_dir makes relative to the build directory).
inline std::filesystem::path scenarios_dir() { return std::filesystem::path(MNEMOS_SOURCE_DIR) / "scenarios"; }

// A fresh directory under the system temp dir, named prefix + random hex; removed on destruction.
struct temp_dir {
    std::filesystem::path path;
    explicit temp_dir(const std::string& prefix) {
        path = std::filesystem::temp_directory_path() / (prefix + agent::random_hex(8));
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

// Writes dir/tiny.gguf: a 1-layer gpt2-tokenizer model small enough to play whole scenarios quickly.
inline std::string write_model(const std::filesystem::path& dir, int32_t n_ctx = 1024) {
    const std::string path = (dir / "tiny.gguf").string();
    test::tiny_model_options o;
    o.tokenizer = "gpt2";
    o.n_embd = 64;
    o.n_ff = 128;
    o.n_ctx = n_ctx;
    REQUIRE(test::write_tiny_model(path, o));
    return path;
}

inline std::shared_ptr<const engine::model> load_model(const std::string& path) {
    auto loaded = engine::model::load(path);
    REQUIRE(loaded.ok());
    return std::shared_ptr<const engine::model>(std::move(loaded.value()));
}

}  // namespace mnemos::test_agent

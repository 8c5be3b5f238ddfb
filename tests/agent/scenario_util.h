#pragma once
// Helpers shared by the scenario and play tests: where scenarios/ is, and a
// temporary directory removed at the end of a test.
#include <filesystem>
#include <string>
#include <system_error>

#include "agent/runtime.h"

namespace mnemos::test_agent {

// tests/agent/*.cpp -> scenarios/ (no compile definition needed).
inline std::filesystem::path scenarios_dir() {
    std::filesystem::path p = std::filesystem::path(__FILE__).parent_path() / ".." / ".." / "scenarios";
    if (!std::filesystem::exists(p)) p = std::filesystem::current_path() / "scenarios";
    return p;
}

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

}  // namespace mnemos::test_agent

#pragma once
// Tests that read what the server logs: stderr captured into a file.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "agent/core/util.h"

namespace mnemos::test_agent {

// Redirects stderr (fd 2) to a file while alive; text() reads what was written.
struct stderr_capture {
    std::filesystem::path path;
    int saved = -1;
    stderr_capture() {
        path = std::filesystem::temp_directory_path() / ("mnemos_stderr_" + agent::random_hex(8));
        std::fflush(stderr);
        saved = ::dup(2);
        FILE* f = std::fopen(path.c_str(), "w");
        ::dup2(::fileno(f), 2);
        std::fclose(f);
    }
    std::string text() {
        std::fflush(stderr);
        std::ifstream in(path);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    ~stderr_capture() {
        std::fflush(stderr);
        ::dup2(saved, 2);
        ::close(saved);
        std::error_code ec;
        std::filesystem::remove(path, ec);
    }
};

}  // namespace mnemos::test_agent

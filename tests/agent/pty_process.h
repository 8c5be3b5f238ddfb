#pragma once
// A child process in a pseudo-terminal, for the command-line tests (test_cli_*.cpp): what it prints is
// collected, keys are typed into it, signals sent to it.
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

namespace mnemos::test_agent {

// A child process in a pseudo-terminal; what it prints is collected.
struct pty_process {
    pid_t pid = -1;
    int fd = -1;
    std::string out;

    explicit pty_process(std::vector<std::string> args) {
        pid = forkpty(&fd, nullptr, nullptr, nullptr);
        if (pid == 0) {
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(argv[0], argv.data());
            _exit(127);
        }
    }
    ~pty_process() {
        if (pid > 0) kill(pid, SIGKILL), waitpid(pid, nullptr, 0);
        if (fd >= 0) close(fd);
    }
    // Reads until `text` appears after position `from` or the timeout passes; true when it appeared.
    bool wait_for(const std::string& text, size_t from = 0, int timeout_ms = 60000) {
        const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (out.find(text, from) == std::string::npos) {
            if (std::chrono::steady_clock::now() > end) return false;
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;
            char buf[4096];
            const ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0) return out.find(text, from) != std::string::npos;
            out.append(buf, static_cast<size_t>(n));
        }
        return true;
    }
    // Reads until at least n bytes have arrived in all; false on timeout or end of output.
    bool wait_bytes(size_t n, int timeout_ms = 60000) {
        const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (out.size() < n && std::chrono::steady_clock::now() < end) {
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;
            char buf[4096];
            const ssize_t got = read(fd, buf, sizeof buf);
            if (got <= 0) break;
            out.append(buf, static_cast<size_t>(got));
        }
        return out.size() >= n;
    }
    void type(const std::string& s) { REQUIRE(write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size())); }
    int wait_exit() {
        int st = 0;
        waitpid(pid, &st, 0);
        pid = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
};

}  // namespace mnemos::test_agent

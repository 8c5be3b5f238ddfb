// interrupt_guard (agent/cli/interrupt.h).
#include "agent/cli/interrupt.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>

namespace mnemos::cli {

namespace {

std::atomic<int> g_signal{0};  // the pending signal, 0 when none
std::atomic<int> g_count{0};   // signals since the last clear()
struct sigaction g_old_int, g_old_term;

void on_signal(int sig) {
    if (g_count.fetch_add(1) >= 1) {
        constexpr char msg[] = "\nmnemos: second interrupt, exiting now\n";
        (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
        _exit(130);
    }
    g_signal.store(sig);
}

}  // namespace

interrupt_guard::interrupt_guard() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocking read (the chat prompt) returns with EINTR
    sigaction(SIGINT, &sa, &g_old_int);
    sigaction(SIGTERM, &sa, &g_old_term);
}

interrupt_guard::~interrupt_guard() {
    sigaction(SIGINT, &g_old_int, nullptr);
    sigaction(SIGTERM, &g_old_term, nullptr);
}

bool interrupt_guard::raised() { return g_signal.load() != 0; }

void interrupt_guard::clear() {
    g_signal.store(0);
    g_count.store(0);
}

int interrupt_guard::last_signal() { return g_signal.load(); }

namespace {

// Input already read from the descriptor but not consumed: std::cin (synced with stdio) reads through stdin's
// buffer, where a pasted second line waits unseen by poll(). glibc's FILE fields say how much is there.
bool stdin_buffered() { return stdin->_IO_read_ptr < stdin->_IO_read_end; }

}  // namespace

bool interrupt_guard::read_line(std::string& line) {
    while (!raised() && !stdin_buffered()) {
        pollfd p{STDIN_FILENO, POLLIN, 0};
        const int r = ::poll(&p, 1, 100);
        if (r > 0 || (r < 0 && errno != EINTR)) break;  // input, end of input or an error: getline reports it
    }
    if (raised()) return false;
    return static_cast<bool>(std::getline(std::cin, line));
}

}  // namespace mnemos::cli

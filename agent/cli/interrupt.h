#pragma once
// Ctrl-C and SIGTERM for the commands: the first signal only raises a flag the command polls (stop the
// reply, stop the game after its step, flush and close the store); a second one exits at once with
// status 130. Events are synced when appended, so exiting at once still loses no acknowledged event.
#include <cstdint>
#include <string>

namespace mnemos::cli {

class interrupt_guard {
  public:
    // Installs the handlers (SIGINT, SIGTERM) for the guard's lifetime; the previous ones come back after.
    interrupt_guard();
    ~interrupt_guard();
    interrupt_guard(const interrupt_guard&) = delete;
    interrupt_guard& operator=(const interrupt_guard&) = delete;

    // Whether a signal arrived since the last clear(). Async-signal-safe to set; any thread may read.
    static bool raised();
    // Forgets the signal (chat: the reply was stopped; the next Ctrl-C stops the next one).
    static void clear();
    // The signal number last received (SIGINT or SIGTERM), 0 when none.
    static int last_signal();

    // One line of standard input, as std::getline(std::cin) reads it, but false as soon as a signal is raised
    // (the kernel may deliver it to any thread, and then the main thread's read would not be interrupted: the
    // input is polled every 100 ms instead) or at the end of input.
    static bool read_line(std::string& line);
};

}  // namespace mnemos::cli

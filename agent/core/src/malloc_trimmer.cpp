#include "agent/core/malloc_trimmer.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mnemos::agent {

malloc_trimmer::malloc_trimmer(std::chrono::milliseconds interval) {
#if defined(__GLIBC__)
    if (interval.count() > 0) thread_ = std::thread([this, interval] { loop(interval); });
#else
    (void)interval;
#endif
}

malloc_trimmer::~malloc_trimmer() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

int64_t malloc_trimmer::n_trims() const {
    std::lock_guard lk(mu_);
    return n_trims_;
}

void malloc_trimmer::loop(std::chrono::milliseconds interval) {
    std::unique_lock lk(mu_);
    while (!cv_.wait_for(lk, interval, [this] { return stop_; })) {
        lk.unlock();
#if defined(__GLIBC__)
        ::malloc_trim(0);  // walks every arena, releasing its whole free pages (a few ms for this heap size)
#endif
        lk.lock();
        ++n_trims_;
    }
}

}  // namespace mnemos::agent

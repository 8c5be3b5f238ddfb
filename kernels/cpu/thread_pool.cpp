#include "kernels/cpu/thread_pool.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define MNEMOS_PAUSE() _mm_pause()
#else
#define MNEMOS_PAUSE() ((void)0)
#endif

namespace mnemos::kernels {

thread_pool::thread_pool(int n_threads) {
    if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
    n_threads_ = n_threads > 0 ? n_threads : 1;
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

thread_pool::~thread_pool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void thread_pool::worker_loop(int ith) {
    // Generation 0 is the state before any job (the pool is built before run() is
    // called); loading it here instead would race with a job started meanwhile.
    uint32_t seen = 0;
    for (;;) {
        // Spin a little: the next job usually follows within microseconds.
        uint32_t g = seen;
        for (int spin = 0; spin < 20000; ++spin) {
            g = generation_.load(std::memory_order_acquire);
            if (g != seen) break;
            MNEMOS_PAUSE();
        }
        if (g == seen) {
            // Sleep. Bumps happen under mutex_, so checking under it cannot miss one
            // (std::atomic::wait in libstdc++ 12 could lose the destructor's wake-up).
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            g = generation_.load(std::memory_order_acquire);
        }
        seen = g;
        if (stop_.load()) return;
        (*job_)(ith, n_threads_);
        n_pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void thread_pool::run(const std::function<void(int, int)>& fn) {
    if (n_threads_ == 1) {
        fn(0, 1);
        return;
    }
    job_ = &fn;
    n_pending_.store(n_threads_ - 1, std::memory_order_release);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    wake_.notify_all();
    fn(0, n_threads_);
    // Spin briefly, then yield: on a loaded machine the workers may be waiting for a core.
    for (int spin = 0; n_pending_.load(std::memory_order_acquire) != 0; ++spin) {
        if (spin < 4096) MNEMOS_PAUSE();
        else std::this_thread::yield();
    }
    job_ = nullptr;
}

void thread_pool::parallel_for(int64_t n_tasks, const std::function<void(int64_t)>& fn, int64_t grain) {
    if (n_tasks <= 0) return;
    if (grain < 1) grain = 1;
    if (n_threads_ == 1 || n_tasks <= grain) {
        for (int64_t i = 0; i < n_tasks; ++i) fn(i);
        return;
    }
    std::atomic<int64_t> next{0};
    run([&](int, int) {
        for (;;) {
            const int64_t begin = next.fetch_add(grain, std::memory_order_relaxed);
            if (begin >= n_tasks) break;
            const int64_t end = begin + grain < n_tasks ? begin + grain : n_tasks;
            for (int64_t i = begin; i < end; ++i) fn(i);
        }
    });
}

}  // namespace mnemos::kernels

// Fork-join thread pool: parts of a job are claimed with a compare-exchange on
// one (generation, next part) word; see thread_pool.h.
#include "kernels/cpu/thread_pool.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define MNEMOS_PAUSE() _mm_pause()
#else
#define MNEMOS_PAUSE() ((void)0)
#endif

namespace mnemos::kernels {

namespace {

constexpr uint32_t gen_of(uint64_t c) { return static_cast<uint32_t>(c >> 32); }
constexpr uint32_t part_of(uint64_t c) { return static_cast<uint32_t>(c); }

}  // namespace

thread_pool::thread_pool(int n_threads) {
    if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
    n_threads_ = n_threads > 0 ? n_threads : 1;
    // Generation 0 has no parts left to claim (part index >= nth).
    ctl_.store(static_cast<uint64_t>(n_threads_), std::memory_order_relaxed);
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

thread_pool::~thread_pool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_.store(true);
        // A new generation with no parts: wakes everyone, nothing to claim.
        const uint32_t g = gen_of(ctl_.load()) + 1;
        ctl_.store((static_cast<uint64_t>(g) << 32) | static_cast<uint32_t>(n_threads_));
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void thread_pool::work_on(uint32_t gen) {
    const uint32_t nth = static_cast<uint32_t>(n_threads_);
    uint64_t c = ctl_.load(std::memory_order_acquire);
    for (;;) {
        if (gen_of(c) != gen || part_of(c) >= nth) return;
        if (!ctl_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
        // The claim succeeded, so the job of `gen` is still running and job_fn_/job_ctx_ are its own.
        job_fn_(job_ctx_, static_cast<int>(part_of(c)), n_threads_);
        n_done_.fetch_add(1, std::memory_order_acq_rel);
        c = ctl_.load(std::memory_order_acquire);
    }
}

void thread_pool::worker_loop() {
    uint32_t seen = 0;
    for (;;) {
        // Spin a little: the next job usually follows within microseconds.
        uint32_t g = seen;
        for (int spin = 0; spin < 20000; ++spin) {
            g = gen_of(ctl_.load(std::memory_order_acquire));
            if (g != seen) break;
            MNEMOS_PAUSE();
        }
        if (g == seen) {
            // Sleep. Bumps happen under mutex_, so checking under it cannot miss one.
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return gen_of(ctl_.load(std::memory_order_acquire)) != seen; });
            g = gen_of(ctl_.load(std::memory_order_acquire));
        }
        seen = g;
        if (stop_.load()) return;
        work_on(g);
    }
}

void thread_pool::run_impl(job_fn fn, void* ctx) {
    if (n_threads_ == 1) {
        fn(ctx, 0, 1);
        return;
    }
    job_fn_ = fn;
    job_ctx_ = ctx;
    n_done_.store(0, std::memory_order_relaxed);
    uint32_t gen;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        gen = gen_of(ctl_.load(std::memory_order_relaxed)) + 1;
        // Part 0 is the caller's; workers claim from 1.
        ctl_.store((static_cast<uint64_t>(gen) << 32) | 1u, std::memory_order_release);
    }
    wake_.notify_all();
    fn(ctx, 0, n_threads_);
    n_done_.fetch_add(1, std::memory_order_acq_rel);
    work_on(gen);  // parts no worker has claimed yet
    // Wait for the parts workers are still running.
    for (int spin = 0; n_done_.load(std::memory_order_acquire) != n_threads_; ++spin) {
        if (spin < 4096)
            MNEMOS_PAUSE();
        else
            std::this_thread::yield();
    }
}

}  // namespace mnemos::kernels

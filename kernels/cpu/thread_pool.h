#pragma once
// A small fork-join pool for the CPU kernels. The calling thread takes part in
// every job, so thread_pool(1) runs everything inline. Workers spin briefly
// between jobs (decode steps come every few milliseconds) and then sleep.
//
// The nth parts of a job are claimed, not assigned: each thread (the caller
// first) takes the next unclaimed part index until none is left. A worker that
// has not woken up by the time the caller runs out of its own work does not
// hold the job back: the caller runs that worker's part itself. On a machine
// with more busy threads than cores this keeps one descheduled worker from
// stalling every matmul for a whole time slice.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace mnemos::kernels {

class thread_pool {
  public:
    // n_threads counts the caller; 0 means std::thread::hardware_concurrency().
    explicit thread_pool(int n_threads = 0);
    ~thread_pool();
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;

    int n_threads() const { return n_threads_; }

    // Runs fn(ith, nth) once for each ith in [0, nth), nth = n_threads(), and
    // returns when all have finished. Each part runs on one thread, but one
    // thread may run several parts one after the other (ith indexes per-part
    // scratch safely; it is not a thread id). Not reentrant. fn is called by
    // reference and never copied or allocated.
    template <class F>
    void run(F&& fn) {
        using fn_t = std::remove_reference_t<F>;
        run_impl([](void* ctx, int ith, int nth) { (*static_cast<fn_t*>(ctx))(ith, nth); },
                 const_cast<void*>(static_cast<const void*>(&fn)));
    }

    // Runs fn(task_idx) for every task_idx in [0, n_tasks), handing tasks out
    // dynamically in chunks of `grain`; returns when all are done.
    template <class F>
    void parallel_for(int64_t n_tasks, F&& fn, int64_t grain = 1) {
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

  private:
    using job_fn = void (*)(void* ctx, int ith, int nth);

    void run_impl(job_fn fn, void* ctx);
    // Claims and runs parts of the job of generation gen until none is left.
    void work_on(uint32_t gen);
    void worker_loop();

    int n_threads_ = 1;
    std::vector<std::thread> workers_;
    job_fn job_fn_ = nullptr;  // the job of the current generation
    void* job_ctx_ = nullptr;
    // (generation << 32) | next part index to claim. A new generation starts a job; claims are
    // compare-exchanges on the whole word, so a late worker can never claim a part of a newer job.
    alignas(64) std::atomic<uint64_t> ctl_{0};
    alignas(64) std::atomic<int> n_done_{0};  // parts of the current job that have finished
    std::atomic<bool> stop_{false};
    std::mutex mutex_;              // guards generation bumps against sleeping workers (no lost wake-ups)
    std::condition_variable wake_;  // sleeping workers wait here for a new generation
};

}  // namespace mnemos::kernels

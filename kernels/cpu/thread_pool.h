#pragma once
// A small fork-join pool for the CPU kernels. The calling thread takes part in
// every job, so thread_pool(1) runs everything inline. Workers spin briefly
// between jobs (decode steps come every few milliseconds) and then sleep.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
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

    // Runs fn(ith, nth) once on each of the nth = n_threads() threads and
    // returns when all have finished. Not reentrant.
    void run(const std::function<void(int ith, int nth)>& fn);

    // Runs fn(task_idx) for every task_idx in [0, n_tasks), handing tasks out
    // dynamically in chunks of `grain`; returns when all are done.
    void parallel_for(int64_t n_tasks, const std::function<void(int64_t task_idx)>& fn, int64_t grain = 1);

private:
    void worker_loop(int ith);

    int n_threads_ = 1;
    std::vector<std::thread> workers_;
    const std::function<void(int, int)>* job_ = nullptr;  // the job of the current generation
    std::atomic<uint32_t> generation_{0};                 // bumped to start a job (workers wait on it)
    std::atomic<int> n_pending_{0};                        // workers still running the current job
    std::atomic<bool> stop_{false};
    std::mutex mutex_;                 // guards generation_ bumps against sleeping workers (no lost wake-ups)
    std::condition_variable wake_;     // sleeping workers wait here for a new generation
};

}  // namespace mnemos::kernels

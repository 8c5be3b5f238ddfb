#pragma once
// engine_runner: the engine on one dedicated thread; everything else submits to it.
//
// Threading: submit / cancel / stats are thread-safe; request callbacks run on the engine thread.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/turn_metrics.h"
#include "engine/engine.h"
#include "engine/status.h"

namespace mnemos::agent {

class engine_runner {
  public:
    // Creates the engine and starts its thread. The thread steps while there is
    // work and sleeps on a condition variable otherwise; submit() wakes it.
    // Errors: those of engine::create.
    static result<std::unique_ptr<engine_runner>> start(std::shared_ptr<const engine::model> m,
                                                        const engine::engine_options& options);
    // Stops the thread (requests still in flight get no more callbacks).
    ~engine_runner();

    // Queues a request (engine::submit) and wakes the engine thread. Thread-safe. endpoint: who submits it (the
    // server's route, "play", "chat"...), the endpoint label of its turn in metrics().
    engine::seq_id submit(engine::request r, std::string endpoint = "other");
    // Cancels a request (its on_finish reports cancelled). Thread-safe.
    void cancel(engine::seq_id id);
    // Runs fn on the engine thread before its next step (e.g. kv().set_store()). Thread-safe.
    void run_on_engine_thread(std::function<void(engine::engine&)> fn);

    // Snapshots taken by the engine thread after each step. Thread-safe.
    engine::engine_stats stats() const;
    engine::kv_cache_stats kv_stats() const;
    // Requests submitted but not yet finished.
    int64_t n_in_flight() const { return n_in_flight_.load(); }
    // Every turn submitted here, measured (queue wait, first token, per token, duration, tokens). Thread-safe.
    const turn_metrics& metrics() const { return *metrics_; }
    // The model's name for replies and metric labels (its general.name, else "mnemos").
    const std::string& model_name() const { return metrics_->model(); }

    const engine::model& mdl() const { return *model_; }
    int32_t n_ctx() const { return n_ctx_; }
    // Longest history a turn may have: n_ctx with full attention, else what the KV pool holds (sparse
    // attention beyond n_ctx; engine/attention.h).
    int32_t history_limit() const { return history_limit_; }
    const engine::attention_options& attention() const { return attention_; }
    // Tokens per KV page (engine::engine::page_size): block hashes and window cuts use it.
    int32_t page_size() const { return page_size_; }

  private:
    engine_runner() = default;
    void loop();

    std::shared_ptr<const engine::model> model_;
    std::unique_ptr<turn_metrics> metrics_;   // before engine_: its callbacks (engine thread) use it
    std::unique_ptr<engine::engine> engine_;  // touched only by the engine thread after start()
    int32_t n_ctx_ = 0;
    int32_t history_limit_ = 0;
    int32_t page_size_ = 0;
    engine::attention_options attention_;

    mutable std::mutex mu_;  // guards wake_, stop_, tasks_, the snapshots
    std::condition_variable cv_;
    bool wake_ = false;  // set by submit/cancel so a step that raced with it is not slept through
    bool stop_ = false;
    std::vector<std::function<void(engine::engine&)>> tasks_;  // run_on_engine_thread queue
    engine::engine_stats stats_snap_;
    engine::kv_cache_stats kv_snap_;
    std::atomic<int64_t> n_in_flight_{0};
    // When the current engine step began: engine thread only (turn_metrics' queue wait reads it in callbacks).
    std::chrono::steady_clock::time_point step_start_{};  // submitted - finished, for the queue-depth metric
    std::thread thread_;
};

}  // namespace mnemos::agent

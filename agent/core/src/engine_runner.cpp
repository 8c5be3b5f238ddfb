// engine_runner (agent/core/engine_runner.h).
#include "agent/core/engine_runner.h"

namespace mnemos::agent {

result<std::unique_ptr<engine_runner>> engine_runner::start(std::shared_ptr<const engine::model> m,
                                                            const engine::engine_options& options) {
    auto e = engine::engine::create(m, options);
    if (!e) return e.error();
    std::unique_ptr<engine_runner> r(new engine_runner());
    r->metrics_ = std::make_unique<turn_metrics>(m->hp().name.empty() ? "mnemos" : m->hp().name);
    r->model_ = std::move(m);
    r->engine_ = std::move(e.value());
    r->n_ctx_ = r->engine_->n_ctx();
    r->history_limit_ = r->engine_->max_sequence_tokens();
    r->attention_ = r->engine_->attention();
    r->page_size_ = r->engine_->page_size();
    r->kv_snap_ = r->engine_->kv().stats();
    r->thread_ = std::thread([p = r.get()] { p->loop(); });
    return r;
}

engine_runner::~engine_runner() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
}

engine::seq_id engine_runner::submit(engine::request r, std::string endpoint) {
    n_in_flight_.fetch_add(1);
    metrics_->instrument(r, std::move(endpoint), &step_start_);
    auto finish = std::move(r.on_finish);
    r.on_finish = [this, finish = std::move(finish)](const engine::finish_info& info) {
        n_in_flight_.fetch_sub(1);
        if (finish) finish(info);
    };
    const engine::seq_id id = engine_->submit(std::move(r));
    {
        std::lock_guard lk(mu_);
        wake_ = true;
    }
    cv_.notify_one();
    return id;
}

void engine_runner::cancel(engine::seq_id id) {
    engine_->cancel(id);
    {
        std::lock_guard lk(mu_);
        wake_ = true;
    }
    cv_.notify_one();
}

void engine_runner::run_on_engine_thread(std::function<void(engine::engine&)> fn) {
    {
        std::lock_guard lk(mu_);
        tasks_.push_back(std::move(fn));
        wake_ = true;
    }
    cv_.notify_one();
}

engine::engine_stats engine_runner::stats() const {
    std::lock_guard lk(mu_);
    return stats_snap_;
}

engine::kv_cache_stats engine_runner::kv_stats() const {
    std::lock_guard lk(mu_);
    return kv_snap_;
}

void engine_runner::loop() {
    for (;;) {
        std::vector<std::function<void(engine::engine&)>> tasks;
        {
            std::lock_guard lk(mu_);
            if (stop_) return;
            tasks.swap(tasks_);
            wake_ = false;
        }
        for (auto& t : tasks) t(*engine_);
        step_start_ = std::chrono::steady_clock::now();
        const bool did = engine_->step();
        {
            std::unique_lock lk(mu_);
            stats_snap_ = engine_->stats();
            kv_snap_ = engine_->kv().stats();
            if (!did) cv_.wait(lk, [&] { return wake_ || stop_; });
        }
    }
}

}  // namespace mnemos::agent

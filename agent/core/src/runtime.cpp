// runtime::open and the one teardown order (agent/core/runtime.h).
#include "agent/core/runtime.h"

#include "memory/store.h"

namespace mnemos::agent {

result<std::unique_ptr<runtime>> runtime::open(std::shared_ptr<const engine::model> m, runtime_options options) {
    std::unique_ptr<runtime> rt(new runtime());
    rt->options_ = std::move(options);
    rt->model_ = std::move(m);
    if (!rt->options_.store_dir.empty()) {
        memory::store_options mo;
        mo.path = rt->options_.store_dir;
        auto opened = memory::store::open(mo);
        if (!opened) return make_error(opened.error().code(), "store: " + opened.error().message());
        rt->db_ = std::move(opened.value());
    }
    auto runner = engine_runner::start(rt->model_, rt->options_.engine);
    if (!runner) return runner.error();
    rt->runner_ = std::move(runner.value());
    if (rt->db_) {
        memory::store* raw = rt->db_.get();
        rt->runner_->run_on_engine_thread([raw](engine::engine& e) { e.kv().set_store(&raw->blocks()); });
        rt->session_store_ = make_durable_session_store(*rt->db_, rt->model_->fingerprint(), rt->runner_->page_size());
    } else {
        rt->session_store_ = make_memory_session_store();
    }
    rt->sessions_ = std::make_unique<session_manager>(*rt->model_, *rt->session_store_);
    return rt;
}

runtime::~runtime() {
    sessions_.reset();
    runner_.reset();  // the engine thread stops: no KV write-behind or callback after this
    session_store_.reset();
    if (db_) db_->flush();
    db_.reset();
}

}  // namespace mnemos::agent

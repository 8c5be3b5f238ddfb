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
    if ((rt->options_.make_session_store || rt->options_.make_block_store) && !rt->db_)
        return make_error(errc::invalid_argument, "cluster mode needs a local store directory (--store)");
    if (rt->db_) {
        memory::store* raw = rt->db_.get();
        if (rt->options_.make_block_store) rt->blocks_ = rt->options_.make_block_store(*raw);
        engine::block_store_i* blocks = rt->blocks_ ? rt->blocks_.get() : &raw->blocks();
        rt->runner_->run_on_engine_thread([blocks](engine::engine& e) { e.kv().set_store(blocks); });
        rt->session_store_ =
            rt->options_.make_session_store
                ? rt->options_.make_session_store()
                : make_durable_session_store(*rt->db_, rt->model_->fingerprint(), rt->runner_->page_size());
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
    blocks_.reset();  // a cluster block store uploads what it still holds (it reads the local store)
    if (db_) db_->flush();
    db_.reset();
}

}  // namespace mnemos::agent

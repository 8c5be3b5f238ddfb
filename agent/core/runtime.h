#pragma once
// The agent runtime without networking, and its one owner: runtime::open composes the model, the store
// (RocksDB, or sessions in memory), the engine thread, the session store and the session manager, and
// its destructor takes them down in one order. The HTTP server (agent/server/server.h) and the CLI sit on
// top of it.
//
// The parts, one header each: engine_runner.h (the engine thread), character.h, session_store.h,
// session.h, context_window.h (turn plans, fit_to_window), session_manager.h, util.h.
#include <functional>
#include <memory>
#include <string>

#include "agent/core/character.h"
#include "agent/core/context_window.h"
#include "agent/core/engine_runner.h"
#include "agent/core/session.h"
#include "agent/core/session_manager.h"
#include "agent/core/session_store.h"
#include "agent/core/util.h"
#include "engine/block_store.h"
#include "engine/engine.h"
#include "engine/status.h"

namespace mnemos::memory {
class store;
}

namespace mnemos::agent {

struct runtime_options {
    engine::engine_options engine;  // threads, context, attention, KV pool
    std::string store_dir;          // RocksDB directory; empty: sessions in memory, lost on exit
    // Cluster mode (agent/cluster/cluster_node.h), both need store_dir: the session store to use instead of
    // the local store's, and the block store the engine's KV cache uses in front of the local one (given
    // the opened local store). Default: none (single node).
    std::function<std::unique_ptr<session_store_i>()> make_session_store;
    std::function<std::unique_ptr<engine::block_store_i>(memory::store&)> make_block_store;
};

class runtime {
  public:
    // Opens the store (when store_dir is set), starts the engine thread (its KV cache writes and reads
    // blocks through the store), and builds the session store and the session manager on them.
    // Errors: those of memory::store::open (prefixed "store: ") and engine_runner::start.
    static result<std::unique_ptr<runtime>> open(std::shared_ptr<const engine::model> m, runtime_options options);
    // Teardown, in this order: the session manager, the engine thread (no callback runs after it), the
    // session store, then the store (flushed, then closed). Callers stop their servers first.
    ~runtime();

    const engine::model& model() const { return *model_; }
    std::shared_ptr<const engine::model> model_ptr() const { return model_; }
    engine_runner& runner() { return *runner_; }
    session_manager& sessions() { return *sessions_; }
    session_store_i& session_store() { return *session_store_; }
    memory::store* store() { return db_.get(); }  // nullptr without a store directory
    const runtime_options& options() const { return options_; }

  private:
    runtime() = default;

    runtime_options options_;
    std::shared_ptr<const engine::model> model_;
    std::unique_ptr<memory::store> db_;
    std::unique_ptr<engine_runner> runner_;
    std::unique_ptr<engine::block_store_i> blocks_;  // make_block_store's (cluster mode); after runner_, before db_
    std::unique_ptr<session_store_i> session_store_;
    std::unique_ptr<session_manager> sessions_;
};

}  // namespace mnemos::agent

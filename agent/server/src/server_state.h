#pragma once
// The state every part of a running server shares (one per server, held by shared_ptr so that
// coroutines still in flight at shutdown keep it alive).
#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "agent/core/engine_runner.h"
#include "agent/core/session_manager.h"
#include "agent/server/rate_limiter.h"
#include "agent/server/server.h"
#include "agent/server/src/metrics.h"
#include "agent/server/src/ws_feed.h"
#include "agent/server/turn_queue.h"

namespace mnemos::agent::server_detail {

struct server_state {
    server_options opt;
    std::shared_ptr<turn_queue> turns;  // per-session turn order (opt.max_waiting_turns, turn_wait_timeout_ms)
    rate_limiter limiter;
    engine_runner* runner = nullptr;      // not owned
    session_manager* sessions = nullptr;  // not owned
    std::string model_id;
    metrics m;
    std::shared_ptr<post_gate> gate = std::make_shared<post_gate>();
    hub_ptr hub = std::make_shared<ws_hub>();
    std::mutex inflight_mu;             // guards inflight
    std::set<engine::seq_id> inflight;  // for cancel on shutdown
    std::atomic<bool> stopping{false};
};
using state_ptr = std::shared_ptr<server_state>;

}  // namespace mnemos::agent::server_detail

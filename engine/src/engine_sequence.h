#pragma once
// engine::sequence: one request inside the scheduler (engine/engine.h), shared by the scheduler's source files.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/stop_matcher.h"
#include "engine/tokenizer.h"

namespace mnemos::engine {

struct engine::sequence {
    seq_id id = 0;
    request req;
    kv_sequence kv;
    int32_t n_done = 0;             // prompt tokens whose KV is computed (or reused)
    std::vector<token_id> history;  // prompt + generated, for penalties
    token_id pending = -1;          // sampled token to feed in the next step
    finish_info info;
    std::unique_ptr<sampler> smp;
    std::unique_ptr<stream_decoder> dec;
    std::unique_ptr<stop_matcher> stops;
    bool done = false;
    bool cancelled = false;
    std::optional<grammar_state> gstate;  // set while the output is constrained
    std::string trigger_tail;             // output since the last trigger, at most the trigger's length
    bool grammar_done = false;            // the document is complete and cannot continue
    bool preempted = false;               // swapped out to host memory, back in waiting_ until its pages fit
};

}  // namespace mnemos::engine

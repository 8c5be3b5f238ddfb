#pragma once
// bench_long_context's parts (see bench_long_context.cpp): the options, one measured row, and the three parts
// (recall model, SmolLM-shaped model over synthesized histories, full vs sparse on a real model).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace mnemos::bench_lc {

using namespace mnemos::engine;
using clock_type = std::chrono::steady_clock;

struct bench_options {
    std::vector<int64_t> lengths = {8192, 32768, 131072, 524288, 1048576};
    std::vector<int64_t> smollm_lengths = {8192, 32768, 131072};
    int64_t full_max = 32768;
    int32_t n_threads = 2;
    int32_t n_decode = 32;
    int32_t n_needles = 8;
    attention_options attention;  // the engine's defaults unless flags say otherwise
    int32_t pool_pages = 2048;
    std::string approx_model;
    int64_t approx_length = 8192;
    int32_t approx_positions = 64;
};

struct row {
    std::string model, mode;
    int64_t n_tokens = 0;
    double prefill_tok_s = 0;  // 0: not run (synthesized history)
    double decode_ms = 0;
    int recalled = -1, asked = 0;  // -1: not a recall model
    int resumed = -1;              // needles recalled by a new engine over the same store (a restart)
    double resume_s = 0;           // its first answer: match from the store (summaries) + the query
    int32_t pages_resident = 0;
    int64_t pool_bytes = 0;  // the pool's size
    int64_t summary_bytes = 0;
    double read_bytes_per_token = 0;
};

struct approx_row {
    int32_t budget = 0;
    bool shared = false;  // one selection per layer for all KV heads
    double top1 = 0, kl = 0;
};

struct run_result {
    finish_info fin;
    double seconds = 0;    // submit to finish
    double decode_ms = 0;  // per generated token after the first
};

// common.cpp
double seconds_since(clock_type::time_point t0);
std::string temp_path(const std::string& name);
std::shared_ptr<const model> load_or_die(const std::string& path);
std::unique_ptr<engine::engine> make_engine(std::shared_ptr<const model> m, const engine_options& eo);
size_t page_bytes_of(const model& m);
engine_options history_options(const bench_options& o, const model& m, int64_t n_tokens, bool full);
run_result run(engine::engine& eng, std::vector<token_id> prompt, int32_t max_tokens);

// recall.cpp: the recall model at every length of o.lengths (full attention beside it up to o.full_max).
std::vector<row> recall_rows(const bench_options& o);
// smollm.cpp: the SmolLM-shaped model at every length of o.smollm_lengths.
std::vector<row> smollm_rows(const bench_options& o);
// approx.cpp: full vs sparse attention on o.approx_model over scenario text.
std::vector<approx_row> approximation(const bench_options& o);
// bench_long_context.cpp
void print_rows(const std::vector<row>& rows);
void print_ratios(const std::vector<row>& rows);
void print_json(const bench_options& o, const std::vector<row>& rows, const std::vector<approx_row>& approx);

}  // namespace mnemos::bench_lc

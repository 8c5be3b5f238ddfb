// bench_long_context part 1: the analytic recall model, a real prefill, needles, a restart.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "bench/long_context/bench_long_context.h"
#include "tests/support/recall_model.h"

namespace mnemos::bench_lc {

std::vector<test::recall_needle> spread_needles(int n, int64_t n_tokens, uint64_t seed) {
    std::mt19937_64 g(seed);
    std::vector<test::recall_needle> out;
    for (int i = 0; i < n; ++i) {
        // Depths spread over the history, jittered; never inside the last 4096 tokens (the window).
        const int64_t span = std::max<int64_t>(1, n_tokens - 4096 - 64);
        const int64_t pos = 32 + (span * i) / n + int64_t(g() % uint64_t(std::max<int64_t>(1, span / n / 2)));
        out.push_back({i, (i * 7 + 3) % 32, pos & ~int64_t(1)});
    }
    return out;
}

void resume_row(std::shared_ptr<const model> m, const test::recall_roles& roles, const bench_options& o,
                int64_t n_tokens, memory_block_store& store, const std::vector<token_id>& history,
                const std::vector<test::recall_needle>& needles, row& rw);

row recall_row(std::shared_ptr<const model> m, const test::recall_roles& roles, const bench_options& o,
               int64_t n_tokens, bool full) {
    const auto needles = spread_needles(o.n_needles, n_tokens, uint64_t(n_tokens));
    const auto history = test::make_recall_history(roles, n_tokens, needles, 7);
    const size_t page_bytes = page_bytes_of(*m);
    auto eng = make_engine(m, history_options(o, *m, n_tokens, full));
    memory_block_store store;  // where parked pages go (a host-memory stand-in for the disk store)
    if (!full) eng->kv().set_store(&store);
    row rw;
    rw.model = "recall";
    rw.mode = full ? "full" : "sparse";
    rw.n_tokens = n_tokens;
    rw.pool_bytes = int64_t(eng->kv().n_pages()) * int64_t(page_bytes);
    const run_result pre = run(*eng, history, 0);
    rw.prefill_tok_s = double(n_tokens) / pre.seconds;
    rw.asked = int(needles.size());
    rw.recalled = 0;
    for (size_t i = 0; i < needles.size(); ++i) {
        std::vector<token_id> prompt = history;
        prompt.push_back(roles.keys[size_t(needles[i].key)]);
        const run_result r = run(*eng, prompt, i == 0 ? o.n_decode : 1);
        rw.recalled += !r.fin.tokens.empty() && r.fin.tokens[0] == roles.values[size_t(needles[i].value)];
        if (i != 0) continue;
        rw.decode_ms = r.decode_ms;
        rw.pages_resident = r.fin.attention.sparse ? r.fin.attention.n_pages_resident : int32_t(n_tokens / 16 + 1);
        const int64_t summary_floats = int64_t(m->hp().n_layer) * m->hp().n_head_kv * 2 * m->hp().head_dim;
        rw.summary_bytes = r.fin.attention.sparse ? (n_tokens / 16) * summary_floats * 4 * 17 / 16 : 0;
        rw.read_bytes_per_token =
            double(r.fin.attention.n_pages_loaded) * double(page_bytes) / double(std::max(1, r.fin.n_generated));
    }
    if (!full) resume_row(m, roles, o, n_tokens, store, history, needles, rw);
    return rw;
}

// A restart: a new engine over the same store answers the needles again (summaries and blocks from the store).
void resume_row(std::shared_ptr<const model> m, const test::recall_roles& roles, const bench_options& o,
                int64_t n_tokens, memory_block_store& store, const std::vector<token_id>& history,
                const std::vector<test::recall_needle>& needles, row& rw) {
    auto eng = make_engine(m, history_options(o, *m, n_tokens, false));
    eng->kv().set_store(&store);
    rw.resumed = 0;
    for (size_t i = 0; i < needles.size(); ++i) {
        std::vector<token_id> prompt = history;
        prompt.push_back(roles.keys[size_t(needles[i].key)]);
        const run_result r = run(*eng, prompt, 1);
        if (i == 0) rw.resume_s = r.seconds;
        rw.resumed += !r.fin.tokens.empty() && r.fin.tokens[0] == roles.values[size_t(needles[i].value)];
    }
}

std::vector<row> recall_rows(const bench_options& o) {
    std::vector<row> rows;
    if (o.lengths.empty()) return rows;
    test::recall_roles roles;
    const std::string path = temp_path("recall.gguf");
    if (!test::write_recall_model(path, {}, &roles)) {
        std::fprintf(stderr, "bench_long_context: cannot write %s\n", path.c_str());
        std::exit(1);
    }
    auto m = load_or_die(path);
    std::filesystem::remove(path);
    for (int64_t n : o.lengths) {
        if (n <= o.full_max) rows.push_back(recall_row(m, roles, o, n, true));
        rows.push_back(recall_row(m, roles, o, n, false));
        print_rows({rows.back()});
    }
    return rows;
}

}  // namespace mnemos::bench_lc

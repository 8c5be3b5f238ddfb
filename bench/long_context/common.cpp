// bench_long_context: engines, options and one timed request.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "bench/long_context/bench_long_context.h"

namespace mnemos::bench_lc {

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("mnemos-bench-" + std::to_string(::getpid()) + "-" + name))
        .string();
}

std::shared_ptr<const model> load_or_die(const std::string& path) {
    auto m = model::load(path);
    if (!m) {
        std::fprintf(stderr, "bench_long_context: %s\n", m.error().to_string().c_str());
        std::exit(1);
    }
    return std::shared_ptr<const model>(std::move(m.value()));
}

std::unique_ptr<engine::engine> make_engine(std::shared_ptr<const model> m, const engine_options& eo) {
    auto e = engine::engine::create(std::move(m), eo);
    if (!e) {
        std::fprintf(stderr, "bench_long_context: %s\n", e.error().to_string().c_str());
        std::exit(1);
    }
    return std::move(e.value());
}

size_t page_bytes_of(const model& m) { return size_t(m.hp().n_layer) * 2 * 16 * size_t(m.hp().kv_dim()) * 2; }

// Full attention: a context and a pool that hold the history; sparse: the model's trained context (sparse beyond
// it) and a pool of --pool-pages.
engine_options history_options(const bench_options& o, const model& m, int64_t n_tokens, bool full) {
    engine_options eo;
    eo.n_threads = o.n_threads;
    eo.attention = o.attention;
    if (full) {
        eo.attention.mode = attention_mode::full;
        eo.n_ctx = int32_t(n_tokens + o.n_decode + 64);
        eo.kv_bytes = (size_t(eo.n_ctx) / 16 + 4) * page_bytes_of(m);
    } else {
        eo.n_ctx = m.hp().n_ctx_train;
        eo.kv_bytes = size_t(o.pool_pages) * page_bytes_of(m);
    }
    return eo;
}

// One request run to completion, with the time of its first and last generated tokens.

run_result run(engine::engine& eng, std::vector<token_id> prompt, int32_t max_tokens) {
    run_result res;
    request r;
    r.prompt = std::move(prompt);
    r.max_tokens = max_tokens;
    r.ignore_eos = true;
    r.sampling.temperature = 0;
    clock_type::time_point t_first{}, t_last{};
    int n = 0;
    r.on_token = [&](token_id, std::string_view) {
        t_last = clock_type::now();
        if (n++ == 0) t_first = t_last;
    };
    r.on_finish = [&](const finish_info& f) { res.fin = f; };
    const auto t0 = clock_type::now();
    eng.submit(std::move(r));
    eng.run_until_idle();
    res.seconds = seconds_since(t0);
    if (res.fin.error.ok() == false) {
        std::fprintf(stderr, "bench_long_context: %s\n", res.fin.error.to_string().c_str());
        std::exit(1);
    }
    if (n > 1) res.decode_ms = 1e3 * std::chrono::duration<double>(t_last - t_first).count() / (n - 1);
    return res;
}

}  // namespace mnemos::bench_lc

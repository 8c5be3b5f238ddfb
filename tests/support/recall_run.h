#pragma once
// Running the analytic recall model (recall_model.h) through the engine: load
// it, prefill a history, ask a query key and read the greedy answer with its
// margin. Shared by the full-attention and the sparse-attention recall tests.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <random>

#include "engine/engine.h"
#include "tests/support/recall_model.h"

namespace mnemos::test::recall_run {

using namespace mnemos::engine;

struct recall_fixture {
    std::shared_ptr<const model> m;
    test::recall_roles roles;
};

inline recall_fixture load_recall_model(const test::recall_model_spec& spec) {
    const std::string path =
        (std::filesystem::temp_directory_path() /
         ("mnemos-test-" + std::to_string(::getpid()) + "-recall-" + std::to_string(spec.n_layer) + ".gguf"))
            .string();
    recall_fixture f;
    REQUIRE(test::write_recall_model(path, spec, &f.roles));
    auto m = model::load(path);
    INFO((m.ok() ? std::string() : m.error().to_string()));
    REQUIRE(m.ok());
    std::filesystem::remove(path);  // the mapping stays valid
    f.m = std::shared_ptr<const model>(std::move(m.value()));
    return f;
}

// The options of the full-attention recall tests: 2 threads, a 64 MiB pool, 2048-token steps.
inline engine_options recall_engine_options(int32_t n_ctx) {
    engine_options eo;
    eo.n_threads = 2;
    eo.n_ctx = n_ctx;
    eo.kv_bytes = size_t{64} << 20;
    eo.max_batch_tokens = 2048;
    return eo;
}

inline std::unique_ptr<mnemos::engine::engine> make_engine(const std::shared_ptr<const model>& m,
                                                           const engine_options& eo) {
    auto e = mnemos::engine::engine::create(m, eo);
    INFO((e.ok() ? std::string() : e.error().to_string()));
    REQUIRE(e.ok());
    return std::move(e.value());
}

struct answer {
    token_id token = -1;
    float margin = 0;  // top logit minus the runner-up at the query position
    finish_info fin;
};

// Prefills `history` alone (max_tokens 0), so that the queries after it reuse its KV through the prefix cache.
inline void prefill(mnemos::engine::engine& eng, const std::vector<token_id>& history) {
    request r;
    r.prompt = history;
    r.max_tokens = 0;
    finish_info fin;
    r.on_finish = [&](const finish_info& f) { fin = f; };
    eng.submit(std::move(r));
    eng.run_until_idle();
    REQUIRE(fin.reason != finish_reason::error);
}

// Greedy next token after history + [query].
inline answer ask(mnemos::engine::engine& eng, const std::vector<token_id>& history, token_id query) {
    request r;
    r.prompt = history;
    r.prompt.push_back(query);
    const int64_t last = static_cast<int64_t>(r.prompt.size()) - 1;
    r.max_tokens = 1;
    r.ignore_eos = true;
    r.sampling.temperature = 0;
    answer a;
    r.on_logits = [&a, last](int64_t pos, std::span<const float> lg) {
        if (pos != last) return;
        std::vector<float> v(lg.begin(), lg.end());
        std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<float>());
        a.margin = v[0] - v[1];
    };
    r.on_finish = [&a](const finish_info& f) { a.fin = f; };
    eng.submit(std::move(r));
    eng.run_until_idle();
    REQUIRE(a.fin.reason != finish_reason::error);
    REQUIRE(a.fin.tokens.size() == 1);
    a.token = a.fin.tokens[0];
    return a;
}

// n needles with distinct keys and values at distinct random positions in [1, n_tokens - 2], two apart or more;
// the first at position 1 and the second at n_tokens - 2 (right after BOS, right before the query).
inline std::vector<test::recall_needle> random_needles(int n, int n_keys, int64_t n_tokens, uint64_t seed) {
    std::mt19937_64 g(seed);
    std::vector<int> keys(n_keys), values(n_keys);
    for (int i = 0; i < n_keys; ++i) keys[i] = values[i] = i;
    for (int i = n_keys - 1; i > 0; --i) std::swap(keys[i], keys[g() % (i + 1)]);
    for (int i = n_keys - 1; i > 0; --i) std::swap(values[i], values[g() % (i + 1)]);
    std::vector<test::recall_needle> out;
    for (int i = 0; i < n; ++i) {
        int64_t pos = i == 0 ? 1 : n_tokens - 2;
        if (i >= 2) {
            for (;;) {
                pos = 1 + static_cast<int64_t>(g() % static_cast<uint64_t>(n_tokens - 2));
                bool ok = pos + 1 <= n_tokens - 1;
                for (const auto& o : out) ok = ok && (pos >= o.pos + 2 || pos + 2 <= o.pos);
                if (ok) break;
            }
        }
        out.push_back({keys[i], values[i], pos});
    }
    return out;
}

}  // namespace mnemos::test::recall_run

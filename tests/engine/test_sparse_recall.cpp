// Memory through sparse attention, mechanically: the analytic recall model
// (tests/support/recall_model.h) answers needles stated tens of thousands of
// tokens before its query only if the attention reaches the one position that
// holds the answer. With sparse attention (sinks + window + selected pages) it
// must recall every needle; with the same sinks and window but no selected
// pages it must not (proof that the retrieval does the work). The 3-layer
// model follows a two-hop chain whose links lie in different pages, which
// only a per-layer selection can answer. 512k and 1M tokens run in
// bench/long_context. [long]: prefills of 32k..131k tokens, left out of the
// sanitizer build (scripts/asan.sh).
#include <catch2/catch.hpp>

#include "tests/support/recall_run.h"

using namespace mnemos;
using namespace mnemos::engine;
using namespace mnemos::test::recall_run;

namespace {

// Sparse beyond the recall model's 4096-token context; a small budget keeps the prefill cheap on 2 cores:
// 32 sink tokens + a 256-token window + n_pages pages of 16 tokens.
engine_options sparse_options(int64_t n_tokens, int32_t n_pages) {
    engine_options eo;
    eo.n_threads = 2;
    eo.n_ctx = 4096;
    eo.max_batch_tokens = 512;
    eo.kv_bytes = size_t(n_tokens + 4096) * 3 * 2 * 128 * 2;  // the whole history stays in the pool
    eo.attention.mode = attention_mode::automatic;
    eo.attention.n_sink = 32;
    eo.attention.n_window = 256;
    eo.attention.n_pages = n_pages;
    return eo;
}

struct recall_score {
    int n_right = 0;
    int n_asked = 0;
    bool all_sparse = true;
};

recall_score ask_needles(mnemos::engine::engine& eng, const test::recall_roles& roles,
                         const std::vector<token_id>& history, const std::vector<test::recall_needle>& needles) {
    recall_score sc;
    for (const auto& nd : needles) {
        const answer a = ask(eng, history, roles.keys[size_t(nd.key)]);
        sc.n_asked++;
        sc.n_right += a.token == roles.values[size_t(nd.value)];
        sc.all_sparse = sc.all_sparse && a.fin.attention.sparse;
    }
    return sc;
}

}  // namespace

TEST_CASE("sparse attention recalls needles far beyond the window; sinks and window alone do not",
          "[recall][sparse][long]") {
    auto f = load_recall_model({});
    for (int64_t n_tokens : {int64_t(32768), int64_t(131072)}) {
        const auto needles = random_needles(6, 32, n_tokens, uint64_t(n_tokens));
        const auto history = test::make_recall_history(f.roles, n_tokens, needles, 7);
        {
            auto eng = make_engine(f.m, sparse_options(n_tokens, 8));
            prefill(*eng, history);
            const recall_score sc = ask_needles(*eng, f.roles, history, needles);
            INFO(n_tokens << " tokens: " << sc.n_right << "/" << sc.n_asked << " recalled with 8 selected pages");
            CHECK(sc.all_sparse);
            CHECK(sc.n_right == sc.n_asked);
        }
        if (n_tokens > 32768) continue;  // the baseline once is enough
        auto eng = make_engine(f.m, sparse_options(n_tokens, 0));
        prefill(*eng, history);
        // random_needles puts needle 0 right after BOS (in the sinks) and needle 1 right before the query (in the
        // window): those two are answered without retrieval, the four others must not be.
        const recall_score near = ask_needles(*eng, f.roles, history, {needles[0], needles[1]});
        const recall_score far = ask_needles(*eng, f.roles, history, {needles.begin() + 2, needles.end()});
        INFO(n_tokens << " tokens, sinks + window alone: " << near.n_right << "/2 near, " << far.n_right << "/"
                      << far.n_asked << " far");
        CHECK(near.n_right == 2);
        CHECK(far.n_right == 0);
    }
}

TEST_CASE("sparse attention: many keys queried over one history", "[recall][sparse][long]") {
    auto f = load_recall_model({});
    const int64_t n_tokens = 65536;
    const auto needles = random_needles(24, 32, n_tokens, 99);
    const auto history = test::make_recall_history(f.roles, n_tokens, needles, 3);
    auto eng = make_engine(f.m, sparse_options(n_tokens, 4));
    prefill(*eng, history);
    const recall_score sc = ask_needles(*eng, f.roles, history, needles);
    CHECK(sc.all_sparse);
    CHECK(sc.n_right == sc.n_asked);
    // The same questions at once: eight long sequences batched in every step (continuous batching).
    std::vector<finish_info> fins(8);
    for (size_t i = 0; i < fins.size(); ++i) {
        request r;
        r.prompt = history;
        r.prompt.push_back(f.roles.keys[size_t(needles[i].key)]);
        r.max_tokens = 1;
        r.ignore_eos = true;
        r.sampling.temperature = 0;
        r.on_finish = [&fins, i](const finish_info& fi) { fins[i] = fi; };
        eng->submit(std::move(r));
    }
    eng->run_until_idle();
    for (size_t i = 0; i < fins.size(); ++i) {
        INFO("batched question " << i << ": " << fins[i].error.to_string());
        REQUIRE(fins[i].tokens.size() == 1);
        CHECK(fins[i].tokens[0] == f.roles.values[size_t(needles[i].value)]);
        CHECK(fins[i].attention.sparse);
    }
}

TEST_CASE("sparse attention: a two-hop chain needs a selection per layer", "[recall][sparse][long]") {
    test::recall_model_spec spec;
    spec.n_layer = 3;
    auto f = load_recall_model(spec);
    const int64_t n_tokens = 32768;
    // Links far apart, in both orders.
    const std::vector<test::recall_chain> chains = {{0, 1, 5, 1000, 20000}, {2, 3, 6, 25000, 3000}};
    const auto history = test::make_two_hop_history(f.roles, n_tokens, chains, 11);
    for (int32_t n_pages : {8, 0}) {
        auto eng = make_engine(f.m, sparse_options(n_tokens, n_pages));
        prefill(*eng, history);
        int n_right = 0;
        for (const auto& c : chains)
            n_right += ask(*eng, history, f.roles.keys[size_t(c.first)]).token == f.roles.values[size_t(c.value)];
        INFO(n_pages << " pages: " << n_right << "/" << chains.size());
        if (n_pages > 0)
            CHECK(n_right == int(chains.size()));
        else
            CHECK(n_right == 0);
    }
}

TEST_CASE("sparse attention: a history 16x the pool lives in the store; a new engine resumes it from there",
          "[recall][sparse][store][long]") {
    auto f = load_recall_model({});
    const int64_t n_tokens = 131072;  // 8192 pages of 16 tokens
    const auto needles = random_needles(6, 32, n_tokens, 5);
    const auto history = test::make_recall_history(f.roles, n_tokens, needles, 17);
    memory_block_store store;  // outlives both engines: the "disk"
    engine_options eo = sparse_options(n_tokens, 8);
    const size_t page_bytes = size_t(3) * 2 * 16 * 128 * 2;
    eo.kv_bytes = 512 * page_bytes;  // a pool of 512 pages
    {
        auto eng = make_engine(f.m, eo);
        eng->kv().set_store(&store);
        request r;
        r.prompt = history;
        r.max_tokens = 0;
        finish_info fin;
        r.on_finish = [&](const finish_info& fi) { fin = fi; };
        eng->submit(std::move(r));
        eng->run_until_idle();
        REQUIRE(fin.error.ok());
        REQUIRE(fin.attention.sparse);
        // Sinks (2) + window (~17) + what 3 layers x 2 KV heads x 8 pages selected in the last step.
        INFO("resident " << fin.attention.n_pages_resident << " pages, loaded " << fin.attention.n_pages_loaded);
        CHECK(fin.attention.n_pages_resident <= 2 + 18 + 48);
        CHECK(store.size() >= size_t(n_tokens / 16 - 1));
        const recall_score sc = ask_needles(*eng, f.roles, history, needles);
        CHECK(sc.n_right == sc.n_asked);
    }
    // A new engine (a restart): the history comes back from the store, not from a prefill, and the summaries
    // stored beside the blocks spare reading them: only sinks, window and selected pages are read.
    CHECK(store.n_summaries() >= size_t(n_tokens / 16 - 64));
    auto eng = make_engine(f.m, eo);
    eng->kv().set_store(&store);
    const int64_t loads_before = store.n_loads();
    for (size_t i = 0; i < needles.size(); ++i) {
        const auto& nd = needles[i];
        const answer a = ask(*eng, history, f.roles.keys[size_t(nd.key)]);
        if (i == 0) {
            INFO("blocks read to resume 8192 pages and answer: " << store.n_loads() - loads_before);
            CHECK(store.n_loads() - loads_before < 400);
        }
        CHECK(a.token == f.roles.values[size_t(nd.value)]);
        CHECK(a.fin.n_reused >= n_tokens - 16);
        CHECK(a.fin.attention.n_pages_resident <= 2 + 18 + 48);
    }
}

TEST_CASE("sparse attention: one selection per KV head also recalls", "[recall][sparse][long]") {
    // The recall model keeps key slots 0-15 in KV head 0 and 16-31 in KV head 1: the default (shared) selection
    // takes the page either head needs (the best of the heads' scores), the per-head one each head's own.
    auto f = load_recall_model({});
    const int64_t n_tokens = 32768;
    const auto needles = random_needles(6, 32, n_tokens, 12);
    const auto history = test::make_recall_history(f.roles, n_tokens, needles, 13);
    engine_options eo = sparse_options(n_tokens, 8);
    eo.attention.shared_selection = false;
    auto eng = make_engine(f.m, eo);
    prefill(*eng, history);
    const recall_score sc = ask_needles(*eng, f.roles, history, needles);
    CHECK(sc.all_sparse);
    CHECK(sc.n_right == sc.n_asked);
}

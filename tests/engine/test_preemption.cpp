// Preemption under KV pressure (engine_options::preempt): kv_cache::swap_out / swap_in give a sequence back the
// exact bytes it had; sequences whose growth exceeds a tiny pool all complete, each with the output it has alone.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <random>

#include "engine/engine.h"
#include "tests/support/tiny_model.h"

using namespace mnemos;
using namespace mnemos::engine;

namespace {

std::shared_ptr<const model> make_model(const test::tiny_model_options& o, const std::string& name) {
    const std::string path =
        (std::filesystem::temp_directory_path() / ("mnemos-test-" + std::to_string(::getpid()) + "-" + name + ".gguf"))
            .string();
    REQUIRE(test::write_tiny_model(path, o));
    auto m = model::load(path);
    INFO((m.ok() ? std::string() : m.error().to_string()));
    REQUIRE(m.ok());
    std::filesystem::remove(path);  // the mapping stays valid
    return std::shared_ptr<const model>(std::move(m.value()));
}

std::vector<token_id> random_tokens(int n, int n_vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<token_id> t(static_cast<size_t>(n));
    for (auto& x : t) x = static_cast<token_id>(rng() % static_cast<uint32_t>(n_vocab));
    return t;
}

struct preempted_run {
    finish_info fin;
    std::vector<std::vector<float>> logits;  // every computed position
};

std::vector<preempted_run> run_greedy(mnemos::engine::engine& eng, const std::vector<std::vector<token_id>>& prompts,
                                      int32_t max_tokens) {
    std::vector<preempted_run> res(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
        request r;
        r.prompt = prompts[i];
        r.max_tokens = max_tokens;
        r.sampling.temperature = 0;
        r.ignore_eos = true;
        r.on_logits = [&res, i](int64_t, std::span<const float> lg) {
            res[i].logits.emplace_back(lg.begin(), lg.end());
        };
        r.on_finish = [&res, i](const finish_info& f) { res[i].fin = f; };
        eng.submit(std::move(r));
    }
    eng.run_until_idle();
    return res;
}

// An engine over a pool of n_pages pages, full attention.
std::unique_ptr<mnemos::engine::engine> make_engine(std::shared_ptr<const model> m, const test::tiny_model_options& o,
                                                    int32_t n_pages, bool preempt = true) {
    engine_options eo;
    eo.n_threads = 1;
    eo.n_ctx = 256;
    eo.attention.mode = attention_mode::full;
    eo.preempt = preempt;
    const size_t page_bytes = size_t(o.n_layer) * 2 * 16 * (o.n_embd / o.n_head * o.n_head_kv) * sizeof(uint16_t);
    eo.kv_bytes = size_t(n_pages) * page_bytes;
    auto eng = mnemos::engine::engine::create(std::move(m), eo);
    REQUIRE(eng.ok());
    REQUIRE((*eng)->kv().n_pages() == n_pages);
    return std::move(eng.value());
}

std::vector<uint8_t> page_bytes_of(const kv_cache& kv, page_idx p) {
    const auto* b = reinterpret_cast<const uint8_t*>(kv.page_data(p));
    return {b, b + kv.page_bytes()};
}

}  // namespace

TEST_CASE("kv_cache swap_out / swap_in: the same bytes come back, shared pages are shared again", "[kv]") {
    kv_cache_options ko;
    ko.n_layer = 2, ko.n_head_kv = 1, ko.head_dim = 8, ko.page_size = 4, ko.n_pages = 8;
    auto kv = std::move(kv_cache::open(ko).value());
    // a: 10 tokens (2 full pages + a partial one, and one page reserved past the end); b shares a's first page.
    std::vector<token_id> toks_a = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    kv_sequence a, b;
    REQUIRE(kv->reserve(a, 14).ok());
    for (page_idx p : a.pages)
        for (size_t i = 0; i < kv->page_bytes() / 2; ++i) kv->page_data(p)[i] = uint16_t(p * 1000 + i);
    REQUIRE(kv->commit(a, toks_a).ok());
    REQUIRE(a.pages.size() == 4);
    REQUIRE(kv->match_prefix(b, std::vector<token_id>{1, 2, 3, 4, 9, 9}) == 4);
    std::vector<std::vector<uint8_t>> before;
    for (size_t k = 0; k < 3; ++k) before.push_back(page_bytes_of(*kv, a.pages[k]));
    const page_idx shared = a.pages[0];

    REQUIRE(kv->swap_out(a) == 3);
    CHECK(a.swapped());
    CHECK(kv->swap_out(a) == 0);  // already out: nothing changes
    CHECK(kv->n_resident(a) == 0);
    CHECK(kv->ref_count(shared) == 1);  // b's reference
    CHECK(kv->stats().n_free == 7);
    CHECK(!kv->reserve(a, 1).ok());  // a swapped-out sequence is not written
    REQUIRE(kv->check_consistency().ok());
    // Others overwrite every free page, evicting a's second full page from the index.
    kv_sequence c;
    REQUIRE(kv->reserve(c, 28).ok());
    for (page_idx p : c.pages) std::memset(kv->page_data(p), 0xab, kv->page_bytes());
    CHECK(!kv->swap_in(a).ok());  // no free page: nothing changes
    CHECK(a.swapped());
    kv->release(c);

    REQUIRE(kv->swap_in(a).ok());
    CHECK(!a.swapped());
    CHECK(a.swapped_bytes.empty());
    REQUIRE(a.pages.size() == 3);  // the reserved page past the end was given back
    CHECK(a.pages[0] == shared);   // still resident with the same bytes: shared again
    CHECK(kv->ref_count(shared) == 2);
    for (size_t k = 0; k < 3; ++k) CHECK(page_bytes_of(*kv, a.pages[k]) == before[k]);
    CHECK(kv->find(a.hashes[1]) == a.pages[1]);  // indexed again
    CHECK(a.n_tokens == 10);
    REQUIRE(kv->check_consistency().ok());
    // It grows on as if it had never left.
    REQUIRE(kv->reserve(a, 3).ok());
    REQUIRE(kv->commit(a, std::vector<token_id>{11, 12, 13}).ok());
    CHECK(a.hashes.size() == 3);

    // Released while swapped out: the host copy goes, the pool is whole.
    REQUIRE(kv->swap_out(a) > 0);
    kv->release(a);
    kv->release(b);
    CHECK(a.swapped_bytes.empty());
    CHECK(kv->stats().n_free == 8);
    REQUIRE(kv->check_consistency().ok());
}

TEST_CASE("preemption: sequences outgrowing a tiny pool all complete, each as it would alone", "[forward][kv]") {
    test::tiny_model_options o;
    auto m = make_model(o, "preempt");
    // 6 sequences of 20 prompt + 100 generated tokens (8 pages each at the end) in a pool of 20 pages: all 6 start
    // (2 pages each), then their growth overflows the pool and the youngest are swapped out until older finish.
    std::vector<std::vector<token_id>> prompts;
    for (int i = 0; i < 6; ++i) prompts.push_back(random_tokens(20, m->hp().n_vocab, 300 + i));
    auto eng = make_engine(m, o, 20);
    const auto together = run_greedy(*eng, prompts, 100);
    const engine_stats st = eng->stats();
    CHECK(st.n_preemptions > 0);
    CHECK(st.n_resumptions == st.n_preemptions);
    CHECK(st.n_swapped_pages >= st.n_preemptions);
    CHECK(st.swapped_bytes == 0);
    REQUIRE(eng->kv().check_consistency().ok());
    CHECK(eng->kv().stats().n_free == 20);
    for (size_t i = 0; i < prompts.size(); ++i) {
        INFO("sequence " << i << ": " << together[i].fin.error.message());
        REQUIRE(together[i].fin.reason == finish_reason::length);
        CHECK(together[i].fin.n_generated == 100);
        // Alone in a fresh engine: the same tokens and the same logits at every position.
        auto alone_eng = make_engine(m, o, 20);
        const auto alone = run_greedy(*alone_eng, {prompts[i]}, 100);
        CHECK(alone_eng->stats().n_preemptions == 0);
        CHECK(alone[0].fin.tokens == together[i].fin.tokens);
        REQUIRE(alone[0].logits.size() == together[i].logits.size());
        for (size_t p = 0; p < alone[0].logits.size(); ++p) CHECK(alone[0].logits[p] == together[i].logits[p]);
    }
    // Without preemption the same work is admitted by its most pages: no preemption, nothing fails either.
    auto cautious = make_engine(m, o, 20, /*preempt=*/false);
    const auto waited = run_greedy(*cautious, prompts, 100);
    CHECK(cautious->stats().n_preemptions == 0);
    for (size_t i = 0; i < prompts.size(); ++i) CHECK(waited[i].fin.tokens == together[i].fin.tokens);
}

TEST_CASE("preemption: a preempted sequence can be cancelled; one too long for the pool alone fails clearly",
          "[forward][kv]") {
    test::tiny_model_options o;
    auto m = make_model(o, "preempt-cancel");
    auto eng = make_engine(m, o, 12);
    std::vector<finish_info> fin(3);
    std::vector<seq_id> ids;
    for (int i = 0; i < 3; ++i) {
        request r;
        r.prompt = random_tokens(20, m->hp().n_vocab, 400 + uint32_t(i));
        r.max_tokens = 60;  // 5 pages each at the end: 15 > 12
        r.sampling.temperature = 0;
        r.ignore_eos = true;
        r.on_finish = [&fin, i](const finish_info& f) { fin[size_t(i)] = f; };
        ids.push_back(eng->submit(std::move(r)));
    }
    while (eng->stats().n_preemptions == 0) REQUIRE(eng->step());
    CHECK(eng->stats().swapped_bytes > 0);
    eng->cancel(ids[2]);  // the youngest: the one preempted
    eng->step();
    CHECK(fin[2].reason == finish_reason::cancelled);
    CHECK(eng->stats().swapped_bytes == 0);
    eng->run_until_idle();
    CHECK(fin[0].reason == finish_reason::length);
    CHECK(fin[1].reason == finish_reason::length);
    CHECK(fin[1].n_generated == 60);
    REQUIRE(eng->kv().check_consistency().ok());
    CHECK(eng->kv().stats().n_free == 12);

    // 20 + 100 tokens need 8 pages; the pool has 4: it runs alone and fails with a message, nothing hangs.
    auto small = make_engine(m, o, 4);
    const auto res = run_greedy(*small, {random_tokens(20, m->hp().n_vocab, 5)}, 100);
    CHECK(res[0].fin.reason == finish_reason::error);
    CHECK(res[0].fin.error.code() == errc::out_of_memory);
    CHECK(res[0].fin.error.message().find("does not fit the pool of 4 pages") != std::string::npos);
}

TEST_CASE("preemption: a sequence attending sparsely keeps room for the pages it fetches back", "[forward][kv]") {
    test::tiny_model_options o;
    auto m = make_model(o, "preempt-sparse");
    engine_options eo;
    eo.n_threads = 1;
    eo.n_ctx = 160;  // automatic attention: sparse beyond 160 tokens, parked pages in the host-memory tier
    eo.attention.n_sink = 16;
    eo.attention.n_window = 64;
    eo.attention.n_pages = 2;
    const size_t page_bytes = size_t(o.n_layer) * 2 * 16 * (o.n_embd / o.n_head * o.n_head_kv) * sizeof(uint16_t);
    eo.kv_bytes = 16 * page_bytes;
    // A 300-token history going on for 80 tokens (its resident budget: 11 pages) and 4 short sequences of 20 + 60
    // tokens (5 pages each at the end): 31 pages of demand in 16. Without room kept for the pages its layers
    // fetch back, the others' growth took them and its forward pass failed ("too few free pages").
    std::vector<std::vector<token_id>> prompts = {random_tokens(300, m->hp().n_vocab, 77)};
    for (int i = 0; i < 4; ++i) prompts.push_back(random_tokens(20, m->hp().n_vocab, 500 + uint32_t(i)));
    auto run = [&](const std::vector<std::vector<token_id>>& ps, std::vector<int32_t> max_tokens) {
        auto eng = mnemos::engine::engine::create(m, eo);
        REQUIRE(eng.ok());
        REQUIRE((*eng)->kv().n_pages() == 16);
        std::vector<finish_info> fin(ps.size());
        for (size_t i = 0; i < ps.size(); ++i) {
            request r;
            r.prompt = ps[i];
            r.max_tokens = max_tokens[i];
            r.sampling.temperature = 0;
            r.ignore_eos = true;
            r.on_finish = [&fin, i](const finish_info& f) { fin[i] = f; };
            (*eng)->submit(std::move(r));
        }
        (*eng)->run_until_idle();
        REQUIRE((*eng)->kv().check_consistency().ok());
        return std::make_pair(fin, (*eng)->stats());
    };
    const auto [together, st] = run(prompts, {80, 60, 60, 60, 60});
    CHECK(st.n_preemptions > 0);
    CHECK(together[0].attention.sparse);
    for (size_t i = 0; i < prompts.size(); ++i) {
        INFO("sequence " << i << ": " << together[i].error.message());
        REQUIRE(together[i].reason == finish_reason::length);
        const auto [alone, alone_st] = run({prompts[i]}, {i == 0 ? 80 : 60});
        CHECK(alone[0].tokens == together[i].tokens);
    }
}

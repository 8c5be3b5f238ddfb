// The analytic associative-recall model (tests/support/recall_model.h) under
// the engine's full attention: needles at any depth of 1k..16k-token histories
// are recalled, a history without the pair answers <unk>, and the 3-layer model
// follows a two-hop chain whose links are thousands of tokens apart. [long]:
// prefills of 4k..16k tokens, left out of the sanitizer build (scripts/asan.sh).
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <random>

#include "engine/engine.h"
#include "tests/support/recall_run.h"

using namespace mnemos;
using namespace mnemos::engine;
using namespace mnemos::test::recall_run;

TEST_CASE("recall model: the spec and history builders reject what they cannot build", "[recall]") {
    const std::string path =
        (std::filesystem::temp_directory_path() / ("mnemos-test-" + std::to_string(::getpid()) + "-recall-bad.gguf"))
            .string();
    test::recall_model_spec s;
    s.n_layer = 4;
    CHECK_FALSE(test::write_recall_model(path, s, nullptr));
    s.n_layer = 2;
    s.n_keys = 33;
    CHECK_FALSE(test::write_recall_model(path, s, nullptr));

    test::recall_roles r;
    REQUIRE(test::write_recall_model(path, test::recall_model_spec{}, &r));
    std::filesystem::remove(path);
    CHECK(r.keys.size() == 32);
    CHECK(r.values.size() == 32);
    CHECK(r.fillers.size() == 64);
    std::vector<int32_t> all = r.keys;
    all.insert(all.end(), r.values.begin(), r.values.end());
    all.insert(all.end(), r.fillers.begin(), r.fillers.end());
    std::sort(all.begin(), all.end());
    CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
    CHECK(all.front() >= 3);

    const auto h = test::make_recall_history(r, 100, {{3, 5, 10}, {4, 6, 98}}, 7);
    REQUIRE(h.size() == 100);
    CHECK(h[0] == r.bos);
    CHECK(h[10] == r.keys[3]);
    CHECK(h[11] == r.values[5]);
    CHECK(h[98] == r.keys[4]);
    CHECK(h[99] == r.values[6]);
    CHECK(std::count(h.begin(), h.end(), r.keys[3]) == 1);
    CHECK(test::make_recall_history(r, 100, {{3, 5, 99}}, 7).empty());              // value past the end
    CHECK(test::make_recall_history(r, 100, {{3, 5, 0}}, 7).empty());               // over BOS
    CHECK(test::make_recall_history(r, 100, {{3, 5, 10}, {4, 6, 11}}, 7).empty());  // collision
    CHECK(test::make_recall_history(r, 100, {{3, 5, 10}, {3, 6, 50}}, 7).empty());  // key twice
    const auto c = test::make_two_hop_history(r, 100, {{1, 2, 9, 80, 20}}, 7);
    REQUIRE(c.size() == 100);
    CHECK(c[80] == r.keys[1]);
    CHECK(c[81] == r.keys[2]);
    CHECK(c[20] == r.keys[2]);
    CHECK(c[21] == r.values[9]);
}

TEST_CASE("recall model: needles at any depth are recalled under full attention", "[recall][long]") {
    const recall_fixture f = load_recall_model({});
    const int64_t lengths[] = {1024, 4096, 16384};
    auto eng = make_engine(f.m, recall_engine_options(16384 + 16));
    float min_margin = 1e30f;
    for (int64_t n : lengths) {
        const auto needles = random_needles(8, 32, n, 100 + static_cast<uint64_t>(n));
        const auto history = test::make_recall_history(f.roles, n, needles, static_cast<uint64_t>(n));
        REQUIRE(history.size() == static_cast<size_t>(n));
        prefill(*eng, history);
        for (const auto& nd : needles) {
            const answer a = ask(*eng, history, f.roles.keys[nd.key]);
            INFO("history " << n << ", needle at " << nd.pos);
            CHECK(a.fin.n_reused >= n - 32);  // the history came from the prefix cache
            CHECK(a.token == f.roles.values[nd.value]);
            min_margin = std::min(min_margin, a.margin);
        }
        // Keys that are not in this history: nothing recalled.
        std::vector<bool> present(32, false);
        for (const auto& nd : needles) present[static_cast<size_t>(nd.key)] = true;
        for (int k = 0, asked = 0; k < 32 && asked < 2; ++k) {
            if (present[static_cast<size_t>(k)]) continue;
            ++asked;
            const answer a = ask(*eng, history, f.roles.keys[k]);
            CHECK(a.token == f.roles.no_answer);
        }
    }
    CHECK(min_margin > 15.0f);  // about 20 - 1 by construction (recall_model.h, "Output")
}

TEST_CASE("recall model: a history without the pair does not produce the value", "[recall][long]") {
    const recall_fixture f = load_recall_model({});
    auto eng = make_engine(f.m, recall_engine_options(4096 + 16));
    const int64_t n = 4096;
    const test::recall_needle nd{5, 7, 1500};
    const auto with = test::make_recall_history(f.roles, n, {nd}, 11);
    REQUIRE(with.size() == static_cast<size_t>(n));
    CHECK(ask(*eng, with, f.roles.keys[5]).token == f.roles.values[7]);

    // The same history with the pair broken: the key word is followed by a filler and the value word stands
    // elsewhere, after a filler. Both tokens are in the history, only the adjacency is gone.
    auto broken = with;
    broken[1501] = f.roles.fillers[0];
    broken[3000] = f.roles.values[7];
    const answer a = ask(*eng, broken, f.roles.keys[5]);
    CHECK(a.token != f.roles.values[7]);
    CHECK(a.token == f.roles.no_answer);
    // No needle at all.
    const auto none = test::make_recall_history(f.roles, n, {}, 11);
    CHECK(ask(*eng, none, f.roles.keys[5]).token == f.roles.no_answer);
}

TEST_CASE("recall model: three layers follow a two-hop chain", "[recall][long]") {
    test::recall_model_spec spec;
    spec.n_layer = 3;
    const recall_fixture f3 = load_recall_model(spec);
    const recall_fixture f2 = load_recall_model({});
    const int64_t n = 8192;
    // "A B" and "B V" thousands of tokens apart, in both orders.
    const std::vector<test::recall_chain> chains = {
        {0, 1, 10, 300, 5200}, {2, 3, 11, 7000, 1200}, {4, 5, 12, 2500, 6100}, {6, 7, 13, 8100, 4000}};
    const auto history = test::make_two_hop_history(f3.roles, n, chains, 5);
    REQUIRE(history.size() == static_cast<size_t>(n));
    REQUIRE(f2.roles.keys == f3.roles.keys);  // same seed: same roles

    auto eng3 = make_engine(f3.m, recall_engine_options(8192 + 16));
    prefill(*eng3, history);
    float min_margin = 1e30f;
    for (const auto& c : chains) {
        const answer a = ask(*eng3, history, f3.roles.keys[c.first]);
        INFO("chain " << c.pos_first << " -> " << c.pos_second);
        CHECK(a.token == f3.roles.values[c.value]);
        min_margin = std::min(min_margin, a.margin);
    }
    CHECK(min_margin > 10.0f);  // about 17.9 - 1 by construction

    // One hop only: A finds B, a key word, which is no value: nothing is recalled.
    auto eng2 = make_engine(f2.m, recall_engine_options(8192 + 16));
    prefill(*eng2, history);
    for (const auto& c : chains) CHECK(ask(*eng2, history, f2.roles.keys[c.first]).token == f2.roles.no_answer);
}

namespace {

// Element (row, col) of an f32 weight matrix of the model.
float weight_at(const kernels::weight_view& w, int64_t row, int64_t col) {
    return reinterpret_cast<const float*>(static_cast<const uint8_t*>(w.data) + row * w.row_bytes)[col];
}

// One head's q or k (64 dims) for a residual whose rmsnormed input is `factor` at dims `cols`, then RoPE at
// `pos` exactly as engine/src/forward.cpp computes it (float running product of the angles, "normal" pairs).
std::vector<float> head_vector(const model& m, const kernels::weight_view& w, int head, const std::vector<int>& cols,
                               double factor, int64_t pos) {
    const int hd = m.hp().head_dim;
    std::vector<float> x(static_cast<size_t>(hd), 0.0f);
    for (int d = 0; d < hd; ++d)
        for (int c : cols) x[d] += static_cast<float>(weight_at(w, static_cast<int64_t>(head) * hd + d, c) * factor);
    const float theta_scale = std::pow(m.hp().rope_freq_base, -2.0f / static_cast<float>(m.hp().n_rot));
    float theta = static_cast<float>(pos);
    for (int p = 0; p < m.hp().n_rot / 2; ++p, theta *= theta_scale) {
        const float c = std::cos(theta), s = std::sin(theta), a = x[2 * p], b = x[2 * p + 1];
        x[2 * p] = a * c - b * s;
        x[2 * p + 1] = a * s + b * c;
    }
    return x;
}

float score(const std::vector<float>& q, const std::vector<float>& k) {
    double s = 0;
    for (size_t d = 0; d < q.size(); ++d) s += static_cast<double>(q[d]) * k[d];
    return static_cast<float>(s / 8.0);  // 1/sqrt(head_dim)
}

}  // namespace

// A million-token prefill is out of reach of a unit test; this recomputes, from the written weights and the
// engine's RoPE angles, the attention scores the long-context tests rely on at distances up to 2^20.
TEST_CASE("recall model: its heads keep their scores up to a million tokens of distance", "[recall]") {
    namespace d = test::recall_detail;
    const recall_fixture f = load_recall_model({});
    const model& m = *f.m;
    const auto& L0 = m.weights().layers[0];
    const auto& L1 = m.weights().layers[1];
    const double n2 = d::norm_factor(2), n3 = d::norm_factor(3);
    REQUIRE(L0.wq.type == kernels::ggml_type::f32);
    REQUIRE(L1.wq.type == kernels::ggml_type::f32);

    // Previous-token head: the query at position 2^20 against every earlier position.
    const int64_t i = int64_t{1} << 20;
    const std::vector<float> q = head_vector(m, L0.wq, 0, {d::CONST}, n2, i);
    std::vector<float> s(static_cast<size_t>(i + 1));
    for (int64_t j = 0; j <= i; ++j) s[static_cast<size_t>(j)] = score(q, head_vector(m, L0.wk, 0, {d::CONST}, n2, j));
    const float top = s[static_cast<size_t>(i - 1)];
    float runner_up = -1e30f;
    double off = 0;  // softmax weight off the previous token
    for (int64_t j = 0; j <= i; ++j) {
        if (j == i - 1) continue;
        runner_up = std::max(runner_up, s[static_cast<size_t>(j)]);
        off += std::exp(static_cast<double>(s[static_cast<size_t>(j)] - top));
    }
    CHECK(top == Approx(16 * 36).epsilon(0.01));
    CHECK(top - runner_up > 18.0f);  // 20.4 by construction
    CHECK(off < 1e-7);

    // Induction head: a match at distance 2^20 against the sink, for every key slot.
    const std::vector<float> sink_k = head_vector(m, L1.wk, 0, {d::BOSD}, n3, 0);
    for (int k = 0; k < 32; ++k) {
        const int g = d::slot_head(k);
        const std::vector<float> qk = head_vector(m, L1.wq, 2 * g, {d::TOKKEY + k, d::CONST}, n3, i);
        const std::vector<float> kk = head_vector(m, L1.wk, g, {d::PREV + k}, n3, 0);
        const std::vector<float> sk = g == 0 ? sink_k : head_vector(m, L1.wk, 1, {d::BOSD}, n3, 0);
        const float sink = score(qk, sk);
        const float match_far = score(qk, kk);
        const float match_near = score(qk, head_vector(m, L1.wk, g, {d::PREV + k}, n3, i - 1000));
        INFO("key slot " << k);
        CHECK(sink == Approx(30).epsilon(0.01));
        CHECK(match_near == Approx(100).epsilon(0.01));
        CHECK(match_far - sink > 18.0f);  // cos(1.05) * 100 - 30 = 20 on the pair-16 slots
        // Another key's PREV never matches.
        const std::vector<float> other = head_vector(m, L1.wk, g, {d::PREV + (k ^ 1)}, n3, 0);
        CHECK(std::abs(score(qk, other)) < 0.01f);
    }
}

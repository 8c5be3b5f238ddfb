// The token sampler ([sampler]).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <set>
#include <vector>

#include "engine/sampler.h"

using namespace mnemos::engine;

namespace {

sampler_params greedy_params() {
    sampler_params p;
    p.temperature = 0.0f;
    return p;
}

// Temperature 1 and no truncation: draws follow softmax(logits).
sampler_params plain_params(uint64_t seed = 1) {
    sampler_params p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    return p;
}

std::vector<float> random_logits(size_t n_vocab, uint32_t seed) {
    std::vector<float> l(n_vocab);
    uint32_t x = seed;
    for (auto& v : l) {
        x = x * 1664525u + 1013904223u;
        v = static_cast<float>(x >> 8) / static_cast<float>(1u << 24) * 8.0f - 4.0f;
    }
    return l;
}

std::vector<token_id> draw(sampler& s, const std::vector<float>& logits, int n) {
    std::vector<token_id> out;
    for (int i = 0; i < n; ++i) {
        auto l = logits;
        out.push_back(s.sample(l, {}));
    }
    return out;
}

}  // namespace

TEST_CASE("greedy picks the argmax, ties to the lowest id", "[sampler]") {
    sampler s(greedy_params());
    std::vector<float> l = {0.1f, 2.0f, -1.0f, 1.9f};
    CHECK(s.sample(l, {}) == 1);
    std::vector<float> tie = {0.0f, 3.0f, 1.0f, 3.0f};
    CHECK(s.sample(tie, {}) == 1);
    auto big = random_logits(49152, 7);
    size_t argmax = 0;
    for (size_t i = 1; i < big.size(); ++i)
        if (big[i] > big[argmax]) argmax = i;
    CHECK(s.sample(big, {}) == static_cast<token_id>(argmax));
}

TEST_CASE("same seed gives the same sequence, different seeds differ", "[sampler]") {
    auto logits = random_logits(1000, 3);
    sampler_params p = plain_params(42);
    p.top_k = 100;
    sampler a(p), b(p);
    auto sa = draw(a, logits, 200);
    auto sb = draw(b, logits, 200);
    CHECK(sa == sb);
    p.seed = 43;
    sampler c(p);
    CHECK(draw(c, logits, 200) != sa);
    a.reset(42);
    CHECK(draw(a, logits, 200) == sa);
}

TEST_CASE("top_k = 1 equals greedy", "[sampler]") {
    sampler_params p = plain_params(9);
    p.top_k = 1;
    sampler s(p), g(greedy_params());
    for (uint32_t k = 0; k < 20; ++k) {
        auto logits = random_logits(5000, k);
        auto l1 = logits, l2 = logits;
        CHECK(s.sample(l1, {}) == g.sample(l2, {}));
    }
}

TEST_CASE("draws follow the softmax at temperature 1 without truncation", "[sampler]") {
    const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
    double z = 0.0;
    for (float l : logits) z += std::exp(l);
    sampler s(plain_params(123));
    const int n_draws = 20000;
    std::vector<int> counts(logits.size(), 0);
    for (int i = 0; i < n_draws; ++i) {
        auto l = logits;
        token_id t = s.sample(l, {});
        REQUIRE(t >= 0);
        REQUIRE(t < 5);
        counts[static_cast<size_t>(t)]++;
    }
    for (size_t i = 0; i < logits.size(); ++i) {
        INFO("token " << i);
        CHECK(std::abs(counts[i] / double(n_draws) - std::exp(logits[i]) / z) < 0.02);
    }
}

TEST_CASE("temperature sharpens the distribution", "[sampler]") {
    const std::vector<float> logits = {1.0f, 2.0f};
    sampler_params p = plain_params(5);
    p.temperature = 0.25f;  // p(1) = 1 / (1 + e^-4) ~ 0.982
    sampler s(p);
    int n_one = 0;
    for (token_id t : draw(s, logits, 5000)) n_one += t == 1;
    CHECK(std::abs(n_one / 5000.0 - 1.0 / (1.0 + std::exp(-4.0))) < 0.01);
}

TEST_CASE("top_p keeps the smallest nucleus", "[sampler]") {
    // probabilities ~ 0.5, 0.3, 0.15, 0.05
    const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
    sampler_params p = plain_params(77);
    p.top_p = 0.75f;  // 0.5 < 0.75 <= 0.8: keeps tokens 0 and 1
    sampler s(p);
    std::vector<int> counts(4, 0);
    for (token_id t : draw(s, logits, 5000)) counts[static_cast<size_t>(t)]++;
    CHECK(counts[2] == 0);
    CHECK(counts[3] == 0);
    CHECK(counts[0] > 0);
    CHECK(counts[1] > 0);
    CHECK(std::abs(counts[0] / 5000.0 - 0.5 / 0.8) < 0.03);  // renormalized over the nucleus

    p.top_p = 0.4f;  // the first token alone already reaches it
    sampler one(p);
    for (token_id t : draw(one, logits, 500)) CHECK(t == 0);
}

TEST_CASE("min_p drops tokens below min_p times the best", "[sampler]") {
    // probabilities ~ 0.5, 0.3, 0.15, 0.05; min_p 0.2 -> threshold 0.1 drops token 3 only
    const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
    sampler_params p = plain_params(11);
    p.min_p = 0.2f;
    sampler s(p);
    std::vector<int> counts(4, 0);
    for (token_id t : draw(s, logits, 5000)) counts[static_cast<size_t>(t)]++;
    CHECK(counts[3] == 0);
    CHECK(counts[2] > 0);
    CHECK(counts[1] > 0);
}

TEST_CASE("top_k keeps only the k best", "[sampler]") {
    auto logits = random_logits(20000, 99);
    std::vector<float> sorted = logits;
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    const float kth = sorted[9];
    sampler_params p = plain_params(3);
    p.top_k = 10;
    p.temperature = 5.0f;  // flat enough that truncation is what matters
    sampler s(p);
    std::set<token_id> seen;
    for (token_id t : draw(s, logits, 2000)) {
        CHECK(logits[static_cast<size_t>(t)] >= kth);
        seen.insert(t);
    }
    CHECK(seen.size() == 10);
}

TEST_CASE("penalties change the argmax", "[sampler]") {
    sampler_params p = greedy_params();
    p.repeat_penalty = 2.0f;
    sampler s(p);
    // token 0: 3.0 -> 1.5 (seen); token 1: 2.0 unseen
    std::vector<float> l = {3.0f, 2.0f, -1.0f};
    std::vector<token_id> hist = {0};
    CHECK(s.sample(l, hist) == 1);
    CHECK(l[0] == Approx(1.5f));
    // a negative logit is multiplied
    std::vector<float> neg = {-1.0f, -1.5f};
    CHECK(s.sample(neg, hist) == 1);
    CHECK(neg[0] == Approx(-2.0f));

    // only the last repeat_last_n tokens count
    sampler_params pw = p;
    pw.repeat_last_n = 2;
    sampler sw(pw);
    std::vector<float> l2 = {3.0f, 2.0f, -1.0f};
    std::vector<token_id> old_hist = {0, 2, 2};
    CHECK(sw.sample(l2, old_hist) == 0);

    // frequency: subtracted per occurrence; presence: once
    sampler_params pf = greedy_params();
    pf.frequency_penalty = 0.5f;
    sampler sf(pf);
    std::vector<float> l3 = {3.0f, 2.0f, 1.9f};
    std::vector<token_id> h3 = {0, 0, 0, 1};  // 0: 3 - 1.5 = 1.5, 1: 2 - 0.5 = 1.5, 2: 1.9
    CHECK(sf.sample(l3, h3) == 2);
    CHECK(l3[0] == Approx(1.5f));

    sampler_params pp = greedy_params();
    pp.presence_penalty = 1.0f;
    sampler sp(pp);
    std::vector<float> l4 = {3.0f, 2.5f};
    std::vector<token_id> h4 = {0, 0, 0, 0};  // 0: 3 - 1 = 2
    CHECK(sp.sample(l4, h4) == 1);
    CHECK(l4[0] == Approx(2.0f));
}

TEST_CASE("the allowed mask is respected", "[sampler]") {
    const size_t n_vocab = 130;  // spans three 64-bit words
    auto logits = random_logits(n_vocab, 5);
    logits[100] = 50.0f;  // the argmax
    std::vector<uint64_t> mask((n_vocab + 63) / 64, ~uint64_t(0));
    mask[100 / 64] &= ~(uint64_t(1) << (100 % 64));

    sampler g(greedy_params());
    auto lg = logits;
    token_id t = g.sample(lg, {}, mask.data());
    CHECK(t != 100);
    CHECK(t >= 0);

    sampler s(plain_params(8));
    for (int i = 0; i < 500; ++i) {
        auto l = logits;
        CHECK(s.sample(l, {}, mask.data()) != 100);
    }

    // only token 129 allowed
    std::vector<uint64_t> only(3, 0);
    only[2] = uint64_t(1) << (129 - 128);
    for (int i = 0; i < 50; ++i) {
        auto l = logits;
        CHECK(s.sample(l, {}, only.data()) == 129);
    }
    auto l = logits;
    CHECK(g.sample(l, {}, only.data()) == 129);
}

TEST_CASE("all tokens masked returns -1", "[sampler]") {
    auto logits = random_logits(100, 1);
    std::vector<uint64_t> none(2, 0);
    sampler g(greedy_params());
    auto l1 = logits;
    CHECK(g.sample(l1, {}, none.data()) == -1);
    sampler s(sampler_params{});
    auto l2 = logits;
    CHECK(s.sample(l2, {}, none.data()) == -1);
}

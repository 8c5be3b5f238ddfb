// Sparse attention's page selection (engine/src/summary_bound.h, engine/src/summary_search.h): the split-query
// bound against the reference formula, and the tree search against the brute-force top k over random
// summaries, exact within its budget and bounded in cost beyond it.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "engine/src/summary_bound.h"
#include "engine/src/summary_search.h"

using namespace mnemos::engine;

namespace {

// n_heads summaries [2][head_dim] (min then max) per node, min <= max, around `center` with spread `spread`.
std::vector<float> random_summaries(int32_t n_nodes, int n_heads, int hd, float spread, std::mt19937& rng) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> out(size_t(n_nodes) * n_heads * 2 * hd);
    for (int32_t n = 0; n < n_nodes; ++n)
        for (int h = 0; h < n_heads; ++h) {
            float* mn = &out[(size_t(n) * n_heads + h) * 2 * hd];
            for (int i = 0; i < hd; ++i) {
                const float a = nd(rng), b = a + spread * std::fabs(nd(rng));
                mn[i] = a, mn[hd + i] = b;
            }
        }
    return out;
}

// The levels above the pages: per group of 16 nodes the min of the mins and the max of the maxes.
std::vector<float> fold_level(const std::vector<float>& below, int64_t record, int hd) {
    const int64_t n_below = int64_t(below.size()) / record, n = (n_below + 15) / 16;
    std::vector<float> out(size_t(n * record));
    for (int64_t j = 0; j < n; ++j)
        for (int64_t c = j * 16; c < std::min(n_below, (j + 1) * 16); ++c)
            for (int64_t f = 0; f < record; ++f) {
                float& dst = out[size_t(j * record + f)];
                const float src = below[size_t(c * record + f)];
                const bool is_max = (f % (2 * hd)) >= hd;
                dst = c == j * 16 ? src : is_max ? std::max(dst, src) : std::min(dst, src);
            }
    return out;
}

struct tree_fixture {
    std::vector<float> pages, groups, supers;
    summary_tree tree;
    tree_fixture(std::vector<float> p, int n_heads, int hd) : pages(std::move(p)) {
        const int64_t record = int64_t(n_heads) * 2 * hd;
        groups = fold_level(pages, record, hd);
        supers = fold_level(groups, record, hd);
        tree.levels[0] = pages.data(), tree.levels[1] = groups.data(), tree.levels[2] = supers.data();
        tree.record_floats = record;
        tree.head_dim = hd;
    }
    // The reference bound of page pg: the best over heads and their g queries.
    float bound(int32_t pg, const std::vector<float>& q, int n_heads, int g) const {
        const int hd = tree.head_dim;
        float b = -INFINITY;
        for (int h = 0; h < n_heads; ++h)
            b = std::max(b, summary_bound_reference(&pages[size_t(pg * tree.record_floats + h * 2 * hd)],
                                                    &q[size_t(h * g * hd)], g, hd));
        return b;
    }
};

std::vector<float> random_query(int n, std::mt19937& rng) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> q(static_cast<size_t>(n));
    for (auto& x : q) x = rng() % 5 == 0 ? 0.0f : nd(rng);  // some exact zeros
    return q;
}

}  // namespace

TEST_CASE("summary bound: the split query's dot product equals the reference formula", "[sparse]") {
    std::mt19937 rng(11);
    for (int hd : {64, 128, 48, 17}) {
        for (int g : {1, 2, 4}) {
            const std::vector<float> sum = random_summaries(1, 1, hd, 0.5f, rng);
            const std::vector<float> q = random_query(g * hd, rng);
            std::vector<float> split(size_t(2 * g * hd));
            split_query(q.data(), g, hd, split.data());
            // Another summation order: |diff| <= 1e-5 * sum_i |q_i| max(|min_i|, |max_i|) (float rounding).
            float scale = 0;
            for (int j = 0; j < g; ++j) {
                float s = 0;
                for (int i = 0; i < hd; ++i)
                    s += std::fabs(q[size_t(j * hd + i)]) * std::max(std::fabs(sum[i]), std::fabs(sum[hd + i]));
                scale = std::max(scale, s);
            }
            const float ref = summary_bound_reference(sum.data(), q.data(), g, hd);
            const float got = summary_bound(sum.data(), split.data(), g, hd);
            INFO("head_dim " << hd << " g " << g << " ref " << ref << " got " << got);
            CHECK(std::fabs(got - ref) <= 1e-5f * scale + 1e-30f);
            // Small integers sum exactly in any order: equal bit for bit.
            std::vector<float> isum(sum.size()), iq(q.size());
            for (size_t i = 0; i < isum.size(); ++i) isum[i] = std::round(sum[i] * 4);
            for (int i = 0; i < hd; ++i) isum[size_t(hd + i)] = std::max(isum[size_t(hd + i)], isum[size_t(i)]);
            for (size_t i = 0; i < iq.size(); ++i) iq[i] = std::round(q[i] * 4);
            split_query(iq.data(), g, hd, split.data());
            CHECK(summary_bound(isum.data(), split.data(), g, hd) ==
                  summary_bound_reference(isum.data(), iq.data(), g, hd));
        }
    }
}

TEST_CASE("summary search: within its budget the pages found are the top k by bound", "[sparse]") {
    std::mt19937 rng(12);
    const int hd = 16, g = 2;
    for (int trial = 0; trial < 40; ++trial) {
        const int n_heads = 1 + trial % 2;
        const int32_t n_pages = 20 + int32_t(rng() % 1200);
        tree_fixture t(random_summaries(n_pages, n_heads, hd, 0.3f + 0.1f * float(trial % 5), rng), n_heads, hd);
        summary_search s;
        s.first = int32_t(rng() % 8);
        s.last = n_pages - int32_t(rng() % 8);
        s.k = 1 + int32_t(rng() % uint32_t(std::min(40, s.last - s.first)));
        s.n_heads = n_heads;
        s.g = g;
        s.budget = 1 << 20;  // never reached: exact
        const std::vector<float> q = random_query(n_heads * g * hd, rng);
        std::vector<float> split(q.size() * 2);
        split_query(q.data(), n_heads * g, hd, split.data());
        s.split = split.data();
        std::vector<summary_search_node> heap;
        std::vector<std::pair<float, int32_t>> best;
        search_top_pages(t.tree, s, heap, best);
        REQUIRE(int32_t(best.size()) == s.k);
        std::set<int32_t> chosen;
        float worst_chosen = INFINITY;
        for (const auto& [b, pg] : best) {
            REQUIRE(pg >= s.first);
            REQUIRE(pg < s.last);
            REQUIRE(chosen.insert(pg).second);
            worst_chosen = std::min(worst_chosen, t.bound(pg, q, n_heads, g));
        }
        // Every page left out bounds no higher than every page chosen (up to the rounding of the two formulas).
        float best_left = -INFINITY;
        for (int32_t pg = s.first; pg < s.last; ++pg)
            if (!chosen.count(pg)) best_left = std::max(best_left, t.bound(pg, q, n_heads, g));
        INFO("trial " << trial << " pages " << n_pages << " k " << s.k);
        CHECK(worst_chosen >= best_left - 1e-4f * (std::fabs(best_left) + 1.0f));
    }
}

TEST_CASE("summary search: flat bounds cost the budget, not the history; a page that stands out is still found",
          "[sparse]") {
    // 16384 pages whose keys differ by rounding only: every group bounds a hair above its pages, so an exact
    // best-first search opens nearly every group.
    std::mt19937 rng(13);
    const int hd = 16, g = 2, n_heads = 1;
    const int32_t n_pages = 16384, needle = 9001;
    std::vector<float> pages(size_t(n_pages) * 2 * hd);
    std::uniform_real_distribution<float> jitter(-1e-4f, 1e-4f);
    for (int32_t pg = 0; pg < n_pages; ++pg)
        for (int i = 0; i < hd; ++i) {
            const float base = i % 2 == 0 ? 1.0f : 0.0f;
            const float a = base + jitter(rng), b = base + jitter(rng);
            pages[size_t(pg) * 2 * hd + i] = std::min(a, b);
            pages[size_t(pg) * 2 * hd + hd + i] = std::max(a, b);
        }
    std::vector<float> q = random_query(g * hd, rng);
    q[0] = 1.0f;
    std::vector<float> split(q.size() * 2);
    split_query(q.data(), g, hd, split.data());
    summary_search s;
    s.first = 4, s.last = n_pages - 64, s.k = 32, s.g = g, s.split = split.data();
    std::vector<summary_search_node> heap;
    std::vector<std::pair<float, int32_t>> best;

    SECTION("an exact search scores most of the tree") {
        s.budget = 1 << 20;
        tree_fixture t(pages, n_heads, hd);
        CHECK(search_top_pages(t.tree, s, heap, best) > n_pages / 2);
    }
    SECTION("the budgeted search scores at most the top level, its budget and a few groups per page") {
        // One page holds a key far above the rest (a needle): its bound leads every level, it is found first.
        pages[size_t(needle) * 2 * hd + hd + 0] = 50.0f;  // q[0] = 1
        tree_fixture t(pages, n_heads, hd);
        s.budget = 1024;
        const int32_t n_top = (n_pages + 255) / 256;
        const int32_t n_scored = search_top_pages(t.tree, s, heap, best);
        CHECK(n_scored <= n_top + s.budget + 16 * 2 * s.k);
        REQUIRE(int32_t(best.size()) == s.k);
        std::set<int32_t> chosen;
        for (const auto& [b, pg] : best) {
            CHECK(pg >= s.first);
            CHECK(pg < s.last);
            CHECK(chosen.insert(pg).second);
        }
        CHECK(best[0].second == needle);
    }
}

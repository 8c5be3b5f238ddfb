// Paged attention kernels against the float reference on random pools.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/attention.h"

using namespace mnemos::kernels;

namespace {

struct pool_fixture {
    int n_layer = 2, page_size = 16, kv_dim;
    int64_t page_stride, layer_stride, v_offset;
    std::vector<uint16_t> data;
    std::vector<int32_t> pages;

    pool_fixture(int n_head_kv, int head_dim, int64_t n_tokens, uint32_t seed) : kv_dim(n_head_kv * head_dim) {
        layer_stride = 2LL * page_size * kv_dim;
        v_offset = static_cast<int64_t>(page_size) * kv_dim;
        page_stride = n_layer * layer_stride;
        const int64_t n_pages = (n_tokens + page_size - 1) / page_size;
        // Pages in scrambled order with unused pages between them.
        std::mt19937 rng(seed);
        for (int64_t i = 0; i < n_pages; ++i) pages.push_back(static_cast<int32_t>(2 * (n_pages - 1 - i) + 1));
        data.resize(static_cast<size_t>(2 * n_pages + 1) * page_stride);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        for (auto& v : data) v = fp32_to_fp16(nd(rng));
    }
    paged_kv_view view() const { return {data.data(), page_stride, layer_stride, v_offset, page_size, kv_dim}; }
};

}  // namespace

TEST_CASE("grouped attention equals the float reference", "[kernels][attention]") {
    // The kernel rounds q and the softmax weights to f16 (as f16-KV engines do);
    // the reference does not: |diff| <= 4e-3 * max|reference| (f16 epsilon ~1e-3, summed).
    struct shape {
        int n_head, n_head_kv, head_dim;
    };
    for (shape sh : {shape{8, 2, 64}, shape{4, 4, 64}, shape{8, 1, 128}, shape{4, 2, 32}, shape{6, 2, 24},
                     shape{8, 4, 8}, shape{16, 2, 16}}) {
        for (int64_t n_kv : {1, 15, 16, 17, 100, 333}) {
            pool_fixture pool(sh.n_head_kv, sh.head_dim, n_kv, static_cast<uint32_t>(n_kv + sh.head_dim));
            attention_shape s{sh.n_head, sh.n_head_kv, sh.head_dim, 1.0f / std::sqrt(float(sh.head_dim))};
            const int g = sh.n_head / sh.n_head_kv;
            std::mt19937 rng(7);
            std::normal_distribution<float> nd(0.0f, 2.0f);
            std::vector<float> q(static_cast<size_t>(sh.n_head) * sh.head_dim);
            for (auto& v : q) v = nd(rng);
            for (isa level : {isa::scalar, isa::avx2}) {
                if (!isa_supported(level)) continue;
                std::vector<float> scratch(static_cast<size_t>(g * n_kv)), out(q.size()), ref(q.size());
                for (int kh = 0; kh < sh.n_head_kv; ++kh) {
                    const int64_t o = static_cast<int64_t>(kh) * g * sh.head_dim;
                    attention_group(level, s, pool.view(), pool.pages.data(), 1, n_kv, q.data() + o, kh, out.data() + o,
                                    scratch.data());
                    for (int j = 0; j < g; ++j)
                        attention_head_reference(s, pool.view(), pool.pages.data(), 1, n_kv,
                                                 q.data() + o + j * sh.head_dim, kh * g + j,
                                                 ref.data() + o + j * sh.head_dim);
                }
                float max_ref = 0, max_diff = 0;
                for (size_t i = 0; i < ref.size(); ++i) {
                    REQUIRE(std::isfinite(out[i]));
                    max_ref = std::max(max_ref, std::fabs(ref[i]));
                    max_diff = std::max(max_diff, std::fabs(out[i] - ref[i]));
                }
                INFO("isa " << isa_name(level) << " heads " << sh.n_head << "/" << sh.n_head_kv << " dim "
                            << sh.head_dim << " n_kv " << n_kv << ": max diff " << max_diff);
                CHECK(max_diff <= 4e-3f * max_ref);
            }
        }
    }
}

TEST_CASE("segment attention equals per-head attention over the same positions", "[kernels][attention][sparse]") {
    // One segment [0, n) with the group's queries is the same computation as attention_group: bit-identical.
    // Split into runs not on page boundaries (one softmax over all): identical to attention_head.
    // Runs that skip positions equal the float reference over a page table holding only the kept pages
    // (4e-3 relative, as above).
    const int n_head = 8, n_head_kv = 2, head_dim = 64, g = n_head / n_head_kv;
    const int64_t n_kv = 333;
    pool_fixture pool(n_head_kv, head_dim, n_kv, 11);
    attention_shape s{n_head, n_head_kv, head_dim, 1.0f / std::sqrt(float(head_dim))};
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    std::vector<float> q(static_cast<size_t>(n_head) * head_dim);
    for (auto& v : q) v = nd(rng);
    for (isa level : {isa::scalar, isa::avx2}) {
        if (!isa_supported(level)) continue;
        std::vector<float> scratch(static_cast<size_t>(g * n_kv + 2 * g * (head_dim + 1))), out(q.size()),
            split(q.size()), head(q.size()), group(q.size());
        for (int kh = 0; kh < n_head_kv; ++kh) {
            const int64_t o = static_cast<int64_t>(kh) * g * head_dim;
            const attention_segment whole{pool.pages.data(), 0, n_kv, q.data() + o};
            attention_group_segments(level, s, pool.view(), &whole, 1, 1, kh, out.data() + o, scratch.data());
            const attention_segment parts[3] = {{pool.pages.data(), 0, 17, q.data() + o},
                                                {pool.pages.data(), 17, 100, q.data() + o},
                                                {pool.pages.data(), 117, n_kv - 117, q.data() + o}};
            attention_group_segments(level, s, pool.view(), parts, 3, 1, kh, split.data() + o, scratch.data());
            for (int j = 0; j < g; ++j)
                attention_head(level, s, pool.view(), pool.pages.data(), 1, n_kv, q.data() + o + j * head_dim,
                               kh * g + j, head.data() + o + j * head_dim, scratch.data());
            attention_group(level, s, pool.view(), pool.pages.data(), 1, n_kv, q.data() + o, kh, group.data() + o,
                            scratch.data());
        }
        for (size_t i = 0; i < q.size(); ++i) {
            REQUIRE(out[i] == group[i]);   // one run on a page boundary: attention_group itself
            REQUIRE(split[i] == head[i]);  // runs not on page boundaries: the one-softmax form
        }
        // Runs on page boundaries are attended one by one and merged by log-sum-exp: the weights are rounded
        // to f16 per run instead of once, so |diff| <= 4e-3 * max|head| (the f16 bound above).
        {
            std::vector<float> merged(q.size());
            std::vector<float> big_scratch(static_cast<size_t>(g * n_kv + 2 * g * (head_dim + 1) + g * head_dim));
            for (int kh = 0; kh < n_head_kv; ++kh) {
                const int64_t o = static_cast<int64_t>(kh) * g * head_dim;
                const attention_segment parts[3] = {{pool.pages.data(), 0, 16, q.data() + o},
                                                    {pool.pages.data(), 16, 96, q.data() + o},
                                                    {pool.pages.data(), 112, n_kv - 112, q.data() + o}};
                attention_group_segments(level, s, pool.view(), parts, 3, 1, kh, merged.data() + o, big_scratch.data());
            }
            float max_ref = 0, max_diff = 0;
            for (size_t i = 0; i < q.size(); ++i) {
                max_ref = std::max(max_ref, std::fabs(head[i]));
                max_diff = std::max(max_diff, std::fabs(merged[i] - head[i]));
            }
            INFO("merged runs: max diff " << max_diff);
            CHECK(max_diff <= 4e-3f * max_ref);
        }
        // Keep pages 0, 3 and 7..9 of the 21: against the reference over a table of just those pages.
        std::vector<int32_t> kept = {pool.pages[0], pool.pages[3], pool.pages[7], pool.pages[8], pool.pages[9]};
        const attention_segment runs[3] = {{pool.pages.data(), 0, 16, q.data()},
                                           {pool.pages.data(), 48, 16, q.data()},
                                           {pool.pages.data(), 112, 48, q.data()}};
        std::vector<float> sparse(static_cast<size_t>(g) * head_dim), ref(sparse.size());
        attention_group_segments(level, s, pool.view(), runs, 3, 0, 0, sparse.data(), scratch.data());
        float max_ref = 0, max_diff = 0;
        for (int j = 0; j < g; ++j) {
            attention_head_reference(s, pool.view(), kept.data(), 0, 80, q.data() + j * head_dim, j,
                                     ref.data() + j * head_dim);
        }
        for (size_t i = 0; i < ref.size(); ++i) {
            max_ref = std::max(max_ref, std::fabs(ref[i]));
            max_diff = std::max(max_diff, std::fabs(sparse[i] - ref[i]));
        }
        INFO("isa " << isa_name(level) << ": max diff " << max_diff);
        CHECK(max_diff <= 4e-3f * max_ref);
    }
}

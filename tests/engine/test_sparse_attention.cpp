// Sparse attention (engine/attention.h) on tiny generated models: the RoPE
// delta rotation against RoPE itself, full attention kept bit-identical
// within the budget, and sparse attention that selects every page equal to
// full attention up to rounding. Memory (needles far beyond the window) is
// tested on the analytic recall model in test_recall_model.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <random>

#include "engine/engine.h"
#include "engine/src/rope_rotation.h"
#include "kernels/cpu/thread_pool.h"
#include "tests/support/tiny_model.h"

using namespace mnemos;
using namespace mnemos::engine;

namespace {

std::shared_ptr<const model> sparse_test_model(int n_ctx_train, int n_embd = 128) {
    test::tiny_model_options o;
    o.n_layer = 2;
    o.n_embd = n_embd;
    o.n_head = 4;
    o.n_head_kv = 2;
    o.n_ff = 256;
    o.n_ctx = n_ctx_train;
    o.seed = 5;
    const std::string path =
        (std::filesystem::temp_directory_path() / ("mnemos-sparse-" + std::to_string(::getpid()) + ".gguf")).string();
    REQUIRE(test::write_tiny_model(path, o));
    auto m = model::load(path);
    REQUIRE(m.ok());
    std::filesystem::remove(path);
    return std::shared_ptr<const model>(std::move(m.value()));
}

// Logits of every prompt position (prefill only).
std::vector<std::vector<float>> all_logits(std::shared_ptr<const model> m, const engine_options& eo,
                                           const std::vector<token_id>& prompt, attention_report* report = nullptr) {
    auto e = engine::engine::create(m, eo);
    REQUIRE(e.ok());
    std::vector<std::vector<float>> out;
    request r;
    r.prompt = prompt;
    r.max_tokens = 0;
    r.on_logits = [&](int64_t, std::span<const float> lg) { out.emplace_back(lg.begin(), lg.end()); };
    r.on_finish = [&](const finish_info& fi) {
        REQUIRE(fi.error.ok());
        if (report) *report = fi.attention;
    };
    e.value()->submit(std::move(r));
    e.value()->run_until_idle();
    return out;
}

std::vector<token_id> random_prompt(int n, int n_vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<token_id> p(static_cast<size_t>(n));
    for (auto& t : p) t = static_cast<token_id>(3 + rng() % uint32_t(n_vocab - 3));
    return p;
}

}  // namespace

TEST_CASE("RoPE delta rotation equals RoPE at the shifted position", "[sparse]") {
    auto m = sparse_test_model(4096);
    kernels::thread_pool pool(1);
    kv_cache_options ko{m->hp().n_layer, m->hp().n_head_kv, m->hp().head_dim, 16, 4, 0, {}};
    auto kv = kv_cache::open(ko);
    REQUIRE(kv.ok());
    forward_context fwd(*m, *kv.value(), pool);
    const int half = m->hp().n_rot / 2;
    // omega_i as RoPE uses it: theta(pos = 1) of each pair.
    std::vector<float> c1(half), s1(half);
    fwd.rope_cache(1, c1.data(), s1.data());
    std::vector<double> omega(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i) omega[i] = std::atan2(s1[i], c1[i]);
    rope_rotation rot(omega, rope_kind::normal, m->hp().n_rot, m->hp().head_dim);
    // RoPE's own float angles drift with the position (a float running product, as other engines do), so the
    // bound grows with it: |R(d) R(p) x - R(p + d) x| <= 2e-3 * |x| for p + d up to 65536.
    std::vector<float> cs(static_cast<size_t>(2 * half)), cp(half), sp(half), cq(half), sq(half);
    for (int64_t p : {0, 7, 1000, 40000}) {
        for (int64_t d : {-7, 1, 333, -1000, 20000}) {
            if (p + d < 0) continue;
            fwd.rope_cache(p, cp.data(), sp.data());
            fwd.rope_cache(p + d, cq.data(), sq.data());
            rot.angles(d, cs.data());
            for (int i = 0; i < half; ++i) {
                // Rotating (cos, sin) of p by d must give (cos, sin) of p + d.
                const float c = cp[i] * cs[i] - sp[i] * cs[half + i];
                const float s = cp[i] * cs[half + i] + sp[i] * cs[i];
                INFO("p " << p << " d " << d << " pair " << i);
                REQUIRE(std::fabs(c - cq[i]) < 2e-3f);
                REQUIRE(std::fabs(s - sq[i]) < 2e-3f);
            }
        }
    }
}

TEST_CASE("sparse attention: within the window logits stay bit-identical; selecting every page matches full attention",
          "[sparse]") {
    auto m = sparse_test_model(4096);
    const auto prompt = random_prompt(700, m->hp().n_vocab, 9);
    engine_options full;
    full.n_threads = 2;
    full.n_ctx = 2048;
    full.attention.mode = attention_mode::full;
    const auto ref = all_logits(m, full, prompt);

    engine_options sp = full;
    sp.n_ctx = 256;  // automatic mode: sparse beyond 256 tokens
    sp.kv_bytes = 0;
    sp.attention.mode = attention_mode::automatic;
    sp.attention.n_sink = 32;
    sp.attention.n_window = 64;
    sp.attention.n_pages = 64;  // more than the history has: every page is selected, at its own position
    attention_report rep;
    const auto got = all_logits(m, sp, prompt, &rep);
    REQUIRE(rep.sparse);
    REQUIRE(got.size() == ref.size());
    // Positions inside n_ctx: the full-attention code path, bit for bit.
    for (size_t i = 0; i < 256; ++i) REQUIRE(got[i] == ref[i]);
    // Beyond: the same keys at the same positions through the segment kernel (another summation order):
    // |diff| <= 1e-3 * max|logit|.
    float max_diff = 0, max_abs = 0;
    for (size_t i = 256; i < got.size(); ++i)
        for (size_t j = 0; j < got[i].size(); ++j) {
            max_diff = std::max(max_diff, std::fabs(got[i][j] - ref[i][j]));
            max_abs = std::max(max_abs, std::fabs(ref[i][j]));
        }
    INFO("max diff " << max_diff << " of max " << max_abs);
    CHECK(max_diff <= 1e-3f * max_abs);
}

TEST_CASE("sparse attention: prefill and decode past a small trained context stay finite, with and without parking",
          "[sparse]") {
    auto m = sparse_test_model(160, 64);  // head_dim 16
    for (int n_prompt : {170, 300, 700}) {
        for (int resubmit = 0; resubmit < 3; ++resubmit) {
            engine_options eo;
            eo.n_threads = 1;
            eo.n_ctx = 160;
            eo.attention.n_sink = 16;
            eo.attention.n_window = 64;
            eo.attention.n_pages = 2;
            auto e = engine::engine::create(m, eo);
            REQUIRE(e.ok());
            const auto prompt = random_prompt(n_prompt, m->hp().n_vocab, uint32_t(n_prompt));
            // Rounds after the first reuse the earlier rounds' pages; with resubmit 2 the first round is a
            // shorter prefix that full attention serves.
            for (int round = 0; round <= resubmit; ++round) {
                request r;
                r.prompt = prompt;
                if (resubmit == 2 && round == 0) r.prompt.resize(150);
                const bool beyond = r.prompt.size() + 8 > 160;
                r.max_tokens = 8;
                r.ignore_eos = true;
                r.sampling.temperature = 0;
                bool finite = true;
                r.on_logits = [&](int64_t, std::span<const float> lg) {
                    for (float v : lg) finite = finite && std::isfinite(v);
                };
                finish_info fin;
                r.on_finish = [&](const finish_info& fi) { fin = fi; };
                e.value()->submit(std::move(r));
                e.value()->run_until_idle();
                INFO("prompt " << n_prompt << " round " << round << ": " << fin.error.to_string());
                REQUIRE(fin.error.ok());
                CHECK(finite);
                CHECK(fin.n_generated == 8);
                CHECK(fin.attention.sparse == beyond);
            }
        }
    }
}

TEST_CASE("sparse attention: within the budget every shared model's logits equal full attention bit for bit",
          "[model][sparse]") {
    // auto (the default) and sparse both leave a sequence inside the budget on the full-attention path.
    for (const char* name : {"stories260K-f32", "stories260K-f16", "stories260K-bf16", "llama-spm-r-q8_0",
                             "llama-spm-r-q4_0", "qwen2-bpe-r-q6_k", "smollm-bpe-r-q4_k_m"}) {
        auto loaded = model::load(std::string(MNEMOS_SHARED_DIR) + "/models/" + name + ".gguf");
        REQUIRE(loaded.ok());
        std::shared_ptr<const model> m(std::move(loaded.value()));
        const auto prompt = random_prompt(300, m->hp().n_vocab, 21);
        engine_options full;
        full.n_threads = 2;
        full.attention.mode = attention_mode::full;
        const auto ref = all_logits(m, full, prompt);
        for (attention_mode mode : {attention_mode::automatic, attention_mode::sparse}) {
            engine_options eo = full;
            eo.attention = attention_options{};
            eo.attention.mode = mode;
            attention_report rep;
            const auto got = all_logits(m, eo, prompt, &rep);
            INFO(name << " " << attention_mode_name(mode));
            CHECK(!rep.sparse);
            REQUIRE(got.size() == ref.size());
            for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == ref[i]);
        }
    }
}

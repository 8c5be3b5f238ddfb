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
#include "engine/src/sparse_attention.h"
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
    auto e = mnemos::engine::engine::create(m, eo);
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
            auto e = mnemos::engine::engine::create(m, eo);
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

namespace {

// RoPE "normal" of one head vector at pos, with the engine's own angles.
std::vector<float> rope_at(const forward_context& fwd, const std::vector<float>& x, int64_t pos, int n_rot) {
    std::vector<float> c(static_cast<size_t>(n_rot / 2)), s(c.size()), y = x;
    fwd.rope_cache(pos, c.data(), s.data());
    for (int i = 0; i < n_rot / 2; ++i) {
        y[2 * i] = x[2 * i] * c[i] - x[2 * i + 1] * s[i];
        y[2 * i + 1] = x[2 * i] * s[i] + x[2 * i + 1] * c[i];
    }
    return y;
}

}  // namespace

TEST_CASE("sparse attention re-positions sinks, selected pages and window exactly as keys rotated at virtual positions",
          "[sparse]") {
    // One layer by hand: keys written rotated at their real positions; the sparse kernel (query turned per run)
    // must equal a plain softmax over the same keys rotated at their virtual positions (sinks where they are,
    // selected pages right after them, the window after those), with the query at the window's end. Tolerance:
    // 5e-3 of the output's scale (f16 keys, f16-rounded query and weights on the kernel's side).
    auto m = sparse_test_model(4096);
    const hparams& hp = m->hp();
    const int hd = hp.head_dim, nkv = hp.n_head_kv, g = hp.n_head / nkv, n_rot = hp.n_rot;
    kv_cache_options ko{hp.n_layer, nkv, hd, 16, 64, 0, {}};
    auto kvr = kv_cache::open(ko);
    REQUIRE(kvr.ok());
    kv_cache& kv = *kvr.value();
    kernels::thread_pool pool(1);
    forward_context fwd(*m, kv, pool);
    const int64_t n = 40 * 16 + 7;  // the query is the last token
    kv_sequence seq;
    REQUIRE(kv.reserve(seq, int32_t(n)).ok());
    std::mt19937 rng(4);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<std::vector<float>> k_raw(size_t(n) * nkv), v_all(size_t(n) * nkv);
    for (int64_t t = 0; t < n; ++t)
        for (int kh = 0; kh < nkv; ++kh) {
            auto& kr = k_raw[size_t(t * nkv + kh)];
            auto& vr = v_all[size_t(t * nkv + kh)];
            kr.resize(size_t(hd)), vr.resize(size_t(hd));
            for (auto& x : kr) x = nd(rng);
            for (auto& x : vr) x = nd(rng);
            const auto kr_rot = rope_at(fwd, kr, t, n_rot);
            uint16_t* kd = kv.k_ptr(seq.pages[size_t(t / 16)], 0) + (t % 16) * hp.kv_dim() + kh * hd;
            uint16_t* vd = kv.v_ptr(seq.pages[size_t(t / 16)], 0) + (t % 16) * hp.kv_dim() + kh * hd;
            for (int i = 0; i < hd; ++i)
                kd[i] = kernels::fp32_to_fp16(kr_rot[size_t(i)]), vd[i] = kernels::fp32_to_fp16(vr[size_t(i)]);
        }
    std::vector<token_id> toks(size_t(n - 1), 5);
    REQUIRE(kv.commit(seq, toks).ok());  // hashes for the full pages; the query's row is written above
    const int64_t P = n - 1;
    std::vector<float> q_raw(size_t(hp.n_head) * hd), q_rot(q_raw.size());
    for (auto& x : q_raw) x = nd(rng);
    for (int h = 0; h < hp.n_head; ++h) {
        const std::vector<float> one(q_raw.begin() + h * hd, q_raw.begin() + (h + 1) * hd);
        const auto r = rope_at(fwd, one, P, n_rot);
        std::copy(r.begin(), r.end(), q_rot.begin() + h * hd);
    }

    attention_options ao;
    ao.mode = attention_mode::sparse;
    ao.n_sink = 32;
    ao.n_window = 64;
    ao.n_pages = 4;
    std::vector<double> omega(size_t(n_rot / 2));
    {
        std::vector<float> c(omega.size()), s(omega.size());
        fwd.rope_cache(1, c.data(), s.data());
        for (size_t i = 0; i < omega.size(); ++i) omega[i] = std::atan2(s[i], c[i]);
    }
    rope_rotation rot(omega, rope_kind::normal, n_rot, hd);
    sparse_attention sp(hp, ao, 16, 4096, rot);
    // The step that wrote the query's token: seq holds n - 1 tokens before it.
    seq.n_tokens = int32_t(n - 1);
    auto plan = sp.make_plan(seq, 1);
    REQUIRE(plan.active);
    seq.n_tokens = int32_t(n);
    sp.summarize(seq, plan.first_window_page, kv);
    sp.select(plan, seq, 0, q_rot.data(), &P, 1);
    const paged_kv_layout lay = kv.layout();
    const kernels::paged_kv_view view{kv.data(),    lay.page_stride, lay.layer_stride,
                                      lay.v_offset, lay.page_size,   lay.kv_dim};
    std::vector<float> scratch(sp.scratch_floats(1)), out(size_t(g) * hd);
    const int64_t vq = P - plan.shift;
    for (int kh = 0; kh < nkv; ++kh) {
        sp.attend(kernels::isa::scalar, plan, seq, view, 0, P, &q_rot[size_t(kh * g * hd)], kh, out.data(),
                  scratch.data());
        // The reference: (position, virtual position) of every key attended.
        std::vector<std::pair<int64_t, int64_t>> keys;
        for (int64_t t = 0; t < plan.n_sink_pages * 16; ++t) keys.push_back({t, t});
        for (int32_t i = 0; i < plan.n_selected; ++i) {
            const int32_t pg = plan.selected[size_t(kh * plan.n_selected + i)];
            for (int t = 0; t < 16; ++t) keys.push_back({pg * 16 + t, 32 + i * 16 + t});
        }
        for (int64_t t = int64_t(plan.first_window_page) * 16; t <= P; ++t) keys.push_back({t, t - plan.shift});
        float max_abs = 0, max_diff = 0;
        for (int j = 0; j < g; ++j) {
            const std::vector<float> qh(q_raw.begin() + (kh * g + j) * hd, q_raw.begin() + (kh * g + j + 1) * hd);
            const auto qv = rope_at(fwd, qh, vq, n_rot);
            std::vector<double> w;
            double mx = -1e30;
            for (const auto& [t, vt] : keys) {
                const auto kr = rope_at(fwd, k_raw[size_t(t * nkv + kh)], vt, n_rot);
                double d = 0;
                for (int i = 0; i < hd; ++i) d += double(qv[size_t(i)]) * kr[size_t(i)];
                w.push_back(d / std::sqrt(double(hd)));
                mx = std::max(mx, w.back());
            }
            double z = 0;
            for (auto& x : w) z += (x = std::exp(x - mx));
            for (int i = 0; i < hd; ++i) {
                double acc = 0;
                for (size_t e = 0; e < keys.size(); ++e)
                    acc += w[e] / z * v_all[size_t(keys[e].first * nkv + kh)][size_t(i)];
                max_abs = std::max(max_abs, float(std::fabs(acc)));
                max_diff = std::max(max_diff, float(std::fabs(acc - out[size_t(j * hd + i)])));
            }
        }
        INFO("KV head " << kh << ": max diff " << max_diff << " of " << max_abs << ", shift " << plan.shift);
        CHECK(max_diff <= 5e-3f * std::max(1.0f, max_abs));
    }
}

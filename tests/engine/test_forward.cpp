// The forward pass and scheduler on tiny generated models (every weight type,
// both architectures): against a naive float implementation written here,
// batched vs alone, chunked vs whole prefill, and prefix reuse vs recompute.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <random>

#include "engine/engine.h"
#include "tests/support/tiny_model.h"

using namespace mnemos;
using namespace mnemos::engine;
using kernels::ggml_type;

namespace {

std::string tmp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("mnemos-test-" + std::to_string(::getpid()) + "-" + name))
        .string();
}

std::shared_ptr<const model> make_model(const test::tiny_model_options& o, const std::string& name) {
    const std::string path = tmp_path(name + ".gguf");
    REQUIRE(test::write_tiny_model(path, o));
    auto m = model::load(path);
    INFO((m.ok() ? std::string() : m.error().to_string()));
    REQUIRE(m.ok());
    std::filesystem::remove(path);  // the mapping stays valid
    return std::shared_ptr<const model>(std::move(m.value()));
}

std::vector<float> dequant(const kernels::weight_view& w) {
    std::vector<float> out(static_cast<size_t>(w.n_rows * w.n_cols));
    for (int64_t r = 0; r < w.n_rows; ++r)
        kernels::dequantize_row(w.type, static_cast<const uint8_t*>(w.data) + r * w.row_bytes, &out[r * w.n_cols],
                                w.n_cols);
    return out;
}

// y[n_rows] = W x
void naive_mv(const kernels::weight_view& w, const std::vector<float>& wf, const float* x, float* y) {
    for (int64_t r = 0; r < w.n_rows; ++r) {
        double s = 0;
        for (int64_t c = 0; c < w.n_cols; ++c) s += double(wf[r * w.n_cols + c]) * x[c];
        y[r] = float(s);
    }
}

// Naive full forward of one sequence in float (KV in float), logits of every position.
std::vector<std::vector<float>> naive_forward(const model& m, const std::vector<token_id>& toks) {
    const hparams& hp = m.hp();
    const model_weights& W = m.weights();
    const int E = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), F = hp.n_ff, hd = hp.head_dim;
    const int T = static_cast<int>(toks.size());
    std::vector<std::vector<float>> K(hp.n_layer), Vv(hp.n_layer);
    std::vector<std::vector<float>> out;
    auto norm = [&](const float* x, const std::vector<float>& w, float* y) {
        double ss = 0;
        for (int i = 0; i < E; ++i) ss += double(x[i]) * x[i];
        const float sc = float(1.0 / std::sqrt(ss / E + hp.rms_eps));
        for (int i = 0; i < E; ++i) y[i] = x[i] * sc * w[i];
    };
    auto rope = [&](float* v, int n_heads, int pos) {
        for (int h = 0; h < n_heads; ++h)
            for (int i = 0; i < hp.n_rot / 2; ++i) {
                const double th = pos * std::pow(double(hp.rope_freq_base), -2.0 * i / hp.n_rot);
                const int a = hp.rope == rope_kind::normal ? 2 * i : i;
                const int b = hp.rope == rope_kind::normal ? 2 * i + 1 : i + hp.n_rot / 2;
                const float x0 = v[h * hd + a], x1 = v[h * hd + b];
                v[h * hd + a] = float(x0 * std::cos(th) - x1 * std::sin(th));
                v[h * hd + b] = float(x0 * std::sin(th) + x1 * std::cos(th));
            }
    };
    struct deq {
        std::vector<float> q, k, v, o, g, u, d;
    };
    std::vector<deq> D(hp.n_layer);
    for (int l = 0; l < hp.n_layer; ++l) {
        const layer_weights& L = W.layers[l];
        D[l] = {dequant(L.wq),   dequant(L.wk), dequant(L.wv),  dequant(L.wo),
                dequant(L.gate), dequant(L.up), dequant(L.down)};
    }
    const std::vector<float> wout = dequant(W.output);
    const std::vector<float> wemb = dequant(W.token_embd);
    for (int t = 0; t < T; ++t) {
        std::vector<float> x(wemb.begin() + toks[t] * E, wemb.begin() + (toks[t] + 1) * E), xn(E), q(Q), k(KV), v(KV),
            att(Q), tmp(std::max(E, F)), g(F), u(F);
        for (int l = 0; l < hp.n_layer; ++l) {
            const layer_weights& L = W.layers[l];
            norm(x.data(), L.attn_norm, xn.data());
            naive_mv(L.wq, D[l].q, xn.data(), q.data());
            naive_mv(L.wk, D[l].k, xn.data(), k.data());
            naive_mv(L.wv, D[l].v, xn.data(), v.data());
            if (hp.qkv_bias)
                for (int i = 0; i < Q; ++i) q[i] += L.bq[i];
            if (hp.qkv_bias)
                for (int i = 0; i < KV; ++i) k[i] += L.bk[i], v[i] += L.bv[i];
            rope(q.data(), hp.n_head, t);
            rope(k.data(), hp.n_head_kv, t);
            K[l].insert(K[l].end(), k.begin(), k.end());
            Vv[l].insert(Vv[l].end(), v.begin(), v.end());
            for (int h = 0; h < hp.n_head; ++h) {
                const int kh = h / (hp.n_head / hp.n_head_kv);
                std::vector<double> s(t + 1);
                double mx = -1e300;
                for (int j = 0; j <= t; ++j) {
                    double d = 0;
                    for (int i = 0; i < hd; ++i) d += double(q[h * hd + i]) * K[l][j * KV + kh * hd + i];
                    s[j] = d / std::sqrt(double(hd));
                    mx = std::max(mx, s[j]);
                }
                double sum = 0;
                for (auto& e : s) sum += (e = std::exp(e - mx));
                for (int i = 0; i < hd; ++i) {
                    double a = 0;
                    for (int j = 0; j <= t; ++j) a += s[j] * Vv[l][j * KV + kh * hd + i];
                    att[h * hd + i] = float(a / sum);
                }
            }
            naive_mv(L.wo, D[l].o, att.data(), tmp.data());
            for (int i = 0; i < E; ++i) x[i] += tmp[i];
            norm(x.data(), L.ffn_norm, xn.data());
            naive_mv(L.gate, D[l].g, xn.data(), g.data());
            naive_mv(L.up, D[l].u, xn.data(), u.data());
            for (int i = 0; i < F; ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
            naive_mv(L.down, D[l].d, g.data(), tmp.data());
            for (int i = 0; i < E; ++i) x[i] += tmp[i];
        }
        norm(x.data(), W.output_norm, xn.data());
        std::vector<float> lg(hp.n_vocab);
        naive_mv(W.output, wout, xn.data(), lg.data());
        out.push_back(std::move(lg));
    }
    return out;
}

struct run_result {
    std::vector<std::vector<float>> logits;  // every position, when all_logits
    finish_info fin;
};

// Runs prompts through one engine together; returns each one's logits.
std::vector<run_result> run_engine(mnemos::engine::engine& eng, const std::vector<std::vector<token_id>>& prompts,
                                   int32_t max_tokens = 0, bool all_logits = true) {
    std::vector<run_result> res(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
        request r;
        r.prompt = prompts[i];
        r.max_tokens = max_tokens;
        r.sampling.temperature = 0;
        r.ignore_eos = true;
        if (all_logits)
            r.on_logits = [&res, i](int64_t, std::span<const float> lg) {
                res[i].logits.emplace_back(lg.begin(), lg.end());
            };
        r.on_finish = [&res, i](const finish_info& f) { res[i].fin = f; };
        eng.submit(std::move(r));
    }
    eng.run_until_idle();
    return res;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    float m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

float max_abs(const std::vector<float>& a) {
    float m = 0;
    for (float v : a) m = std::max(m, std::fabs(v));
    return m;
}

std::vector<token_id> random_tokens(int n, int n_vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<token_id> t(n);
    for (auto& x : t) x = static_cast<token_id>(rng() % n_vocab);
    return t;
}

}  // namespace

TEST_CASE("forward pass equals a naive float implementation for every weight type", "[forward]") {
    // Tolerance relative to the largest |logit|: f32 weights differ only by the
    // f16 KV cache and summation order; quantized types also by the q8
    // quantization of activations (q8_0 / q8_k), as in other engines; q8_k has
    // one scale per 256 activations, so the k-quants see the coarsest rounding.
    // q8_0: the scalar and AVX2 kernels give 0.028 (llama) / 0.0298 (qwen2), the AVX-512 and AMX ones 0.0317
    // (llama): the summation order alone moves which activations round across a q8 step in this tiny model.
    struct tc {
        ggml_type t;
        float rel_tol;
    };
    const tc types[] = {{ggml_type::f32, 5e-3f},    {ggml_type::f16, 5e-3f},  {ggml_type::bf16, 5e-3f},
                        {ggml_type::q8_0, 3.5e-2f}, {ggml_type::q4_0, 5e-2f}, {ggml_type::q4_k, 8e-2f},
                        {ggml_type::q6_k, 8e-2f}};
    for (const char* arch : {"llama", "qwen2"}) {
        for (const tc& c : types) {
            test::tiny_model_options o;
            o.arch = arch;
            o.weight_type = c.t;
            o.tied_output = std::string(arch) == "qwen2";
            auto m = make_model(o, std::string(arch) + kernels::traits_of(c.t).name);
            engine_options eo;
            eo.n_threads = 2;
            auto eng = mnemos::engine::engine::create(m, eo);
            REQUIRE(eng.ok());
            const auto toks = random_tokens(37, m->hp().n_vocab, 7);
            const auto got = run_engine(**eng, {toks});
            const auto want = naive_forward(*m, toks);
            REQUIRE(got[0].logits.size() == want.size());
            float worst = 0;
            for (size_t p = 0; p < want.size(); ++p)
                worst = std::max(worst, max_abs_diff(got[0].logits[p], want[p]) / std::max(1e-3f, max_abs(want[p])));
            INFO(arch << " " << kernels::traits_of(c.t).name << ": worst relative error " << worst);
            CHECK(worst <= c.rel_tol);
        }
    }
}

TEST_CASE("batched sequences of different lengths equal each sequence alone", "[forward]") {
    test::tiny_model_options o;
    o.weight_type = ggml_type::q8_0;
    auto m = make_model(o, "batch");
    engine_options eo;
    eo.n_threads = 2;
    const std::vector<std::vector<token_id>> prompts = {random_tokens(5, m->hp().n_vocab, 1),
                                                        random_tokens(40, m->hp().n_vocab, 2),
                                                        random_tokens(17, m->hp().n_vocab, 3)};
    auto together = mnemos::engine::engine::create(m, eo);
    REQUIRE(together.ok());
    const auto batched = run_engine(**together, prompts, 6);
    for (size_t i = 0; i < prompts.size(); ++i) {
        auto alone_eng = mnemos::engine::engine::create(m, eo);
        const auto alone = run_engine(**alone_eng, {prompts[i]}, 6);
        REQUIRE(alone[0].logits.size() == batched[i].logits.size());
        for (size_t p = 0; p < alone[0].logits.size(); ++p)
            CHECK(max_abs_diff(alone[0].logits[p], batched[i].logits[p]) <=
                  1e-4f * std::max(1.0f, max_abs(alone[0].logits[p])));
        CHECK(alone[0].fin.tokens == batched[i].fin.tokens);
        CHECK(batched[i].fin.n_generated == 6);
        CHECK(batched[i].fin.reason == finish_reason::length);
    }
}

TEST_CASE("chunked prefill equals one-shot prefill", "[forward]") {
    test::tiny_model_options o;
    o.weight_type = ggml_type::q4_k;
    auto m = make_model(o, "chunk");
    const auto prompt = random_tokens(70, m->hp().n_vocab, 11);
    engine_options whole;
    whole.n_threads = 2;
    engine_options chunked = whole;
    chunked.max_batch_tokens = 7;
    auto a = mnemos::engine::engine::create(m, whole);
    auto b = mnemos::engine::engine::create(m, chunked);
    const auto ra = run_engine(**a, {prompt}, 4);
    const auto rb = run_engine(**b, {prompt}, 4);
    REQUIRE(ra[0].logits.size() == rb[0].logits.size());
    for (size_t p = 0; p < ra[0].logits.size(); ++p)
        CHECK(max_abs_diff(ra[0].logits[p], rb[0].logits[p]) <= 1e-4f * std::max(1.0f, max_abs(ra[0].logits[p])));
    CHECK(ra[0].fin.tokens == rb[0].fin.tokens);
}

TEST_CASE("prefix reuse gives the logits of a full recompute", "[forward][kv]") {
    for (ggml_type t : {ggml_type::f32, ggml_type::q6_k}) {
        test::tiny_model_options o;
        o.weight_type = t;
        auto m = make_model(o, "prefix");
        engine_options eo;
        eo.n_threads = 2;
        auto cached = mnemos::engine::engine::create(m, eo);
        REQUIRE(cached.ok());
        const auto shared = random_tokens(50, m->hp().n_vocab, 21);
        auto p1 = shared, p2 = shared;
        const auto t1 = random_tokens(9, m->hp().n_vocab, 22), t2 = random_tokens(13, m->hp().n_vocab, 23);
        p1.insert(p1.end(), t1.begin(), t1.end());
        p2.insert(p2.end(), t2.begin(), t2.end());
        run_engine(**cached, {p1}, 3, false);
        const auto second = run_engine(**cached, {p2}, 8, false);
        CHECK(second[0].fin.n_reused == 48);  // 3 full pages of the 50 shared tokens

        eo.prefix_cache = false;
        auto fresh = mnemos::engine::engine::create(m, eo);
        const auto full = run_engine(**fresh, {p2}, 8, false);
        CHECK(full[0].fin.n_reused == 0);
        CHECK(second[0].fin.tokens == full[0].fin.tokens);
        CHECK(second[0].fin.tokens.size() == 8);
    }
}

TEST_CASE("prefix reuse: reused-page logits equal recomputed logits", "[forward][kv]") {
    test::tiny_model_options o;
    o.weight_type = ggml_type::q8_0;
    auto m = make_model(o, "prefix-logits");
    engine_options eo;
    eo.n_threads = 2;
    auto eng = mnemos::engine::engine::create(m, eo);
    const auto prompt = random_tokens(45, m->hp().n_vocab, 5);
    run_engine(**eng, {prompt}, 1, false);  // warm the cache
    const auto reused = run_engine(**eng, {prompt}, 12, true);
    REQUIRE(reused[0].fin.n_reused == 32);
    eo.prefix_cache = false;
    auto fresh = mnemos::engine::engine::create(m, eo);
    const auto full = run_engine(**fresh, {prompt}, 12, true);
    REQUIRE(full[0].logits.size() == reused[0].logits.size() + 32);
    for (size_t p = 0; p < reused[0].logits.size(); ++p)
        CHECK(max_abs_diff(reused[0].logits[p], full[0].logits[p + 32]) <=
              1e-4f * std::max(1.0f, max_abs(full[0].logits[p + 32])));
    CHECK(reused[0].fin.tokens == full[0].fin.tokens);
}

TEST_CASE("malformed requests finish with an error, others are unaffected", "[forward]") {
    test::tiny_model_options o;
    auto m = make_model(o, "bad");
    engine_options eo;
    eo.n_threads = 1;
    eo.n_ctx = 64;
    eo.attention.mode = attention_mode::full;  // automatic mode would attend sparsely past n_ctx instead
    auto eng = mnemos::engine::engine::create(m, eo);
    const auto good = random_tokens(10, m->hp().n_vocab, 1);
    const std::vector<std::vector<token_id>> prompts = {
        {}, {0, m->hp().n_vocab}, random_tokens(80, m->hp().n_vocab, 2), good};
    const auto res = run_engine(**eng, prompts, 3, false);
    CHECK(res[0].fin.reason == finish_reason::error);
    CHECK(res[1].fin.reason == finish_reason::error);
    CHECK(res[1].fin.error.message().find("vocabulary") != std::string::npos);
    CHECK(res[2].fin.reason == finish_reason::error);
    CHECK(res[3].fin.reason == finish_reason::length);
    CHECK(res[3].fin.n_generated == 3);
}

TEST_CASE("cancellation and stop strings", "[forward]") {
    test::tiny_model_options o;
    auto m = make_model(o, "cancel");
    engine_options eo;
    eo.n_threads = 1;
    auto eng = mnemos::engine::engine::create(m, eo);
    request r;
    r.prompt = random_tokens(8, m->hp().n_vocab, 3);
    r.max_tokens = 1000;
    r.ignore_eos = true;
    r.sampling.temperature = 0;
    finish_info fin;
    int n_tokens = 0;
    r.on_token = [&](token_id, std::string_view) { ++n_tokens; };
    r.on_finish = [&](const finish_info& f) { fin = f; };
    const seq_id id = (*eng)->submit(std::move(r));
    for (int i = 0; i < 5; ++i) (*eng)->step();
    (*eng)->cancel(id);
    (*eng)->run_until_idle();
    CHECK(fin.reason == finish_reason::cancelled);
    CHECK(fin.n_generated < 10);
}

TEST_CASE("admission by KV budget: more sequences than the pool holds wait their turn, none fails", "[forward][kv]") {
    test::tiny_model_options o;
    auto m = make_model(o, "admission");
    engine_options eo;
    eo.n_threads = 1;
    eo.n_ctx = 256;
    eo.attention.mode = attention_mode::full;
    const size_t page_bytes = size_t(o.n_layer) * 2 * 16 * (o.n_embd / o.n_head * o.n_head_kv) * sizeof(uint16_t);
    eo.kv_bytes = 20 * page_bytes;  // 20 pages; each sequence below needs 8 (100 prompt + 20 generated tokens)
    auto eng = mnemos::engine::engine::create(m, eo);
    REQUIRE(eng.ok());
    REQUIRE((*eng)->kv().n_pages() == 20);
    std::vector<std::vector<token_id>> prompts;
    for (int i = 0; i < 8; ++i) prompts.push_back(random_tokens(100, m->hp().n_vocab, 100 + i));
    const auto together = run_engine(**eng, prompts, 20, true);
    CHECK((*eng)->stats().n_admission_waits > 0);
    for (size_t i = 0; i < prompts.size(); ++i) {
        INFO("sequence " << i << ": " << together[i].fin.error.message());
        REQUIRE(together[i].fin.reason == finish_reason::length);
        CHECK(together[i].fin.n_generated == 20);
        // The same logits as the sequence alone in a fresh engine (waiting changes nothing it computes).
        auto alone_eng = mnemos::engine::engine::create(m, eo);
        const auto alone = run_engine(**alone_eng, {prompts[i]}, 20, true);
        REQUIRE(alone[0].logits.size() == together[i].logits.size());
        for (size_t p = 0; p < alone[0].logits.size(); ++p)
            CHECK(max_abs_diff(alone[0].logits[p], together[i].logits[p]) <= 1e-4f);
    }
}

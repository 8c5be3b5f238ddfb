// Log-probabilities of sampled tokens (engine/logprobs.h, request::logprobs) on a tiny generated model: against a
// plain log-softmax of the raw logits that on_logits reports for the same positions.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <limits>

#include "engine/engine.h"
#include "tests/support/tiny_model.h"

using namespace mnemos;
using namespace mnemos::engine;

namespace {

std::shared_ptr<const model> tiny_model() {
    const std::string path =
        (std::filesystem::temp_directory_path() / ("mnemos-test-" + std::to_string(::getpid()) + "-logprobs.gguf"))
            .string();
    REQUIRE(test::write_tiny_model(path, test::tiny_model_options{}));
    auto m = model::load(path);
    REQUIRE(m.ok());
    std::filesystem::remove(path);  // the mapping stays valid
    return std::shared_ptr<const model>(std::move(m.value()));
}

// The plain log-softmax of one row, in double.
std::vector<double> log_softmax(const std::vector<float>& lg) {
    double mx = -std::numeric_limits<double>::infinity();
    for (float l : lg) mx = std::max(mx, double(l));
    double sum = 0;
    for (float l : lg) sum += std::exp(double(l) - mx);
    std::vector<double> out(lg.size());
    for (size_t i = 0; i < lg.size(); ++i) out[i] = double(lg[i]) - mx - std::log(sum);
    return out;
}

struct run {
    std::vector<std::vector<float>> rows;  // on_logits, every computed position
    std::vector<sampled_logprobs> streamed;
    finish_info fin;
};

engine_options one_thread(bool prefix_cache = true) {
    engine_options o;
    o.n_threads = 1;
    o.prefix_cache = prefix_cache;
    return o;
}

run generate(mnemos::engine::engine& eng, request r) {
    run out;
    r.on_logits = [&out](int64_t, std::span<const float> lg) { out.rows.emplace_back(lg.begin(), lg.end()); };
    r.on_logprobs = [&out](const sampled_logprobs& lp) { out.streamed.push_back(lp); };
    r.on_finish = [&out](const finish_info& f) { out.fin = f; };
    eng.submit(std::move(r));
    eng.run_until_idle();
    return out;
}

}  // namespace

TEST_CASE("logprobs are the log-softmax of the raw logits, before penalties and temperature", "[engine][logprobs]") {
    auto m = tiny_model();
    auto eng = mnemos::engine::engine::create(m, one_thread(false));
    REQUIRE(eng.ok());
    request r;
    r.prompt = m->tok().encode("Once upon a time, there was", true, false);
    r.max_tokens = 12;
    r.ignore_eos = true;
    r.sampling.temperature = 1.3f;  // sampling changes which token is drawn, never the reported distribution
    r.sampling.top_k = 0;
    r.sampling.repeat_penalty = 1.5f;
    r.sampling.presence_penalty = 1.0f;
    r.sampling.seed = 7;
    r.logprobs = true;
    r.top_logprobs = 5;
    const int32_t n_prompt = static_cast<int32_t>(r.prompt.size());
    run out = generate(*eng.value(), r);

    REQUIRE(out.fin.reason == finish_reason::length);
    REQUIRE(out.fin.tokens.size() == 12);
    REQUIRE(out.fin.logprobs.size() == out.fin.tokens.size());
    REQUIRE(out.streamed.size() == out.fin.tokens.size());
    // Rows: every prompt position, then one per generated token but the last. Generated token k was sampled from
    // row n_prompt - 1 + k.
    REQUIRE(out.rows.size() == size_t(n_prompt) + out.fin.tokens.size() - 1);
    // Tolerance: the engine accumulates in double and rounds the result to float; 1e-5 absolute covers that
    // rounding for logprobs of magnitude < 100.
    constexpr double tol = 1e-5;
    for (size_t k = 0; k < out.fin.tokens.size(); ++k) {
        const auto ref = log_softmax(out.rows[size_t(n_prompt) - 1 + k]);
        const sampled_logprobs& lp = out.fin.logprobs[k];
        INFO("token " << k);
        CHECK(lp.chosen.token == out.fin.tokens[k]);
        CHECK(std::fabs(lp.chosen.logprob - ref[size_t(lp.chosen.token)]) <= tol);
        CHECK(lp.chosen.logprob <= 0.0f);
        REQUIRE(lp.top.size() == 5);
        // The top 5 of the reference, in order.
        std::vector<int32_t> ids(ref.size());
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i);
        std::partial_sort(ids.begin(), ids.begin() + 5, ids.end(), [&](int32_t a, int32_t b) {
            return ref[size_t(a)] > ref[size_t(b)] || (ref[size_t(a)] == ref[size_t(b)] && a < b);
        });
        for (size_t j = 0; j < 5; ++j) {
            CHECK(lp.top[j].token == ids[j]);
            CHECK(std::fabs(lp.top[j].logprob - ref[size_t(ids[j])]) <= tol);
            if (j > 0) CHECK(lp.top[j].logprob <= lp.top[j - 1].logprob);
            if (lp.top[j].token == lp.chosen.token) CHECK(lp.top[j].logprob == lp.chosen.logprob);
        }
        CHECK(out.streamed[k].chosen.token == lp.chosen.token);
        CHECK(out.streamed[k].chosen.logprob == lp.chosen.logprob);
    }
}

TEST_CASE("logprobs are off by default, and top_logprobs 0 reports only the chosen token", "[engine][logprobs]") {
    auto m = tiny_model();
    auto eng = mnemos::engine::engine::create(m, one_thread());
    REQUIRE(eng.ok());
    request r;
    r.prompt = m->tok().encode("Lily and her dog", true, false);
    r.max_tokens = 4;
    r.ignore_eos = true;
    r.sampling.temperature = 0;
    run off = generate(*eng.value(), r);
    CHECK(off.fin.tokens.size() == 4);
    CHECK(off.fin.logprobs.empty());
    CHECK(off.streamed.empty());

    r.logprobs = true;
    run on = generate(*eng.value(), r);
    CHECK(on.fin.tokens == off.fin.tokens);  // reporting changes nothing that is sampled
    REQUIRE(on.fin.logprobs.size() == 4);
    for (const auto& lp : on.fin.logprobs) CHECK(lp.top.empty());
}

TEST_CASE("logprobs_of: NaN and -inf logits, ties, clamps", "[engine][logprobs]") {
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> lg = {0.0f, std::nanf(""), -inf, 0.0f, std::log(2.0f)};
    const sampled_logprobs lp = logprobs_of(lg, 3, 100);  // 100 clamps to the 4 real entries
    // Z = 1 + 1 + 2 = 4.
    CHECK(lp.chosen.logprob == Approx(std::log(0.25)).margin(1e-6));
    REQUIRE(lp.top.size() == 4);
    CHECK(lp.top[0].token == 4);
    CHECK(lp.top[0].logprob == Approx(std::log(0.5)).margin(1e-6));
    CHECK(lp.top[1].token == 0);  // a tie: lower id first
    CHECK(lp.top[2].token == 3);
    CHECK(lp.top[3].token == 2);
    CHECK(lp.top[3].logprob == -inf);
    CHECK(logprobs_of(lg, 1, 0).chosen.logprob == -inf);  // NaN is impossible
    CHECK(logprobs_of(lg, 9, 0).chosen.logprob == -inf);  // outside the vocabulary
    CHECK(logprobs_of(lg, 0, -3).top.empty());
}

TEST_CASE("reuse_prefix false computes every prompt position even when the prefix is cached", "[engine][logprobs]") {
    auto m = tiny_model();
    auto eng = mnemos::engine::engine::create(m, one_thread());
    REQUIRE(eng.ok());
    request r;
    r.prompt = m->tok().encode("Once upon a time, there was a little girl named Lily. She liked to play in the park.",
                               true, false);
    REQUIRE(r.prompt.size() > 20);  // more than one full page of 16
    r.max_tokens = 1;
    r.sampling.temperature = 0;
    run first = generate(*eng.value(), r);
    run cached = generate(*eng.value(), r);
    CHECK(cached.fin.n_reused >= 16);
    CHECK(cached.rows.size() == r.prompt.size() - size_t(cached.fin.n_reused));
    r.reuse_prefix = false;
    run again = generate(*eng.value(), r);
    CHECK(again.fin.n_reused == 0);
    REQUIRE(again.rows.size() == r.prompt.size());
    CHECK(again.fin.tokens == first.fin.tokens);
}

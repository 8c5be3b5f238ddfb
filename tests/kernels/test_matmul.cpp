// matmul against matmul_reference for every weight type, ISA level, thread
// count and many shapes (|err| <= 1e-4 of the sum of |terms| a float kernel
// adds; the scalar level exactly); the AVX-512 tiles with and without VNNI and
// the AMX tiles directly; outputs independent of the tile they fall in; plus a
// hidden benchmark ([.bench]).
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/internal.h"
#include "kernels/cpu/kernels.h"
#include "tests/kernels/kernel_cases.h"

using namespace mnemos::kernels;
using mnemos::test::all_types;

namespace {

struct weights {
    std::vector<uint8_t> data;
    std::vector<float> decoded;   // [n_rows, k]
    std::vector<float> term_mag;  // [n_rows, k]: magnitude of the float terms per element (error scale)
    weight_view view;
};

weights make_weights(std::mt19937& rng, ggml_type t, int64_t n_rows, int64_t k) {
    weights w;
    std::normal_distribution<float> g(0.0f, 0.5f);
    const size_t rb = row_size(t, k);
    w.data.resize(rb * static_cast<size_t>(n_rows));
    w.decoded.resize(static_cast<size_t>(n_rows * k));
    w.term_mag.resize(w.decoded.size());
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = 0; r < n_rows; ++r) {
        for (auto& v : row) v = g(rng);
        quantize_row(t, row.data(), w.data.data() + r * rb, k);
        dequantize_row(t, w.data.data() + r * rb, w.decoded.data() + r * k, k);
        for (int64_t i = 0; i < k; ++i) {
            float m = std::fabs(w.decoded[r * k + i]);
            if (t == ggml_type::q4_k)
                m += 2.0f * 63.0f *
                     fp16_to_fp32(reinterpret_cast<const block_q4_k*>(w.data.data() + r * rb)[i / 256].dmin);
            w.term_mag[r * k + i] = m;
        }
    }
    w.view = {t, w.data.data(), k, n_rows, rb};
    return w;
}

std::vector<isa> levels_to_test() {
    std::vector<isa> out = {isa::scalar};
    for (isa l : {isa::avx2, isa::avx512})
        if (isa_supported(l)) out.push_back(l);
    return out;
}

// Checks matmul (level, pool) against matmul_reference on one shape.
void check_shape(std::mt19937& rng, ggml_type t, int64_t k, int64_t n_rows, int64_t n_tok, int64_t ldy, isa level,
                 thread_pool& pool) {
    const weights w = make_weights(rng, t, n_rows, k);
    std::normal_distribution<float> g(0.0f, 2.0f);
    std::vector<float> x(static_cast<size_t>(n_tok * k));
    for (auto& v : x) v = g(rng);
    const float sentinel = 12345.0f;
    std::vector<float> y(static_cast<size_t>(n_tok * ldy), sentinel), yref(y.size(), sentinel);
    matmul(w.view, x.data(), n_tok, y.data(), ldy, pool, level);
    matmul_reference(w.view, x.data(), n_tok, yref.data(), ldy);

    // Magnitudes of the summed terms, with the activations as quantized.
    const ggml_type vt = vec_dot_type(t);
    std::vector<uint8_t> xq(row_size(vt, k));
    std::vector<float> xd(static_cast<size_t>(k));
    INFO(traits_of(t).name << " " << isa_name(level) << " threads=" << pool.n_threads() << " k=" << k
                           << " n_rows=" << n_rows << " n_tok=" << n_tok << " ldy=" << ldy);
    for (int64_t tok = 0; tok < n_tok; ++tok) {
        quantize_row(vt, x.data() + tok * k, xq.data(), k);
        dequantize_row(vt, xq.data(), xd.data(), k);
        for (int64_t r = 0; r < n_rows; ++r) {
            double mag = 0;
            for (int64_t i = 0; i < k; ++i) mag += static_cast<double>(w.term_mag[r * k + i]) * std::fabs(xd[i]);
            const float a = y[tok * ldy + r], b = yref[tok * ldy + r];
            if (level == isa::scalar)
                REQUIRE(a == b);  // same kernels, same order
            else
                REQUIRE(std::fabs(a - b) <= 1e-4 * mag + 1e-6);
        }
        for (int64_t r = n_rows; r < ldy; ++r) REQUIRE(y[tok * ldy + r] == sentinel);  // padding untouched
    }
}

}  // namespace

TEST_CASE("matmul matches matmul_reference", "[kernels][matmul]") {
    std::mt19937 rng(2024);
    thread_pool pool1(1), pool2(2);
    for (isa level : levels_to_test()) {
        for (thread_pool* pool : {&pool1, &pool2}) {
            for (ggml_type t : all_types) {
                const int64_t k = traits_of(t).block_size == 256 ? 512 : 96;
                for (int64_t n_tok : {1, 2, 3, 7, 16, 33, 100}) {
                    for (int64_t n_rows : {1, 6, 37, 70}) {
                        const int64_t ldy = n_rows + (n_tok % 3);
                        check_shape(rng, t, k, n_rows, n_tok, ldy, level, *pool);
                    }
                }
                check_shape(rng, t, traits_of(t).block_size == 1 ? 4099 : 4096, 9, 5, 9, level, *pool);
                check_shape(rng, t, 256, 130, 70, 131, level, *pool);  // several tiles both ways
            }
        }
    }
}

TEST_CASE("matmul of f32 weights with odd k", "[kernels][matmul]") {
    std::mt19937 rng(7);
    thread_pool pool(2);
    for (isa level : levels_to_test())
        for (int64_t k : {1, 7, 13, 64, 65})
            for (ggml_type t : {ggml_type::f32, ggml_type::f16, ggml_type::bf16})
                check_shape(rng, t, k, 11, 5, 12, level, pool);
}

TEST_CASE("matmul_multi equals separate matmuls", "[kernels][matmul]") {
    // Q/K/V-like targets of one input, with one whose activation type differs (done separately inside).
    std::mt19937 rng(11);
    const int64_t k = 512;
    const weights wq = make_weights(rng, ggml_type::q4_k, 72, k), wk = make_weights(rng, ggml_type::q6_k, 24, k),
                  wv = make_weights(rng, ggml_type::q8_0, 24, k), wo = make_weights(rng, ggml_type::q4_k, 9, k);
    for (int n_threads : {1, 2}) {
        thread_pool pool(n_threads);
        for (isa level : levels_to_test()) {
            for (int64_t n_tok : {1, 3, 70}) {
                std::vector<float> x(static_cast<size_t>(n_tok * k));
                std::normal_distribution<float> g(0.0f, 1.0f);
                for (auto& v : x) v = g(rng);
                const weights* ws[4] = {&wq, &wk, &wv, &wo};
                std::vector<float> ys[4], refs[4];
                matmul_target targets[4];
                for (int i = 0; i < 4; ++i) {
                    const int64_t ldy = ws[i]->view.n_rows + 1;
                    ys[i].assign(static_cast<size_t>(n_tok * ldy), 0.0f);
                    refs[i].assign(ys[i].size(), 0.0f);
                    targets[i] = {ws[i]->view, ys[i].data(), ldy};
                    matmul(ws[i]->view, x.data(), n_tok, refs[i].data(), ldy, pool, level);
                }
                matmul_multi(targets, 4, x.data(), n_tok, pool, level);
                for (int i = 0; i < 4; ++i) REQUIRE(ys[i] == refs[i]);
            }
        }
    }
}

TEST_CASE("matmul benchmark", "[.bench]") {
    std::mt19937 rng(1);
    thread_pool pool(2);
    struct shape {
        int64_t n_rows, k;
    };
    const ggml_type types[] = {ggml_type::q4_k, ggml_type::q6_k, ggml_type::q8_0, ggml_type::q4_0,
                               ggml_type::f32,  ggml_type::f16,  ggml_type::bf16};
    std::printf("%-6s %-7s %12s %7s %10s %10s\n", "type", "isa", "W [n x k]", "n_tok", "ms", "GOP/s");
    for (ggml_type t : types) {
        for (shape s : {shape{512, 512}, shape{1536, 512}, shape{512, 1536}}) {
            const weights w = make_weights(rng, t, s.n_rows, s.k);
            for (int64_t n_tok : {512, 1}) {
                std::vector<float> x(static_cast<size_t>(n_tok * s.k));
                std::normal_distribution<float> g(0.0f, 1.0f);
                for (auto& v : x) v = g(rng);
                std::vector<float> y(static_cast<size_t>(n_tok * s.n_rows));
                const int reps = n_tok == 1 ? 2000 : 20;
                double best = 1e30;
                for (int trial = 0; trial < 5; ++trial) {
                    const auto t0 = std::chrono::steady_clock::now();
                    for (int i = 0; i < reps; ++i) matmul(w.view, x.data(), n_tok, y.data(), s.n_rows, pool);
                    const double dt =
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
                    best = std::min(best, dt);
                }
                const double gops = 2.0 * static_cast<double>(s.n_rows * s.k * n_tok) / best * 1e-9;
                std::printf("%-6s %-7s %5lldx%-6lld %7lld %10.4f %10.1f\n", traits_of(t).name, isa_name(best_isa()),
                            static_cast<long long>(s.n_rows), static_cast<long long>(s.k),
                            static_cast<long long>(n_tok), best * 1e3, gops);
            }
        }
    }
}

TEST_CASE("AVX-512 tile kernels with and without VNNI match the reference (|err| <= 1e-4 of sum |terms|)",
          "[kernels][matmul][avx512]") {
    if (!isa_supported(isa::avx512)) {
        WARN("SKIP: this CPU has no AVX-512 F/BW/VL/DQ");
        return;
    }
    std::vector<bool> variants = {false};
    if (cpu_has_avx512_vnni())
        variants.push_back(true);
    else
        WARN("this CPU has no avx512_vnni: only the maddubs kernels are tested");
    std::mt19937 rng(512);
    std::normal_distribution<float> g(0.0f, 2.0f);
    for (bool vnni : variants) {
        for (ggml_type t : all_types) {
            const tile_fn fn = tile_kernel_avx512(t, vnni);
            REQUIRE(fn != nullptr);
            const int64_t bs = traits_of(t).block_size;
            // Odd and even block counts (q8_0 / q4_0 take two blocks per vector), rows and tokens past the
            // register block in both directions.
            for (int64_t k : {bs == 1 ? int64_t{37} : bs, 3 * bs, bs == 1 ? int64_t{256} : 8 * bs}) {
                const int64_t n_rows = 9, n_tok = 7, ldy = n_rows + 2;
                const weights w = make_weights(rng, t, n_rows, k);
                const ggml_type vt = vec_dot_type(t);
                const size_t xs = row_size(vt, k);
                std::vector<uint8_t> xq(xs * static_cast<size_t>(n_tok));
                std::vector<float> xf(static_cast<size_t>(k)), xd(static_cast<size_t>(k * n_tok));
                for (int64_t tok = 0; tok < n_tok; ++tok) {
                    for (auto& v : xf) v = g(rng);
                    quantize_row(vt, xf.data(), xq.data() + tok * xs, k);
                    dequantize_row(vt, xq.data() + tok * xs, xd.data() + tok * k, k);
                }
                std::vector<float> y(static_cast<size_t>(n_tok * ldy), 0.0f);
                fn(k, w.data.data(), w.view.row_bytes, xq.data(), xs, y.data(), ldy, n_rows, n_tok);
                INFO(traits_of(t).name << " vnni=" << vnni << " k=" << k);
                for (int64_t tok = 0; tok < n_tok; ++tok) {
                    for (int64_t r = 0; r < n_rows; ++r) {
                        const float ref =
                            vec_dot(isa::scalar, t, k, w.data.data() + r * w.view.row_bytes, xq.data() + tok * xs);
                        double mag = 0;
                        for (int64_t i = 0; i < k; ++i)
                            mag += static_cast<double>(w.term_mag[r * k + i]) * std::fabs(xd[tok * k + i]);
                        REQUIRE(std::fabs(y[tok * ldy + r] - ref) <= 1e-4 * mag + 1e-6);
                    }
                }
            }
        }
    }
}

namespace {

// Runs tile kernel fn on all of w x x (one call) and checks it against matmul_reference.
void check_tile(std::mt19937& rng, tile_fn fn, ggml_type t, int64_t k, int64_t n_rows, int64_t n_tok) {
    const weights w = make_weights(rng, t, n_rows, k);
    std::normal_distribution<float> g(0.0f, 2.0f);
    std::vector<float> x(static_cast<size_t>(n_tok * k));
    for (auto& v : x) v = g(rng);
    const ggml_type vt = vec_dot_type(t);
    const size_t xs = row_size(vt, k);
    std::vector<uint8_t> xq(xs * static_cast<size_t>(n_tok));
    std::vector<float> xd(static_cast<size_t>(n_tok * k));
    for (int64_t tok = 0; tok < n_tok; ++tok) {
        quantize_row(vt, x.data() + tok * k, xq.data() + tok * xs, k);
        dequantize_row(vt, xq.data() + tok * xs, xd.data() + tok * k, k);
    }
    const int64_t ldy = n_rows + 1;
    std::vector<float> y(static_cast<size_t>(n_tok * ldy), 0.0f), yref(y.size(), 0.0f);
    fn(k, w.data.data(), w.view.row_bytes, xq.data(), xs, y.data(), ldy, n_rows, n_tok);
    matmul_reference(w.view, x.data(), n_tok, yref.data(), ldy);
    INFO(traits_of(t).name << " k=" << k << " n_rows=" << n_rows << " n_tok=" << n_tok);
    for (int64_t tok = 0; tok < n_tok; ++tok) {
        for (int64_t r = 0; r < n_rows; ++r) {
            double mag = 0;
            for (int64_t i = 0; i < k; ++i)
                mag += static_cast<double>(w.term_mag[r * k + i]) * std::fabs(xd[tok * k + i]);
            REQUIRE(std::fabs(y[tok * ldy + r] - yref[tok * ldy + r]) <= 1e-4 * mag + 1e-6);
        }
    }
}

}  // namespace

TEST_CASE("AMX tile kernels match the reference (|err| <= 1e-4 of sum |terms|)", "[kernels][matmul][amx]") {
    if (!amx_supported()) {
        WARN("SKIP: no AMX-INT8 (with AVX-512 VNNI) on this CPU, or no tile state from the OS");
        return;
    }
    std::mt19937 rng(1616);
    for (ggml_type t : {ggml_type::q8_0, ggml_type::q4_0, ggml_type::q4_k, ggml_type::q6_k}) {
        const tile_fn fn = tile_kernel_amx(t);
        REQUIRE(fn != nullptr);
        const int64_t bs = traits_of(t).block_size;
        // Whole 16 x 16 blocks, partial strips (rows) and groups (tokens), odd block counts.
        for (int64_t k : {bs, 3 * bs, 8 * bs})
            for (int64_t n_rows : {1, 16, 37, 64})
                for (int64_t n_tok : {1, 3, 4, 5, 16, 17, 50}) check_tile(rng, fn, t, k, n_rows, n_tok);
    }
    REQUIRE(tile_kernel_amx(ggml_type::f16) == nullptr);
}

TEST_CASE("a tile kernel gives an output the same value whatever the tile it falls in", "[kernels][matmul]") {
    // The engine's results must not depend on batching: a token alone, in a small batch or in a prefill
    // tile, and a row in any block of rows, get bit-identical outputs.
    std::mt19937 rng(77);
    std::vector<std::pair<std::string, tile_fn>> kernels;
    for (ggml_type t : all_types) {
        if (isa_supported(isa::avx2))
            kernels.push_back({std::string("avx2 ") + traits_of(t).name, tile_kernel_avx2(t)});
        if (isa_supported(isa::avx512))
            kernels.push_back(
                {std::string("avx512 ") + traits_of(t).name, tile_kernel_avx512(t, cpu_has_avx512_vnni())});
        if (amx_supported() && tile_kernel_amx(t))
            kernels.push_back({std::string("amx ") + traits_of(t).name, tile_kernel_amx(t)});
    }
    for (ggml_type t : all_types) {
        const int64_t k = traits_of(t).block_size == 1 ? 100 : 3 * traits_of(t).block_size;
        const int64_t n_rows = 37, n_tok = 40;
        const weights w = make_weights(rng, t, n_rows, k);
        const ggml_type vt = vec_dot_type(t);
        const size_t xs = row_size(vt, k);
        std::vector<uint8_t> xq(xs * n_tok);
        std::vector<float> xf(static_cast<size_t>(k));
        std::normal_distribution<float> g(0.0f, 1.0f);
        for (int64_t tok = 0; tok < n_tok; ++tok) {
            for (auto& v : xf) v = g(rng);
            quantize_row(vt, xf.data(), xq.data() + tok * xs, k);
        }
        for (const auto& [name, fn] : kernels) {
            if (name.substr(name.find(' ') + 1) != traits_of(t).name) continue;
            std::vector<float> all(static_cast<size_t>(n_tok * n_rows)), part(all.size());
            fn(k, w.data.data(), w.view.row_bytes, xq.data(), xs, all.data(), n_rows, n_rows, n_tok);
            // Tokens one at a time and in threes, rows in blocks of 5 starting at an odd row.
            for (int64_t t0 = 0; t0 < n_tok; t0 += (t0 % 2 ? 1 : 3)) {
                const int64_t nt = std::min<int64_t>(t0 % 2 ? 1 : 3, n_tok - t0);
                for (int64_t r0 = 0; r0 < n_rows; r0 += 5) {
                    const int64_t nr = std::min<int64_t>(5, n_rows - r0);
                    fn(k, w.data.data() + r0 * w.view.row_bytes, w.view.row_bytes, xq.data() + t0 * xs, xs,
                       part.data() + t0 * n_rows + r0, n_rows, nr, nt);
                }
            }
            INFO(name);
            REQUIRE(part == all);
        }
    }
}

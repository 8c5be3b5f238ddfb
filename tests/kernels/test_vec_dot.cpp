// Row dot products: the reference against a double-precision dot of the
// dequantized rows, every SIMD level against the reference, and the f16 vector
// primitives against scalar code.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/internal.h"
#include "kernels/cpu/kernels.h"
#include "tests/kernels/kernel_cases.h"

using namespace mnemos::kernels;
using mnemos::test::all_types;
using mnemos::test::simd_levels;

namespace {

std::vector<float> random_vec(std::mt19937& rng, int64_t n, float scale = 1.0f) {
    std::normal_distribution<float> g(0.0f, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& e : v) e = g(rng);
    return v;
}

// A quantized weight row and activation row with the double dot of their decoded values and the sum of the
// magnitudes of the terms a float implementation adds (the error scale).
struct dot_case {
    std::vector<uint8_t> w, x;
    double exact = 0, magnitude = 0;
};

dot_case make_case(std::mt19937& rng, ggml_type t, int64_t n) {
    dot_case c;
    const ggml_type vt = vec_dot_type(t);
    const std::vector<float> wf = random_vec(rng, n), xf = random_vec(rng, n, 3.0f);
    c.w.resize(row_size(t, n));
    c.x.resize(row_size(vt, n));
    quantize_row(t, wf.data(), c.w.data(), n);
    quantize_row(vt, xf.data(), c.x.data(), n);
    std::vector<float> wd(static_cast<size_t>(n)), xd(static_cast<size_t>(n));
    dequantize_row(t, c.w.data(), wd.data(), n);
    dequantize_row(vt, c.x.data(), xd.data(), n);
    for (int64_t i = 0; i < n; ++i) {
        double wm = std::fabs(wd[i]);
        if (t == ggml_type::q4_k) {
            // w = d*sc*q - dmin*m: both terms are summed separately, each bounded by |w| + dmin*63.
            wm += 2.0 * 63.0 * fp16_to_fp32(reinterpret_cast<const block_q4_k*>(c.w.data())[i / 256].dmin);
        }
        c.exact += static_cast<double>(wd[i]) * xd[i];
        c.magnitude += wm * std::fabs(xd[i]);
    }
    return c;
}

}  // namespace

TEST_CASE("reference vec_dot equals the dot of the dequantized rows", "[kernels][vec_dot]") {
    std::mt19937 rng(42);
    for (ggml_type t : all_types) {
        for (int64_t n : {256, 512, 1024, 4096}) {
            for (int rep = 0; rep < 5; ++rep) {
                const dot_case c = make_case(rng, t, n);
                const float got = vec_dot(isa::scalar, t, n, c.w.data(), c.x.data());
                INFO(traits_of(t).name << " n=" << n);
                REQUIRE(std::fabs(got - c.exact) <= 1e-4 * c.magnitude + 1e-6);
            }
        }
    }
}

TEST_CASE("SIMD vec_dot matches the reference (rel. err < 1e-4 of sum |terms|)", "[kernels][vec_dot]") {
    std::mt19937 rng(43);
    for (isa level : simd_levels()) {
        for (ggml_type t : all_types) {
            std::vector<int64_t> sizes = {256, 512, 768, 1024, 1536, 4096};
            if (traits_of(t).block_size == 32) sizes.insert(sizes.end(), {32, 64, 96, 160});
            if (traits_of(t).block_size == 1) sizes.insert(sizes.end(), {1, 3, 7, 8, 9, 15, 17, 33, 100});
            for (int64_t n : sizes) {
                for (int rep = 0; rep < 5; ++rep) {
                    const dot_case c = make_case(rng, t, n);
                    const float ref = vec_dot(isa::scalar, t, n, c.w.data(), c.x.data());
                    const float got = vec_dot(level, t, n, c.w.data(), c.x.data());
                    INFO(isa_name(level) << " " << traits_of(t).name << " n=" << n);
                    REQUIRE(std::fabs(got - ref) <= 1e-4 * c.magnitude + 1e-6);
                }
            }
        }
    }
}

TEST_CASE("dot_f16_f32 / axpy_f16 match scalar code", "[kernels][vec_dot]") {
    std::mt19937 rng(44);
    std::vector<isa> levels = simd_levels();
    levels.push_back(isa::scalar);
    for (isa level : levels) {
        for (int64_t n : {0, 1, 5, 8, 15, 16, 17, 31, 64, 100, 1000, 4097}) {
            const std::vector<float> af = random_vec(rng, n), b = random_vec(rng, n);
            std::vector<uint16_t> a(static_cast<size_t>(n));
            for (int64_t i = 0; i < n; ++i) a[i] = fp32_to_fp16(af[i]);
            double exact = 0, mag = 0;
            for (int64_t i = 0; i < n; ++i) {
                exact += static_cast<double>(fp16_to_fp32(a[i])) * b[i];
                mag += std::fabs(static_cast<double>(fp16_to_fp32(a[i])) * b[i]);
            }
            INFO(isa_name(level) << " n=" << n);
            REQUIRE(std::fabs(dot_f16_f32(level, n, a.data(), b.data()) - exact) <= 1e-5 * mag + 1e-7);

            const float alpha = 0.7f;
            std::vector<float> y = random_vec(rng, n), y0 = y;
            axpy_f16(level, n, alpha, a.data(), y.data());
            for (int64_t i = 0; i < n; ++i) {
                const double want = y0[i] + static_cast<double>(alpha) * fp16_to_fp32(a[i]);
                // one or two roundings of a float expression
                REQUIRE(std::fabs(y[i] - want) <= 2.5e-7 * (std::fabs(y0[i]) + std::fabs(alpha * fp16_to_fp32(a[i]))));
            }
        }
    }
}

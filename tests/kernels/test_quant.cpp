// Conversions and the GGML quantization formats: exhaustive f16/bf16 checks,
// hand-built blocks with known values, and quantize -> dequantize error bounds.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/internal.h"
#include "kernels/cpu/kernels.h"
#include "tests/kernels/kernel_cases.h"

using namespace mnemos::kernels;
using mnemos::test::simd_levels;

namespace {

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

bool is_nan16(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

// The value of a half, computed from the definition.
double half_value(uint16_t h) {
    const int sign = h >> 15, e = (h >> 10) & 31, m = h & 0x3ff;
    const double v = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
    return sign ? -v : v;
}

}  // namespace

TEST_CASE("fp16_to_fp32 is exact for all 65536 halves and round-trips", "[kernels][convert]") {
    for (uint32_t h = 0; h < 65536; ++h) {
        const auto h16 = static_cast<uint16_t>(h);
        const float f = fp16_to_fp32(h16);
        const int e = (h >> 10) & 31;
        if (e == 31) {
            if (h & 0x3ff) {
                REQUIRE(std::isnan(f));
                const uint16_t back = fp32_to_fp16(f);
                REQUIRE(is_nan16(back));
                REQUIRE((back & 0x8000) == (h & 0x8000));
            } else {
                REQUIRE(std::isinf(f));
                REQUIRE(fp32_to_fp16(f) == h16);
            }
            continue;
        }
        REQUIRE(static_cast<double>(f) == half_value(h16));
        REQUIRE(std::signbit(f) == ((h & 0x8000) != 0));
        REQUIRE(fp32_to_fp16(f) == h16);
    }
}

TEST_CASE("fp32_to_fp16 rounds to nearest even between every pair of halves", "[kernels][convert]") {
    for (uint32_t h = 0; h < 0x7bff; ++h) {
        for (uint32_t sign : {0u, 0x8000u}) {
            const auto lo = static_cast<uint16_t>(h | sign), hi = static_cast<uint16_t>((h + 1) | sign);
            const float a = fp16_to_fp32(lo), b = fp16_to_fp32(hi);
            const float mid = (a + b) * 0.5f;  // exact: needs 12 significant bits
            REQUIRE(static_cast<double>(mid) == (half_value(lo) + half_value(hi)) / 2);
            const uint16_t even = (h & 1) ? hi : lo;
            REQUIRE(fp32_to_fp16(mid) == even);
            REQUIRE(fp32_to_fp16(std::nextafter(mid, a)) == lo);
            REQUIRE(fp32_to_fp16(std::nextafter(mid, b)) == hi);
        }
    }
}

TEST_CASE("fp32_to_fp16 edge cases", "[kernels][convert]") {
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(fp32_to_fp16(65504.0f) == 0x7bff);
    CHECK(fp32_to_fp16(std::nextafter(65520.0f, 0.0f)) == 0x7bff);
    CHECK(fp32_to_fp16(65520.0f) == 0x7c00);  // tie between 65504 (odd) and inf
    CHECK(fp32_to_fp16(1e10f) == 0x7c00);
    CHECK(fp32_to_fp16(-1e10f) == 0xfc00);
    CHECK(fp32_to_fp16(inf) == 0x7c00);
    CHECK(fp32_to_fp16(-inf) == 0xfc00);
    CHECK(is_nan16(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN())));
    CHECK(is_nan16(fp32_to_fp16(std::numeric_limits<float>::signaling_NaN())));
    CHECK(fp32_to_fp16(0.0f) == 0x0000);
    CHECK(fp32_to_fp16(-0.0f) == 0x8000);
    CHECK(fp32_to_fp16(std::ldexp(1.0f, -24)) == 0x0001);                        // smallest subnormal
    CHECK(fp32_to_fp16(std::ldexp(1.0f, -25)) == 0x0000);                        // tie -> even (0)
    CHECK(fp32_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001);  // just above the tie
    CHECK(fp32_to_fp16(std::ldexp(3.0f, -25)) == 0x0002);                        // 1.5 ulp -> 2 (even)
    CHECK(fp32_to_fp16(1e-30f) == 0x0000);
    CHECK(fp32_to_fp16(std::numeric_limits<float>::denorm_min()) == 0x0000);
    CHECK(fp32_to_fp16(-std::numeric_limits<float>::denorm_min()) == 0x8000);
    CHECK(fp32_to_fp16(std::ldexp(1023.5f, -24)) == 0x0400);  // largest subnormal rounds up to the smallest normal
    CHECK(fp32_to_fp16(1.0f) == 0x3c00);
    CHECK(fp32_to_fp16(-2.0f) == 0xc000);
    CHECK(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie -> even
    CHECK(fp32_to_fp16(1.0f + std::ldexp(3.0f, -11)) == 0x3c02);  // tie -> even (up)
}

TEST_CASE("bf16 conversions", "[kernels][convert]") {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = bf16_to_fp32(static_cast<uint16_t>(h));
        REQUIRE(bits(f) == h << 16);
        if (std::isnan(f))
            REQUIRE(std::isnan(bf16_to_fp32(fp32_to_bf16(f))));
        else
            REQUIRE(fp32_to_bf16(f) == h);
    }
    // Round to nearest even on the 16 dropped bits.
    CHECK(fp32_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);  // tie -> even (down)
    CHECK(fp32_to_bf16(1.0f + std::ldexp(3.0f, -8)) == 0x3f82);  // tie -> even (up)
    CHECK(fp32_to_bf16(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.0f)) == 0x3f81);
    CHECK(fp32_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);  // rounds to inf
    CHECK(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST_CASE("SIMD convert_f32_to_f16 matches the scalar conversion", "[kernels][convert]") {
    std::vector<float> src;
    for (uint32_t h = 0; h < 0x7bff; h += 1) {
        const float a = fp16_to_fp32(static_cast<uint16_t>(h)), b = fp16_to_fp32(static_cast<uint16_t>(h + 1));
        const float mid = (a + b) * 0.5f;
        src.insert(src.end(), {a, mid, std::nextafter(mid, a), std::nextafter(mid, b), -mid});
    }
    src.insert(src.end(), {65520.0f, 1e10f, -1e10f, std::numeric_limits<float>::infinity(), 0.0f, -0.0f, 1e-30f,
                           std::ldexp(1.0f, -25), std::numeric_limits<float>::denorm_min()});
    std::mt19937 rng(7);
    std::uniform_int_distribution<uint32_t> any;
    for (int i = 0; i < 100000; ++i) {
        const uint32_t u = any(rng);
        float f;
        std::memcpy(&f, &u, 4);
        if (!std::isnan(f)) src.push_back(f);
    }
    const auto n = static_cast<int64_t>(src.size());
    std::vector<uint16_t> want(src.size()), got(src.size());
    convert_f32_to_f16(isa::scalar, n, src.data(), want.data());
    for (size_t i = 0; i < src.size(); ++i) REQUIRE(want[i] == fp32_to_fp16(src[i]));
    for (isa level : simd_levels()) {
        convert_f32_to_f16(level, n, src.data(), got.data());
        for (size_t i = 0; i < src.size(); ++i) REQUIRE(got[i] == want[i]);
    }
}

// ---------------------------------------------------------------------------
// Hand-built blocks
// ---------------------------------------------------------------------------

TEST_CASE("q8_0 and q4_0 blocks decode to known values", "[kernels][quant]") {
    block_q8_0 b8{};
    b8.d = fp32_to_fp16(0.5f);
    for (int j = 0; j < 32; ++j) b8.qs[j] = static_cast<int8_t>(j * 8 - 128);
    float out[32];
    dequantize_row(ggml_type::q8_0, &b8, out, 32);
    for (int j = 0; j < 32; ++j) REQUIRE(out[j] == 0.5f * static_cast<float>(j * 8 - 128));

    block_q4_0 b4{};
    b4.d = fp32_to_fp16(-2.0f);
    for (int j = 0; j < 16; ++j) b4.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
    dequantize_row(ggml_type::q4_0, &b4, out, 32);
    for (int j = 0; j < 16; ++j) {
        REQUIRE(out[j] == -2.0f * static_cast<float>(j - 8));
        REQUIRE(out[j + 16] == -2.0f * static_cast<float>(7 - j));
    }
}

TEST_CASE("q4_k block with 6-bit packed scales and mins decodes to known values", "[kernels][quant]") {
    // sub-block scales and mins, several above 15 so that the packed high bits matter
    const int sc[8] = {1, 17, 33, 63, 5, 40, 60, 63};
    const int mn[8] = {0, 3, 20, 63, 7, 48, 16, 33};
    block_q4_k b{};
    b.d = 0x3c00;     // 1.0
    b.dmin = 0x3800;  // 0.5
    // Packed by hand from the layout description (bytes 0-3: sc | top bits of sc[4..7], 4-7: mn | top bits
    // of mn[4..7], 8-11: low nibbles of sc[4..7] | low nibbles of mn[4..7] << 4).
    const uint8_t packed[12] = {1, 145, 225, 255, 0, 195, 84, 191, 117, 8, 12, 31};
    std::memcpy(b.scales, packed, 12);
    for (int c = 0; c < 4; ++c)
        for (int l = 0; l < 32; ++l) b.qs[32 * c + l] = static_cast<uint8_t>((l & 15) | (((l * 7 + c) & 15) << 4));
    float out[256];
    dequantize_row(ggml_type::q4_k, &b, out, 256);
    for (int c = 0; c < 4; ++c) {
        for (int l = 0; l < 32; ++l) {
            REQUIRE(out[64 * c + l] == static_cast<float>(sc[2 * c] * (l & 15)) - 0.5f * static_cast<float>(mn[2 * c]));
            REQUIRE(out[64 * c + 32 + l] ==
                    static_cast<float>(sc[2 * c + 1] * ((l * 7 + c) & 15)) - 0.5f * static_cast<float>(mn[2 * c + 1]));
        }
    }
    uint8_t usc[8], umn[8];
    unpack_q4_k_scales(packed, usc, umn);
    for (int j = 0; j < 8; ++j) {
        CHECK(usc[j] == sc[j]);
        CHECK(umn[j] == mn[j]);
    }
}

TEST_CASE("q6_k block with ql/qh layout decodes to known values", "[kernels][quant]") {
    block_q6_k b{};
    b.d = fp32_to_fp16(0.25f);
    const int8_t scales[16] = {-128, 127, -1, 1, 2, -3, 5, -8, 13, -21, 34, -55, 89, 100, -100, 7};
    std::memcpy(b.scales, scales, 16);
    int v[256];
    for (int e = 0; e < 256; ++e) v[e] = (e * 5 + 3) % 64;
    // Pack as GGML does: per half of 128, ql[l] = v[l] | v[l+64] << 4, ql[l+32] = v[l+32] | v[l+96] << 4,
    // qh[l] = the top 2 bits of v[l], v[l+32], v[l+64], v[l+96] at bits 0, 2, 4, 6.
    for (int h = 0; h < 2; ++h) {
        const int* q = v + 128 * h;
        for (int l = 0; l < 32; ++l) {
            b.ql[64 * h + l] = static_cast<uint8_t>((q[l] & 15) | ((q[l + 64] & 15) << 4));
            b.ql[64 * h + l + 32] = static_cast<uint8_t>((q[l + 32] & 15) | ((q[l + 96] & 15) << 4));
            b.qh[32 * h + l] = static_cast<uint8_t>((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) |
                                                    ((q[l + 96] >> 4) << 6));
        }
    }
    float out[256];
    dequantize_row(ggml_type::q6_k, &b, out, 256);
    for (int e = 0; e < 256; ++e)
        REQUIRE(out[e] == 0.25f * static_cast<float>(scales[e / 16]) * static_cast<float>(v[e] - 32));
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

namespace {

// Random rows whose blocks have very different magnitudes, plus special blocks (zeros, constants).
std::vector<float> random_row(std::mt19937& rng, int64_t n) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::uniform_real_distribution<float> mag(-6.0f, 4.0f);
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t b = 0; b < n / 32; ++b) {
        const float s = std::exp2(mag(rng));
        const int kind = static_cast<int>(rng() % 8);
        for (int j = 0; j < 32; ++j) {
            float v = u(rng) * s;
            if (kind == 0) v = 0.0f;
            if (kind == 1) v = s;             // constant positive
            if (kind == 2) v = std::fabs(v);  // all positive (q4_k min = 0)
            x[static_cast<size_t>(32 * b + j)] = v;
        }
    }
    return x;
}

}  // namespace

TEST_CASE("quantize -> dequantize error bounds", "[kernels][quant]") {
    std::mt19937 rng(1234);
    const int64_t n = 4096;
    for (int rep = 0; rep < 20; ++rep) {
        const std::vector<float> x = random_row(rng, n);
        std::vector<float> y(n);
        SECTION("f32 / f16 / bf16") {
            std::vector<uint8_t> buf(row_size(ggml_type::f32, n));
            quantize_row(ggml_type::f32, x.data(), buf.data(), n);
            dequantize_row(ggml_type::f32, buf.data(), y.data(), n);
            REQUIRE(std::memcmp(x.data(), y.data(), n * 4) == 0);
            quantize_row(ggml_type::f16, x.data(), buf.data(), n);
            dequantize_row(ggml_type::f16, buf.data(), y.data(), n);
            for (int64_t i = 0; i < n; ++i) REQUIRE(y[i] == fp16_to_fp32(fp32_to_fp16(x[i])));
            quantize_row(ggml_type::bf16, x.data(), buf.data(), n);
            dequantize_row(ggml_type::bf16, buf.data(), y.data(), n);
            for (int64_t i = 0; i < n; ++i) REQUIRE(std::fabs(y[i] - x[i]) <= std::ldexp(std::fabs(x[i]), -8));
        }
        SECTION("q8_0: |err| <= d/2 + 127 * |d - f16(d)|") {
            std::vector<block_q8_0> q(n / 32);
            quantize_row(ggml_type::q8_0, x.data(), q.data(), n);
            dequantize_row(ggml_type::q8_0, q.data(), y.data(), n);
            for (int64_t b = 0; b < n / 32; ++b) {
                float amax = 0;
                for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
                const float d = amax / 127.0f, dh = fp16_to_fp32(q[b].d);
                const float bound = 0.5f * d + 127.0f * std::fabs(d - dh) + 1e-7f * amax;
                for (int j = 0; j < 32; ++j) REQUIRE(std::fabs(y[32 * b + j] - x[32 * b + j]) <= bound);
            }
        }
        SECTION("q4_0: |err| <= |d| (one step at the clamped end), d/2 + f16 rounding elsewhere") {
            std::vector<block_q4_0> q(n / 32);
            quantize_row(ggml_type::q4_0, x.data(), q.data(), n);
            dequantize_row(ggml_type::q4_0, q.data(), y.data(), n);
            for (int64_t b = 0; b < n / 32; ++b) {
                float amax = 0;
                for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
                const float d = amax / 8.0f;
                for (int j = 0; j < 32; ++j) REQUIRE(std::fabs(y[32 * b + j] - x[32 * b + j]) <= d * 1.01f + 1e-7f);
            }
        }
        SECTION("q8_k: |err| <= |d|/2, bsums are the sums of 16 quants") {
            std::vector<block_q8_k> q(n / 256);
            quantize_row(ggml_type::q8_k, x.data(), q.data(), n);
            dequantize_row(ggml_type::q8_k, q.data(), y.data(), n);
            for (int64_t b = 0; b < n / 256; ++b) {
                for (int j = 0; j < 256; ++j)
                    REQUIRE(std::fabs(y[256 * b + j] - x[256 * b + j]) <= 0.5001f * std::fabs(q[b].d) + 1e-12f);
                for (int g = 0; g < 16; ++g) {
                    int s = 0;
                    for (int j = 0; j < 16; ++j) s += q[b].qs[16 * g + j];
                    REQUIRE(q[b].bsums[g] == s);
                }
            }
        }
        SECTION("q4_k: |err| <= one step (range/15) of the sub-block + scale quantization") {
            std::vector<block_q4_k> q(n / 256);
            quantize_row(ggml_type::q4_k, x.data(), q.data(), n);
            dequantize_row(ggml_type::q4_k, q.data(), y.data(), n);
            for (int64_t b = 0; b < n / 256; ++b) {
                float max_range = 0;
                for (int s = 0; s < 8; ++s) {
                    float lo = 0, hi = -1e30f;
                    for (int j = 0; j < 32; ++j) {
                        lo = std::min(lo, x[256 * b + 32 * s + j]);
                        hi = std::max(hi, x[256 * b + 32 * s + j]);
                    }
                    max_range = std::max(max_range, hi - lo);
                }
                for (int s = 0; s < 8; ++s) {
                    float lo = 0, hi = -1e30f;
                    for (int j = 0; j < 32; ++j) {
                        lo = std::min(lo, x[256 * b + 32 * s + j]);
                        hi = std::max(hi, x[256 * b + 32 * s + j]);
                    }
                    // the 6-bit scale/min of a small sub-block is coarse relative to the block's largest
                    const float bound = (hi - lo) / 15.0f + max_range / 60.0f + 1e-6f;
                    for (int j = 0; j < 32; ++j)
                        REQUIRE(std::fabs(y[256 * b + 32 * s + j] - x[256 * b + 32 * s + j]) <= bound);
                }
            }
        }
        SECTION("q6_k: |err| <= one step of the sub-block + scale quantization") {
            std::vector<block_q6_k> q(n / 256);
            quantize_row(ggml_type::q6_k, x.data(), q.data(), n);
            dequantize_row(ggml_type::q6_k, q.data(), y.data(), n);
            for (int64_t b = 0; b < n / 256; ++b) {
                float amax_block = 0;
                for (int j = 0; j < 256; ++j) amax_block = std::max(amax_block, std::fabs(x[256 * b + j]));
                for (int s = 0; s < 16; ++s) {
                    float amax = 0;
                    for (int j = 0; j < 16; ++j) amax = std::max(amax, std::fabs(x[256 * b + 16 * s + j]));
                    const float bound = amax / 32.0f + amax_block / 200.0f + 1e-7f;
                    for (int j = 0; j < 16; ++j)
                        REQUIRE(std::fabs(y[256 * b + 16 * s + j] - x[256 * b + 16 * s + j]) <= bound);
                }
            }
        }
    }
}

TEST_CASE("SIMD activation quantizers write the same bytes as quantize_row", "[kernels][quant]") {
    if (!isa_supported(isa::avx2))
        SUCCEED("no AVX2");
    else {
        std::mt19937 rng(99);
        for (int64_t n : {256, 512, 4096}) {
            for (int rep = 0; rep < 10; ++rep) {
                std::vector<float> x = random_row(rng, n);
                if (rep == 0) x[5] = -(x[200] = 30.0f);  // equal magnitudes: the first one sets the sign
                std::vector<uint8_t> a(row_size(ggml_type::q8_0, n)), b(a.size());
                quantize_row(ggml_type::q8_0, x.data(), a.data(), n);
                quantize_row_q8_0_avx2(x.data(), b.data(), n);
                REQUIRE(a == b);
                std::vector<uint8_t> c(row_size(ggml_type::q8_k, n)), d(c.size());
                quantize_row(ggml_type::q8_k, x.data(), c.data(), n);
                quantize_row_q8_k_avx2(x.data(), d.data(), n);
                REQUIRE(c == d);
            }
        }
    }
}

TEST_CASE("vec_dot_type and row sizes", "[kernels][quant]") {
    CHECK(vec_dot_type(ggml_type::q4_0) == ggml_type::q8_0);
    CHECK(vec_dot_type(ggml_type::q8_0) == ggml_type::q8_0);
    CHECK(vec_dot_type(ggml_type::q4_k) == ggml_type::q8_k);
    CHECK(vec_dot_type(ggml_type::q6_k) == ggml_type::q8_k);
    CHECK(vec_dot_type(ggml_type::f16) == ggml_type::f32);
    CHECK(vec_dot_type(ggml_type::bf16) == ggml_type::f32);
    CHECK(row_size(ggml_type::q4_k, 512) == 288);
    CHECK(row_size(ggml_type::q6_k, 256) == 210);
    CHECK(row_size(ggml_type::q8_k, 256) == sizeof(block_q8_k));
}

// CUDA kernels against the CPU references on random inputs. Every output
// buffer is poisoned (all bits set: f32 NaN) before the kernel runs, and every
// checked value must be finite. Without a CUDA device (or driver) each test
// prints a warning and returns: Catch2 v2 has no SKIP.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda/cuda_kernels.h"

using namespace mnemos::kernels;
namespace kc = mnemos::kernels::cuda;

namespace {

#define CUDA_OK(call)                                     \
    do {                                                  \
        const cudaError_t err_ = (call);                  \
        INFO("CUDA error: " << cudaGetErrorString(err_)); \
        REQUIRE(err_ == cudaSuccess);                     \
    } while (0)

bool have_device() {
    if (kc::device_count() > 0) return true;
    WARN("no CUDA device or driver: test skipped");
    return false;
}

template <class T>
struct dbuf {
    T* p = nullptr;
    size_t n = 0;
    explicit dbuf(size_t count) : n(count) {
        CUDA_OK(cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(1, n) * sizeof(T)));
    }
    explicit dbuf(const std::vector<T>& v) : dbuf(v.size()) { up(v); }
    ~dbuf() { cudaFree(p); }
    dbuf(const dbuf&) = delete;
    dbuf& operator=(const dbuf&) = delete;
    void up(const std::vector<T>& v) {
        REQUIRE(v.size() <= n);
        CUDA_OK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    }
    std::vector<T> down() const {
        std::vector<T> v(n);
        CUDA_OK(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
        return v;
    }
    void poison() { CUDA_OK(cudaMemset(p, 0xff, std::max<size_t>(1, n) * sizeof(T))); }
};

void device_sync() { CUDA_OK(cudaDeviceSynchronize()); }

std::vector<float> randn(size_t n, std::mt19937& rng, float sd = 1.0f) {
    std::normal_distribution<float> nd(0.0f, sd);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

float max_abs(const std::vector<float>& v) {
    float m = 0.0f;
    for (float x : v) m = std::max(m, std::fabs(x));
    return m;
}

// |got - want| <= tol everywhere, got finite; reports the first failure.
void check_close(const std::vector<float>& got, const std::vector<float>& want, float tol, const char* what) {
    REQUIRE(got.size() >= want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        if (std::isfinite(got[i]) && std::fabs(got[i] - want[i]) <= tol) continue;
        INFO(what << ": element " << i << " got " << got[i] << " want " << want[i] << " tol " << tol);
        REQUIRE(false);
    }
}

const ggml_type all_types[] = {ggml_type::f32,  ggml_type::f16,  ggml_type::bf16, ggml_type::q8_0,
                               ggml_type::q4_0, ggml_type::q4_k, ggml_type::q6_k};

// A random weight matrix of type t and its dequantized values (the reference's view of it).
struct weights {
    ggml_type type;
    int64_t n_rows, n_cols;
    size_t row_bytes;
    std::vector<uint8_t> bytes;
    std::vector<float> values;  // [n_rows, n_cols], dequantize_row of each row
    weights(ggml_type t, int64_t rows, int64_t cols, std::mt19937& rng)
        : type(t), n_rows(rows), n_cols(cols), row_bytes(row_size(t, cols)) {
        bytes.resize(row_bytes * rows);
        values.resize(static_cast<size_t>(rows * cols));
        for (int64_t r = 0; r < rows; ++r) {
            const std::vector<float> src = randn(static_cast<size_t>(cols), rng, 0.5f);
            quantize_row(t, src.data(), bytes.data() + r * row_bytes, cols);
            dequantize_row(t, bytes.data() + r * row_bytes, &values[r * cols], cols);
        }
    }
    weight_view view(const void* device_data) const { return {type, device_data, n_cols, n_rows, row_bytes}; }
};

}  // namespace

// ---------------------------------------------------------------------------
// Element-wise ops
// ---------------------------------------------------------------------------

TEST_CASE("cuda embedding equals dequantize_row", "[cuda]") {
    if (!have_device()) return;
    // Same formulas as the CPU; only FMA contraction differs: |diff| <= 1e-5 * max|ref|.
    std::mt19937 rng(1);
    for (ggml_type t : all_types) {
        INFO("type " << traits_of(t).name);
        const weights w(t, 37, 512, rng);
        dbuf<uint8_t> dw(w.bytes);
        const std::vector<int32_t> ids = {0, 36, 5, 5, 17, 40 /* out of range: zeros */, -1};
        dbuf<int32_t> did(ids);
        dbuf<float> out(ids.size() * 512);
        out.poison();
        CUDA_OK(kc::embedding(w.view(dw.p), did.p, static_cast<int64_t>(ids.size()), out.p, nullptr));
        device_sync();
        std::vector<float> want(ids.size() * 512, 0.0f);
        for (size_t i = 0; i < ids.size(); ++i)
            if (ids[i] >= 0 && ids[i] < 37) std::copy_n(&w.values[ids[i] * 512], 512, &want[i * 512]);
        check_close(out.down(), want, 1e-5f * max_abs(want), "embedding");
    }
}

TEST_CASE("cuda rmsnorm, swiglu and add equal their CPU definitions", "[cuda]") {
    if (!have_device()) return;
    std::mt19937 rng(2);
    for (int n : {64, 4096, 5120}) {
        const int64_t T = 7;
        const auto x = randn(static_cast<size_t>(T * n), rng, 3.0f);
        const auto w = randn(static_cast<size_t>(n), rng);
        dbuf<float> dx(x), dw(w), dy(x.size());
        dy.poison();
        CUDA_OK(kc::rmsnorm(dx.p, dw.p, dy.p, T, n, 1e-5f, nullptr));
        device_sync();
        std::vector<float> want(x.size());
        for (int64_t r = 0; r < T; ++r) {  // engine/src/forward.cpp's rmsnorm
            float ss = 0.0f;
            for (int i = 0; i < n; ++i) ss += x[r * n + i] * x[r * n + i];
            const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + 1e-5f);
            for (int i = 0; i < n; ++i) want[r * n + i] = x[r * n + i] * scale * w[i];
        }
        // Sums in a different order: |diff| <= 1e-5 * max|ref|.
        check_close(dy.down(), want, 1e-5f * max_abs(want), "rmsnorm");
    }
    const size_t n = 100003;
    const auto a = randn(n, rng, 4.0f), b = randn(n, rng);
    dbuf<float> da(a), db(b), dout(n);
    dout.poison();
    CUDA_OK(kc::swiglu(da.p, db.p, dout.p, static_cast<int64_t>(n), nullptr));
    device_sync();
    std::vector<float> want(n);
    for (size_t i = 0; i < n; ++i) want[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
    check_close(dout.down(), want, 1e-5f * max_abs(want), "swiglu");  // expf ulps
    dout.poison();
    CUDA_OK(kc::add(da.p, db.p, dout.p, static_cast<int64_t>(n), nullptr));
    device_sync();
    for (size_t i = 0; i < n; ++i) want[i] = a[i] + b[i];
    check_close(dout.down(), want, 0.0f, "add");  // exact
}

TEST_CASE("cuda rope equals the engine's rope", "[cuda]") {
    if (!have_device()) return;
    std::mt19937 rng(3);
    struct cfg {
        int head_dim, n_rot;
        kc::rope_mode mode;
        bool freq_mult, yarn;
    };
    const cfg cfgs[] = {{64, 64, kc::rope_mode::normal, false, false},
                        {128, 128, kc::rope_mode::neox, false, false},
                        {128, 64, kc::rope_mode::neox, true, false},
                        {128, 128, kc::rope_mode::normal, true, false},
                        {64, 64, kc::rope_mode::neox, false, true}};
    for (const cfg& c : cfgs) {
        INFO("head_dim " << c.head_dim << " n_rot " << c.n_rot << " neox " << (c.mode == kc::rope_mode::neox)
                         << " freq_mult " << c.freq_mult << " yarn " << c.yarn);
        const int n_head = 3, half = c.n_rot / 2;
        const std::vector<int32_t> pos = {0, 1, 7, 4095, 32768, 131071};
        const int64_t T = static_cast<int64_t>(pos.size());
        const auto x = randn(static_cast<size_t>(T * n_head * c.head_dim), rng);
        std::vector<float> mult(static_cast<size_t>(half), 1.0f);
        std::uniform_real_distribution<float> ud(1.0f, 8.0f);
        if (c.freq_mult)
            for (auto& m : mult) m = 1.0f / ud(rng);
        kc::rope_params p;
        p.n_rot = c.n_rot;
        p.head_dim = c.head_dim;
        p.mode = c.mode;
        p.freq_base = 500000.0f;
        p.freq_scale = c.yarn ? 0.25f : 1.0f;
        p.yarn = c.yarn;
        p.yarn_corr_lo = 5.0f;
        p.yarn_corr_hi = 20.0f;
        p.yarn_mscale = c.yarn ? 1.1386f : 1.0f;
        dbuf<float> dmult(mult), dx(x);
        dbuf<int32_t> dpos(pos);
        p.freq_mult = c.freq_mult ? dmult.p : nullptr;
        CUDA_OK(kc::rope(p, dx.p, T, n_head, dpos.p, nullptr));
        device_sync();
        // engine/src/forward.cpp: rope_cache + apply_rope.
        std::vector<float> want = x;
        const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(c.n_rot));
        for (int64_t r = 0; r < T; ++r) {
            std::vector<float> cs(half), sn(half);
            float theta_base = static_cast<float>(pos[r]);
            for (int i = 0; i < half; ++i, theta_base *= theta_scale) {
                const float theta_extrap = theta_base * mult[i];
                float theta = p.freq_scale * theta_extrap, mscale = 1.0f;
                if (p.yarn) {
                    const float y =
                        (static_cast<float>(i) - p.yarn_corr_lo) / std::max(0.001f, p.yarn_corr_hi - p.yarn_corr_lo);
                    const float ramp = 1.0f - std::min(1.0f, std::max(0.0f, y));
                    theta = theta * (1.0f - ramp) + theta_extrap * ramp;
                    mscale = p.yarn_mscale;
                }
                cs[i] = std::cos(theta) * mscale;
                sn[i] = std::sin(theta) * mscale;
            }
            for (int h = 0; h < n_head; ++h) {
                float* v = &want[(r * n_head + h) * c.head_dim];
                for (int i = 0; i < half; ++i) {
                    const int i0 = c.mode == kc::rope_mode::normal ? 2 * i : i;
                    const int i1 = c.mode == kc::rope_mode::normal ? 2 * i + 1 : i + half;
                    const float a = v[i0], b = v[i1];
                    v[i0] = a * cs[i] - b * sn[i];
                    v[i1] = a * sn[i] + b * cs[i];
                }
            }
        }
        // Same float angles; sin/cos of angles up to ~1.3e5 rad differ by a few ulps
        // of the reduced argument: |diff| <= 2e-4 * max|ref|.
        check_close(dx.down(), want, 2e-4f * max_abs(want), "rope");
    }
}

// ---------------------------------------------------------------------------
// Matmul
// ---------------------------------------------------------------------------

TEST_CASE("cuda matmul equals dequantized weights times x", "[cuda]") {
    if (!have_device()) return;
    std::mt19937 rng(4);
    const int64_t n_rows = 200, n_cols = 512, ldy = n_rows + 5;
    for (ggml_type t : all_types) {
        const weights w(t, n_rows, n_cols, rng);
        dbuf<uint8_t> dw(w.bytes);
        for (int64_t n_tok : {1, 3, 8, 17, 70}) {
            const auto x = randn(static_cast<size_t>(n_tok * n_cols), rng);
            dbuf<float> dx(x), dy(static_cast<size_t>(n_tok * ldy));
            // Reference in double, and sum |w x| per output for the tolerance.
            std::vector<float> want(static_cast<size_t>(n_tok * n_rows)), mag(want.size());
            for (int64_t tk = 0; tk < n_tok; ++tk)
                for (int64_t r = 0; r < n_rows; ++r) {
                    double s = 0, m = 0;
                    for (int64_t k = 0; k < n_cols; ++k) {
                        const double p = static_cast<double>(w.values[r * n_cols + k]) * x[tk * n_cols + k];
                        s += p;
                        m += std::fabs(p);
                    }
                    want[tk * n_rows + r] = static_cast<float>(s);
                    mag[tk * n_rows + r] = static_cast<float>(m);
                }
            for (kc::matmul_algo algo : {kc::matmul_algo::automatic, kc::matmul_algo::gemv, kc::matmul_algo::tiled,
                                         kc::matmul_algo::tensor_core}) {
                const bool tc_type = t == ggml_type::f16 || t == ggml_type::bf16;
                INFO("type " << traits_of(t).name << " n_tok " << n_tok << " algo " << static_cast<int>(algo));
                dy.poison();
                const cudaError_t err = kc::matmul(w.view(dw.p), dx.p, n_tok, dy.p, ldy, nullptr, algo);
                if (algo == kc::matmul_algo::tensor_core && !tc_type) {
                    REQUIRE(err == cudaErrorInvalidValue);
                    continue;
                }
                CUDA_OK(err);
                device_sync();
                const std::vector<float> y = dy.down();
                // f32 accumulation over 512 terms: 3e-5 of sum|w x|; tensor cores also round x to
                // f16 (2^-11 relative) or bf16 (2^-8).
                const bool tc = algo == kc::matmul_algo::tensor_core ||
                                (algo == kc::matmul_algo::automatic && n_tok > 8 && tc_type);
                const float rel = !tc ? 3e-5f : t == ggml_type::bf16 ? 4.5e-3f : 6e-4f;
                for (int64_t tk = 0; tk < n_tok; ++tk) {
                    for (int64_t r = 0; r < n_rows; ++r) {
                        const float got = y[tk * ldy + r], ref = want[tk * n_rows + r];
                        const float tol = rel * mag[tk * n_rows + r] + 1e-6f;
                        if (std::isfinite(got) && std::fabs(got - ref) <= tol) continue;
                        INFO("token " << tk << " row " << r << " got " << got << " want " << ref << " tol " << tol);
                        REQUIRE(false);
                    }
                    for (int64_t r = n_rows; r < ldy; ++r) REQUIRE(std::isnan(y[tk * ldy + r]));  // untouched
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Paged KV: writes, page copies, attention
// ---------------------------------------------------------------------------

namespace {

constexpr uint16_t f16_nan = 0x7e00;

// A pool with several sequences: pages handed out in scrambled order with
// unused pages between them; everything that is not a written token row is NaN.
struct pool_fixture {
    int n_layer, page_size, kv_dim;
    int64_t page_stride, layer_stride, v_offset;
    std::vector<uint16_t> data;
    std::vector<int32_t> indptr{0}, indices, kv_len;

    pool_fixture(int n_layer_, int page_size_, int kv_dim_, const std::vector<int32_t>& lens, std::mt19937& rng)
        : n_layer(n_layer_), page_size(page_size_), kv_dim(kv_dim_), kv_len(lens) {
        layer_stride = 2LL * page_size * kv_dim;
        v_offset = static_cast<int64_t>(page_size) * kv_dim;
        page_stride = n_layer * layer_stride;
        int32_t n_used = 0;
        for (int32_t len : lens) n_used += (len + page_size - 1) / page_size;
        const int32_t n_pages = 2 * n_used + 1;
        std::vector<int32_t> perm(static_cast<size_t>(n_pages));
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng);
        data.assign(static_cast<size_t>(n_pages) * page_stride, f16_nan);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        size_t next = 0;
        for (int32_t len : lens) {
            const int32_t np = (len + page_size - 1) / page_size;
            for (int32_t i = 0; i < np; ++i) indices.push_back(perm[next++]);
            indptr.push_back(static_cast<int32_t>(indices.size()));
            const int32_t* pages = &indices[indptr[indptr.size() - 2]];
            for (int l = 0; l < n_layer; ++l)
                for (int64_t t = 0; t < len; ++t) {
                    uint16_t* k =
                        data.data() + pages[t / page_size] * page_stride + l * layer_stride + (t % page_size) * kv_dim;
                    for (int i = 0; i < kv_dim; ++i)
                        k[i] = fp32_to_fp16(nd(rng)), k[v_offset + i] = fp32_to_fp16(nd(rng));
                }
        }
    }
    paged_kv_view view(const uint16_t* base) const {
        return {base, page_stride, layer_stride, v_offset, page_size, kv_dim};
    }
    const int32_t* pages(size_t seq) const { return indices.data() + indptr[seq]; }
};

// Device copies of a fixture's pool and page tables.
struct device_pool {
    dbuf<uint16_t> data;
    dbuf<int32_t> indptr, indices, kv_len;
    explicit device_pool(const pool_fixture& f)
        : data(f.data), indptr(f.indptr), indices(f.indices), kv_len(f.kv_len) {}
    kc::paged_batch batch(const pool_fixture& f) const {
        return {static_cast<int32_t>(f.kv_len.size()), indptr.p, indices.p, kv_len.p,
                *std::max_element(f.kv_len.begin(), f.kv_len.end())};
    }
};

}  // namespace

TEST_CASE("cuda kv_write rounds to f16 into the right pages", "[cuda]") {
    if (!have_device()) return;
    std::mt19937 rng(5);
    const pool_fixture f(2, 16, 256, {40, 9}, rng);
    device_pool dp(f);
    const int64_t T = 5;
    const auto k = randn(static_cast<size_t>(T * f.kv_dim), rng), v = randn(static_cast<size_t>(T * f.kv_dim), rng);
    std::vector<int32_t> slot;
    for (int p : {0, 1, 17, 33, 39}) slot.push_back(f.pages(0)[p / 16] * 16 + p % 16);
    dbuf<float> dk(k), dv(v);
    dbuf<int32_t> ds(slot);
    CUDA_OK(kc::kv_write(f.view(dp.data.p), 1, dk.p, dv.p, ds.p, T, nullptr));
    device_sync();
    std::vector<uint16_t> want = f.data;
    for (int64_t r = 0; r < T; ++r) {
        uint16_t* dst = want.data() + (slot[r] / 16) * f.page_stride + f.layer_stride + (slot[r] % 16) * f.kv_dim;
        for (int i = 0; i < f.kv_dim; ++i)
            dst[i] = fp32_to_fp16(k[r * f.kv_dim + i]), dst[f.v_offset + i] = fp32_to_fp16(v[r * f.kv_dim + i]);
    }
    REQUIRE(dp.data.down() == want);  // bit-exact, NaN rows included
}

TEST_CASE("cuda copy_pages moves pages between host and device pools", "[cuda]") {
    if (!have_device()) return;
    const size_t page_bytes = 4096;
    const int n_pages = 12;
    uint8_t* host = nullptr;
    CUDA_OK(cudaHostAlloc(reinterpret_cast<void**>(&host), n_pages * page_bytes, cudaHostAllocDefault));
    for (size_t i = 0; i < n_pages * page_bytes; ++i) host[i] = static_cast<uint8_t>(i * 7 + i / page_bytes);
    dbuf<uint8_t> dev(n_pages * page_bytes);
    dev.poison();
    cudaStream_t s = nullptr;
    CUDA_OK(cudaStreamCreate(&s));
    const std::vector<int32_t> src = {3, 4, 5, 0, 11}, dst = {6, 7, 8, 1, 2};  // a run of 3, then singles
    CUDA_OK(kc::copy_pages(dev.p, dst.data(), host, src.data(), 5, page_bytes, cudaMemcpyHostToDevice, s));
    // ... and back into other host pages.
    const std::vector<int32_t> back_src = {6, 7, 8, 1, 2}, back_dst = {9, 10, 11, 3, 4};
    std::vector<uint8_t> expect(host, host + n_pages * page_bytes);
    CUDA_OK(kc::copy_pages(host, back_dst.data(), dev.p, back_src.data(), 5, page_bytes, cudaMemcpyDeviceToHost, s));
    CUDA_OK(cudaStreamSynchronize(s));
    const std::vector<uint8_t> orig = expect;  // sources as they were before any copy
    for (size_t i = 0; i < 5; ++i)
        std::memcpy(&expect[back_dst[i] * page_bytes], &orig[src[i] * page_bytes], page_bytes);
    const bool same = std::memcmp(expect.data(), host, expect.size()) == 0;
    CUDA_OK(cudaStreamDestroy(s));
    CUDA_OK(cudaFreeHost(host));
    REQUIRE(same);
}

namespace {

// kernels::attention_head_reference (double) for one query row of sequence `seq`.
void reference_row(const pool_fixture& f, const attention_shape& s, int layer, size_t seq, int64_t n_kv, const float* q,
                   float* out) {
    for (int h = 0; h < s.n_head; ++h)
        attention_head_reference(s, f.view(f.data.data()), f.pages(seq), layer, n_kv, q + h * s.head_dim, h,
                                 out + h * s.head_dim);
}

}  // namespace

TEST_CASE("cuda decode attention equals the float reference", "[cuda][attention]") {
    if (!have_device()) return;
    // q and the softmax weights are rounded to f16 as in kernels::attention_group:
    // |diff| <= 4e-3 * max|reference| (the CPU kernels' tolerance).
    struct cse {
        int head_dim, n_head_kv, g;
        std::vector<int32_t> lens;
        int32_t chunk;  // 0: automatic
        int n_layer;
    };
    std::vector<cse> cases;
    for (int hd : {64, 128})
        for (int g : {1, 4, 7, 8}) {
            cases.push_back({hd, 2, g, {1, 17, 100, 1000, 4101}, 0, 2});
            cases.push_back({hd, 2, g, {300, 5, 4101}, 32, 2});  // many splits per sequence
        }
    cases.push_back({128, 1, 8, {32768}, 0, 1});
    cases.push_back({128, 1, 8, {131072}, 0, 1});
    cases.push_back({64, 1, 4, {131071}, 0, 1});
    std::mt19937 rng(6);
    for (const cse& c : cases) {
        INFO("head_dim " << c.head_dim << " n_head_kv " << c.n_head_kv << " g " << c.g << " chunk " << c.chunk
                         << " longest " << *std::max_element(c.lens.begin(), c.lens.end()));
        const pool_fixture f(c.n_layer, 16, c.n_head_kv * c.head_dim, c.lens, rng);
        device_pool dp(f);
        const attention_shape s{c.n_head_kv * c.g, c.n_head_kv, c.head_dim,
                                1.0f / std::sqrt(static_cast<float>(c.head_dim))};
        const size_t n_seq = c.lens.size(), row = static_cast<size_t>(s.n_head) * s.head_dim;
        const auto q = randn(n_seq * row, rng, 2.0f);  // sharper than uniform attention
        dbuf<float> dq(q), dout(n_seq * row);
        dout.poison();
        kc::decode_params p;
        p.shape = s;
        p.kv = f.view(dp.data.p);
        p.layer = c.n_layer - 1;
        p.batch = dp.batch(f);
        p.q = dq.p;
        p.out = dout.p;
        p.chunk_tokens = c.chunk;
        const size_t ws = kc::decode_workspace_bytes(p);
        dbuf<uint8_t> dws(ws);
        dws.poison();
        p.workspace = ws ? dws.p : nullptr;
        p.workspace_bytes = ws;
        CUDA_OK(kc::attention_decode(p, nullptr));
        device_sync();
        const std::vector<float> got = dout.down();
        for (size_t b = 0; b < n_seq; ++b) {
            std::vector<float> want(row);
            reference_row(f, s, p.layer, b, c.lens[b], &q[b * row], want.data());
            const std::vector<float> g(got.begin() + static_cast<int64_t>(b * row),
                                       got.begin() + static_cast<int64_t>((b + 1) * row));
            INFO("sequence " << b << " kv_len " << c.lens[b]);
            check_close(g, want, 4e-3f * max_abs(want), "decode");
        }
    }
}

TEST_CASE("cuda prefill attention equals the float reference", "[cuda][attention]") {
    if (!have_device()) return;
    // Same rounding as decode (f16 q and weights, WMMA f16 products, f32 sums): 4e-3 * max|reference|.
    struct seq {
        int32_t n_q, kv_len;
    };
    struct cse {
        int head_dim, n_head_kv, g;
        std::vector<seq> seqs;
    };
    std::vector<cse> cases;
    for (int hd : {64, 128})
        for (int g : {1, 4, 8}) {
            cases.push_back({hd, 2, g, {{1, 1}}});
            cases.push_back({hd, 2, g, {{70, 70}}});
            cases.push_back({hd, 2, g, {{5, 5}, {33, 100}, {200, 300}, {1, 40}}});  // cached prefixes, mixed lengths
        }
    cases.push_back({128, 1, 7, {{129, 1000}}});
    std::mt19937 rng(7);
    for (const cse& c : cases) {
        std::vector<int32_t> lens, q_indptr{0};
        int32_t max_q = 0;
        for (const seq& s : c.seqs) {
            lens.push_back(s.kv_len);
            q_indptr.push_back(q_indptr.back() + s.n_q);
            max_q = std::max(max_q, s.n_q);
        }
        INFO("head_dim " << c.head_dim << " g " << c.g << " sequences " << c.seqs.size());
        const pool_fixture f(2, 16, c.n_head_kv * c.head_dim, lens, rng);
        device_pool dp(f);
        const attention_shape s{c.n_head_kv * c.g, c.n_head_kv, c.head_dim,
                                1.0f / std::sqrt(static_cast<float>(c.head_dim))};
        const size_t row = static_cast<size_t>(s.n_head) * s.head_dim, T = static_cast<size_t>(q_indptr.back());
        const auto q = randn(T * row, rng, 2.0f);
        dbuf<float> dq(q), dout(T * row);
        dbuf<int32_t> dqi(q_indptr);
        dout.poison();
        kc::prefill_params p;
        p.shape = s;
        p.kv = f.view(dp.data.p);
        p.layer = 1;
        p.batch = dp.batch(f);
        p.q_indptr = dqi.p;
        p.max_q_len = max_q;
        p.q = dq.p;
        p.out = dout.p;
        CUDA_OK(kc::attention_prefill(p, nullptr));
        device_sync();
        const std::vector<float> got = dout.down();
        for (size_t b = 0; b < c.seqs.size(); ++b)
            for (int32_t j = 0; j < c.seqs[b].n_q; ++j) {
                const size_t r = static_cast<size_t>(q_indptr[b] + j);
                const int64_t n_kv = c.seqs[b].kv_len - c.seqs[b].n_q + j + 1;  // causal
                std::vector<float> want(row);
                reference_row(f, s, 1, b, n_kv, &q[r * row], want.data());
                const std::vector<float> g(got.begin() + static_cast<int64_t>(r * row),
                                           got.begin() + static_cast<int64_t>((r + 1) * row));
                INFO("sequence " << b << " query " << j << " n_kv " << n_kv);
                check_close(g, want, 4e-3f * max_abs(want), "prefill");
            }
    }
}

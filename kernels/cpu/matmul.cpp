// matmul driver: quantizes the activations once, then splits rows x tokens
// into tiles handed out over the thread pool; plus the reference matmul.
#include <algorithm>
#include <vector>

#include "kernels/cpu/internal.h"

namespace mnemos::kernels {

namespace {

// Reference tile: one vec_dot_ref per (row, token).
void tile_reference(ggml_type wt, int64_t k, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y,
                    int64_t ldy, int64_t n_rows, int64_t n_tok) {
    for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t r = 0; r < n_rows; ++r) y[t * ldy + r] = vec_dot_ref(wt, k, w + r * ws, x + t * xs);
}

// Activations in vec_dot_type, reused between calls on the same thread.
std::vector<uint8_t>& activation_buffer() {
    thread_local std::vector<uint8_t> buf;
    return buf;
}

}  // namespace

void matmul(const weight_view& w, const float* x, int64_t n_tok, float* y, int64_t ldy, thread_pool& pool,
            isa level) {
    const int64_t k = w.n_cols, n_rows = w.n_rows;
    if (n_tok <= 0 || n_rows <= 0) return;
    const bool simd = level != isa::scalar && isa_supported(isa::avx2);
    const tile_fn fast = simd ? tile_kernel_avx2(w.type) : nullptr;
    const ggml_type vt = vec_dot_type(w.type);
    const int n_threads = pool.n_threads();

    // 1. Activations [n_tok, k] -> vec_dot_type, rows xs bytes apart.
    const uint8_t* xq = reinterpret_cast<const uint8_t*>(x);
    size_t xs = static_cast<size_t>(k) * sizeof(float);
    if (vt != ggml_type::f32) {
        xs = row_size(vt, k);
        std::vector<uint8_t>& buf = activation_buffer();
        if (buf.size() < xs * static_cast<size_t>(n_tok)) buf.resize(xs * static_cast<size_t>(n_tok));
        uint8_t* dst = buf.data();
        auto quantize_rows = [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) {
                if (simd && vt == ggml_type::q8_0) quantize_row_q8_0_avx2(x + t * k, dst + t * xs, k);
                else if (simd && vt == ggml_type::q8_k) quantize_row_q8_k_avx2(x + t * k, dst + t * xs, k);
                else quantize_row(vt, x + t * k, dst + t * xs, k);
            }
        };
        if (n_threads > 1 && n_tok * k >= 16384) {
            pool.run([&](int ith, int nth) {
                const int64_t per = (n_tok + nth - 1) / nth;
                quantize_rows(std::min(n_tok, ith * per), std::min(n_tok, (ith + 1) * per));
            });
        } else {
            quantize_rows(0, n_tok);
        }
        xq = dst;
    }

    // 2. Tiles of rows x tokens. Decode (few tokens): chunks of rows, a few per thread so that
    // dynamic hand-out evens out. Prefill: 32 rows x 64 tokens, weights stay in L1/L2.
    int64_t rows_per_tile, toks_per_tile;
    if (n_tok <= 4) {
        toks_per_tile = n_tok;
        const int64_t target_tiles = static_cast<int64_t>(n_threads) * 8;
        rows_per_tile = std::max<int64_t>(16, (n_rows + target_tiles - 1) / target_tiles);
        rows_per_tile = (rows_per_tile + 3) / 4 * 4;
    } else {
        rows_per_tile = 32;
        toks_per_tile = 64;
    }
    const int64_t n_row_tiles = (n_rows + rows_per_tile - 1) / rows_per_tile;
    const int64_t n_tok_tiles = (n_tok + toks_per_tile - 1) / toks_per_tile;
    const auto* wp = static_cast<const uint8_t*>(w.data);
    const size_t ws = w.row_bytes;
    auto run_tile = [&](int64_t task) {
        const int64_t r0 = (task % n_row_tiles) * rows_per_tile;
        const int64_t t0 = (task / n_row_tiles) * toks_per_tile;
        const int64_t nr = std::min(rows_per_tile, n_rows - r0);
        const int64_t nt = std::min(toks_per_tile, n_tok - t0);
        float* yt = y + t0 * ldy + r0;
        if (fast) fast(k, wp + r0 * ws, ws, xq + t0 * xs, xs, yt, ldy, nr, nt);
        else tile_reference(w.type, k, wp + r0 * ws, ws, xq + t0 * xs, xs, yt, ldy, nr, nt);
    };
    const int64_t n_tasks = n_row_tiles * n_tok_tiles;
    if (n_threads == 1 || n_tasks == 1) {
        for (int64_t task = 0; task < n_tasks; ++task) run_tile(task);
    } else {
        pool.parallel_for(n_tasks, run_tile);
    }
}

void matmul_reference(const weight_view& w, const float* x, int64_t n_tok, float* y, int64_t ldy) {
    const int64_t k = w.n_cols;
    const ggml_type vt = vec_dot_type(w.type);
    std::vector<uint8_t> xq(row_size(vt, k));
    const auto* wp = static_cast<const uint8_t*>(w.data);
    for (int64_t t = 0; t < n_tok; ++t) {
        quantize_row(vt, x + t * k, xq.data(), k);
        for (int64_t r = 0; r < w.n_rows; ++r) y[t * ldy + r] = vec_dot_ref(w.type, k, wp + r * w.row_bytes, xq.data());
    }
}

}  // namespace mnemos::kernels

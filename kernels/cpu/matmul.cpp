// matmul driver: quantizes the activations once, then splits rows x tokens
// into tiles handed out over the thread pool (several weights of one input in
// one dispatch); plus the reference matmul.
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

// The SIMD tile kernel for a request of `level` (the best the CPU has up to it), or nullptr: reference.
// At the AVX-512 level, AMX (where enabled) for q8_0, q4_0 and q4_k, for every tile shape: an output must
// not depend on the tile it falls in, and the AMX kernels (with their decode companions) sum in another
// order than the AVX-512 ones. q6_k stays on AVX-512: its AMX prefill (gathers for the 6-bit values) gains
// less than its decode companion loses.
tile_fn fast_tile(isa level, ggml_type wt) {
    if (level == isa::avx512 && isa_supported(isa::avx512)) {
        const tile_fn amx = amx_enabled() && wt != ggml_type::q6_k ? tile_kernel_amx(wt) : nullptr;
        return amx ? amx : tile_kernel_avx512(wt, cpu_has_avx512_vnni());
    }
    if (level != isa::scalar && isa_supported(isa::avx2)) return tile_kernel_avx2(wt);
    return nullptr;
}

// Activations in vec_dot_type, reused between calls on the same thread.
std::vector<uint8_t>& activation_buffer() {
    thread_local std::vector<uint8_t> buf;
    return buf;
}

}  // namespace

void matmul_multi(const matmul_target* targets, int n_targets, const float* x, int64_t n_tok, thread_pool& pool,
                  isa level) {
    constexpr int max_targets = 8;
    if (n_tok <= 0 || n_targets <= 0) return;
    if (n_targets > max_targets) {
        matmul_multi(targets, max_targets, x, n_tok, pool, level);
        matmul_multi(targets + max_targets, n_targets - max_targets, x, n_tok, pool, level);
        return;
    }
    const int64_t k = targets[0].w.n_cols;
    const bool simd = level != isa::scalar && isa_supported(isa::avx2);
    const ggml_type vt = vec_dot_type(targets[0].w.type);
    const int n_threads = pool.n_threads();

    // 1. Activations [n_tok, k] -> vec_dot_type, rows xs bytes apart, once for all targets.
    const uint8_t* xq = reinterpret_cast<const uint8_t*>(x);
    size_t xs = static_cast<size_t>(k) * sizeof(float);
    if (vt != ggml_type::f32) {
        xs = row_size(vt, k);
        std::vector<uint8_t>& buf = activation_buffer();
        if (buf.size() < xs * static_cast<size_t>(n_tok)) buf.resize(xs * static_cast<size_t>(n_tok));
        uint8_t* dst = buf.data();
        auto quantize_rows = [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) {
                if (simd && vt == ggml_type::q8_0)
                    quantize_row_q8_0_avx2(x + t * k, dst + t * xs, k);
                else if (simd && vt == ggml_type::q8_k)
                    quantize_row_q8_k_avx2(x + t * k, dst + t * xs, k);
                else
                    quantize_row(vt, x + t * k, dst + t * xs, k);
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

    // 2. Tiles of rows x tokens, per target. Decode (few tokens): chunks of rows, a few per thread so that
    // dynamic hand-out evens out. Prefill: 32 rows x 64 tokens, weights stay in L1/L2. The tiling does not
    // change any result: every output is one micro-kernel dot over the full k.
    struct plan {
        const uint8_t* wp;
        size_t ws;
        ggml_type type;
        tile_fn fast;
        float* y;
        int64_t ldy, n_rows, rows_per_tile, n_row_tiles, task0;
    };
    plan plans[max_targets];
    int n_plans = 0;
    int later[max_targets];
    int n_later = 0;
    const int64_t toks_per_tile = n_tok <= 4 ? n_tok : 64;
    const int64_t n_tok_tiles = (n_tok + toks_per_tile - 1) / toks_per_tile;
    int64_t n_tasks = 0;
    for (int i = 0; i < n_targets; ++i) {
        const matmul_target& t = targets[i];
        if (t.w.n_rows <= 0) continue;
        if (vec_dot_type(t.w.type) != vt || t.w.n_cols != k) {
            later[n_later++] = i;  // after this dispatch: matmul() reuses the activation buffer
            continue;
        }
        plan& p = plans[n_plans++];
        p.wp = static_cast<const uint8_t*>(t.w.data);
        p.ws = t.w.row_bytes;
        p.type = t.w.type;
        p.fast = fast_tile(level, t.w.type);
        p.y = t.y;
        p.ldy = t.ldy;
        p.n_rows = t.w.n_rows;
        if (n_tok <= 4) {
            const int64_t target_tiles = static_cast<int64_t>(n_threads) * 8;
            p.rows_per_tile = std::max<int64_t>(16, (p.n_rows + target_tiles - 1) / target_tiles);
            p.rows_per_tile = (p.rows_per_tile + 3) / 4 * 4;
        } else {
            p.rows_per_tile = 32;
        }
        p.n_row_tiles = (p.n_rows + p.rows_per_tile - 1) / p.rows_per_tile;
        p.task0 = n_tasks;
        n_tasks += p.n_row_tiles * n_tok_tiles;
    }
    auto run_tile = [&](int64_t task) {
        int pi = 0;
        while (pi + 1 < n_plans && task >= plans[pi + 1].task0) ++pi;
        const plan& p = plans[pi];
        task -= p.task0;
        const int64_t r0 = (task % p.n_row_tiles) * p.rows_per_tile;
        const int64_t t0 = (task / p.n_row_tiles) * toks_per_tile;
        const int64_t nr = std::min(p.rows_per_tile, p.n_rows - r0);
        const int64_t nt = std::min(toks_per_tile, n_tok - t0);
        float* yt = p.y + t0 * p.ldy + r0;
        if (p.fast)
            p.fast(k, p.wp + r0 * p.ws, p.ws, xq + t0 * xs, xs, yt, p.ldy, nr, nt);
        else
            tile_reference(p.type, k, p.wp + r0 * p.ws, p.ws, xq + t0 * xs, xs, yt, p.ldy, nr, nt);
    };
    // Tiny products (e.g. a 64-wide model at decode) finish faster than a pool hand-off costs.
    int64_t n_macs = 0;
    for (int i = 0; i < n_plans; ++i) n_macs += plans[i].n_rows * k * n_tok;
    constexpr int64_t min_parallel_macs = 65536;
    if (n_threads == 1 || n_tasks == 1 || n_macs < min_parallel_macs) {
        for (int64_t task = 0; task < n_tasks; ++task) run_tile(task);
    } else {
        pool.parallel_for(n_tasks, run_tile);
    }
    for (int i = 0; i < n_later; ++i) {
        const matmul_target& t = targets[later[i]];
        matmul(t.w, x, n_tok, t.y, t.ldy, pool, level);
    }
}

void matmul(const weight_view& w, const float* x, int64_t n_tok, float* y, int64_t ldy, thread_pool& pool, isa level) {
    if (n_tok <= 0 || w.n_rows <= 0) return;
    const matmul_target t{w, y, ldy};
    matmul_multi(&t, 1, x, n_tok, pool, level);
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

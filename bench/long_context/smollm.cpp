// bench_long_context part 2: a SmolLM-shaped model over histories synthesized into the store.
#include <cstdio>
#include <filesystem>
#include <random>

#include "bench/long_context/bench_long_context.h"
#include "tests/support/tiny_model.h"

namespace mnemos::bench_lc {

std::shared_ptr<const model> smollm_shaped() {
    test::tiny_model_options o;
    o.n_layer = 30;
    o.n_embd = 576;
    o.n_head = 9;
    o.n_head_kv = 3;
    o.n_ff = 1536;
    o.weight_type = kernels::ggml_type::q8_0;
    o.n_ctx = 8192;
    o.rope_freq_base = 100000;
    o.seed = 3;
    const std::string path = temp_path("smollm-shape.gguf");
    if (!test::write_tiny_model(path, o)) {
        std::fprintf(stderr, "bench_long_context: cannot write %s\n", path.c_str());
        std::exit(1);
    }
    auto m = load_or_die(path);
    std::filesystem::remove(path);
    return m;
}

// Random tokens and their full blocks as random f16 K/V under the real chained hashes.
std::vector<token_id> synthesize_history(const model& m, int64_t n_tokens, memory_block_store& store) {
    std::mt19937 rng{static_cast<uint32_t>(n_tokens)};
    std::vector<token_id> toks(static_cast<size_t>(n_tokens));
    for (auto& t : toks) t = token_id(3 + rng() % uint32_t(m.hp().n_vocab - 3));
    const size_t page_elems = size_t(m.hp().n_layer) * 2 * 16 * m.hp().kv_dim();
    std::vector<uint16_t> page(page_elems);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    block_hash parent = m.fingerprint();
    for (int64_t k = 0; k < (n_tokens - 1) / 16; ++k) {
        for (auto& x : page) x = kernels::fp32_to_fp16(nd(rng));
        const std::span<const token_id> bt(toks.data() + k * 16, 16);
        const block_hash h = kv_cache::chain_hash(parent, bt);
        store.persist(h, parent, bt, {reinterpret_cast<const uint8_t*>(page.data()), page_elems * 2});
        parent = h;
    }
    return toks;
}

row smollm_row(std::shared_ptr<const model> m, const bench_options& o, int64_t n_tokens, bool full,
               memory_block_store& store, const std::vector<token_id>& history) {
    const size_t page_bytes = page_bytes_of(*m);
    auto eng = make_engine(m, history_options(o, *m, n_tokens, full));
    eng->kv().set_store(&store);
    const run_result r = run(*eng, history, o.n_decode);
    row rw;
    rw.model = "smollm-shape";
    rw.mode = full ? "full" : "sparse";
    rw.n_tokens = n_tokens;
    rw.decode_ms = r.decode_ms;
    rw.pool_bytes = int64_t(eng->kv().n_pages()) * int64_t(page_bytes);
    rw.pages_resident = r.fin.attention.sparse ? r.fin.attention.n_pages_resident : int32_t(n_tokens / 16 + 1);
    const int64_t summary_floats = int64_t(m->hp().n_layer) * m->hp().n_head_kv * 2 * m->hp().head_dim;
    rw.summary_bytes = r.fin.attention.sparse ? (n_tokens / 16) * summary_floats * 4 * 17 / 16 : 0;
    rw.read_bytes_per_token =
        r.fin.n_generated > 0 ? double(r.fin.attention.n_pages_loaded) * double(page_bytes) / double(r.fin.n_generated)
                              : 0;
    return rw;
}

std::vector<row> smollm_rows(const bench_options& o) {
    std::vector<row> rows;
    if (o.smollm_lengths.empty()) return rows;
    auto m = smollm_shaped();
    for (int64_t n : o.smollm_lengths) {
        memory_block_store store;
        const auto history = synthesize_history(*m, n, store);
        if (n <= o.full_max) rows.push_back(smollm_row(m, o, n, true, store, history));
        rows.push_back(smollm_row(m, o, n, false, store, history));
        print_rows({rows.back()});
    }
    return rows;
}

}  // namespace mnemos::bench_lc

// bench_long_context: sparse attention over long histories against full
// attention where full attention fits, in the same run.
//
// Part 1, memory (the analytic recall model of tests/support/recall_model.h,
// constructed weights): a history of L tokens with needles at random depths
// is prefilled for real; then every needle is asked and one answer is decoded
// for --decode tokens. Per length: prefill tokens/s, decode ms/token, recall,
// pages resident in the pool, summary bytes in RAM, bytes read back per
// decoded token; full attention beside it up to --full-max tokens.
//
// Part 2, cost on a SmolLM-shaped model (random Q8_0 weights: 30 layers, 576
// wide, 9 heads / 3 KV heads): its history's KV blocks are synthesized into an
// in-memory store under the real chained block hashes (a prefill of 128k
// tokens on 2 cores would take hours), resumed from there, and decoded.
//
// Part 3 (--approx MODEL): a real model on real text (the scenarios' scripts)
// at one length, full attention against sparse budgets of 1/8, 1/4 and 1/2 of
// it: top-1 agreement and KL(full || sparse) over the last positions.
//
// Prints a table, then one JSON line.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "engine/engine.h"
#include "tests/support/recall_model.h"
#include "tests/support/tiny_model.h"

using namespace mnemos;
using namespace mnemos::engine;
using clock_type = std::chrono::steady_clock;

namespace {

struct bench_options {
    std::vector<int64_t> lengths = {8192, 32768, 131072, 524288, 1048576};
    std::vector<int64_t> smollm_lengths = {8192, 32768, 131072};
    int64_t full_max = 32768;
    int32_t n_threads = 2;
    int32_t n_decode = 32;
    int32_t n_needles = 8;
    attention_options attention;  // the engine's defaults unless flags say otherwise
    int32_t pool_pages = 2048;
    std::string approx_model;
    int64_t approx_length = 8192;
    int32_t approx_positions = 64;
};

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: bench_long_context [options]\n"
                 "  --lengths L,...         recall-model histories (default 8192,32768,131072,524288,1048576)\n"
                 "  --smollm-lengths L,...  SmolLM-shaped histories from synthesized blocks (default 8192,32768,131072;\n"
                 "                          'none' to skip)\n"
                 "  --full-max N            run full attention beside sparse up to N tokens (default 32768)\n"
                 "  --threads N             (default 2)\n"
                 "  --decode N              tokens decoded per measurement (default 32)\n"
                 "  --needles N             needles per recall history (default 8)\n"
                 "  --sinks N --window N --pages N   sparse attention settings (default: the engine's, 64/1024/32)\n"
                 "  --pool-pages N          KV pool pages for sparse runs (default 2048)\n"
                 "  --shared-selection 0|1  one selection per layer for all KV heads (default 1; 0: one per KV head)\n"
                 "  --approx MODEL          also compare full and sparse attention on MODEL over real text\n"
                 "  --approx-length N       tokens of text for --approx (default 8192)\n"
                 "  -h, --help\n");
}

std::vector<int64_t> parse_list(const std::string& s) {
    std::vector<int64_t> v;
    if (s == "none") return v;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');) v.push_back(std::atoll(item.c_str()));
    return v;
}

bool parse_args(int argc, char** argv, bench_options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            usage(stdout);
            std::exit(0);
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "bench_long_context: %s needs a value (see --help)\n", a.c_str());
            return false;
        }
        const std::string v = argv[++i];
        if (a == "--lengths") o.lengths = parse_list(v);
        else if (a == "--smollm-lengths") o.smollm_lengths = parse_list(v);
        else if (a == "--full-max") o.full_max = std::atoll(v.c_str());
        else if (a == "--threads") o.n_threads = std::atoi(v.c_str());
        else if (a == "--decode") o.n_decode = std::max(2, std::atoi(v.c_str()));
        else if (a == "--needles") o.n_needles = std::max(1, std::atoi(v.c_str()));
        else if (a == "--sinks") o.attention.n_sink = std::atoi(v.c_str());
        else if (a == "--window") o.attention.n_window = std::atoi(v.c_str());
        else if (a == "--pages") o.attention.n_pages = std::atoi(v.c_str());
        else if (a == "--pool-pages") o.pool_pages = std::max(64, std::atoi(v.c_str()));
        else if (a == "--shared-selection") o.attention.shared_selection = v == "1" || v == "true";
        else if (a == "--approx") o.approx_model = v;
        else if (a == "--approx-length") o.approx_length = std::atoll(v.c_str());
        else {
            std::fprintf(stderr, "bench_long_context: unknown option '%s' (see --help)\n", a.c_str());
            return false;
        }
    }
    return true;
}

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("mnemos-bench-" + std::to_string(::getpid()) + "-" + name))
        .string();
}

std::shared_ptr<const model> load_or_die(const std::string& path) {
    auto m = model::load(path);
    if (!m) {
        std::fprintf(stderr, "bench_long_context: %s\n", m.error().to_string().c_str());
        std::exit(1);
    }
    return std::shared_ptr<const model>(std::move(m.value()));
}

std::unique_ptr<engine::engine> make_engine(std::shared_ptr<const model> m, const engine_options& eo) {
    auto e = engine::engine::create(std::move(m), eo);
    if (!e) {
        std::fprintf(stderr, "bench_long_context: %s\n", e.error().to_string().c_str());
        std::exit(1);
    }
    return std::move(e.value());
}

size_t page_bytes_of(const model& m) { return size_t(m.hp().n_layer) * 2 * 16 * size_t(m.hp().kv_dim()) * 2; }

// Full attention: a context and a pool that hold the history; sparse: the model's trained context (sparse beyond
// it) and a pool of --pool-pages.
engine_options history_options(const bench_options& o, const model& m, int64_t n_tokens, bool full) {
    engine_options eo;
    eo.n_threads = o.n_threads;
    eo.attention = o.attention;
    if (full) {
        eo.attention.mode = attention_mode::full;
        eo.n_ctx = int32_t(n_tokens + o.n_decode + 64);
        eo.kv_bytes = (size_t(eo.n_ctx) / 16 + 4) * page_bytes_of(m);
    } else {
        eo.n_ctx = m.hp().n_ctx_train;
        eo.kv_bytes = size_t(o.pool_pages) * page_bytes_of(m);
    }
    return eo;
}

// One request run to completion, with the time of its first and last generated tokens.
struct run_result {
    finish_info fin;
    double seconds = 0;        // submit to finish
    double decode_ms = 0;      // per generated token after the first
};

run_result run(engine::engine& eng, std::vector<token_id> prompt, int32_t max_tokens) {
    run_result res;
    request r;
    r.prompt = std::move(prompt);
    r.max_tokens = max_tokens;
    r.ignore_eos = true;
    r.sampling.temperature = 0;
    clock_type::time_point t_first{}, t_last{};
    int n = 0;
    r.on_token = [&](token_id, std::string_view) {
        t_last = clock_type::now();
        if (n++ == 0) t_first = t_last;
    };
    r.on_finish = [&](const finish_info& f) { res.fin = f; };
    const auto t0 = clock_type::now();
    eng.submit(std::move(r));
    eng.run_until_idle();
    res.seconds = seconds_since(t0);
    if (res.fin.error.ok() == false) {
        std::fprintf(stderr, "bench_long_context: %s\n", res.fin.error.to_string().c_str());
        std::exit(1);
    }
    if (n > 1) res.decode_ms = 1e3 * std::chrono::duration<double>(t_last - t_first).count() / (n - 1);
    return res;
}

// ---------------------------------------------------------------------------
// Part 1: recall
// ---------------------------------------------------------------------------

struct row {
    std::string model, mode;
    int64_t n_tokens = 0;
    double prefill_tok_s = 0;      // 0: not run (synthesized history)
    double decode_ms = 0;
    int recalled = -1, asked = 0;  // -1: not a recall model
    int resumed = -1;              // needles recalled by a new engine over the same store (a restart)
    double resume_s = 0;           // its first answer: match from the store (summaries) + the query
    int32_t pages_resident = 0;
    int64_t pool_bytes = 0;        // the pool's size
    int64_t summary_bytes = 0;
    double read_bytes_per_token = 0;
};

std::vector<test::recall_needle> spread_needles(int n, int64_t n_tokens, uint64_t seed) {
    std::mt19937_64 g(seed);
    std::vector<test::recall_needle> out;
    for (int i = 0; i < n; ++i) {
        // Depths spread over the history, jittered; never inside the last 4096 tokens (the window).
        const int64_t span = std::max<int64_t>(1, n_tokens - 4096 - 64);
        const int64_t pos = 32 + (span * i) / n + int64_t(g() % uint64_t(std::max<int64_t>(1, span / n / 2)));
        out.push_back({i, (i * 7 + 3) % 32, pos & ~int64_t(1)});
    }
    return out;
}

void resume_row(std::shared_ptr<const model> m, const test::recall_roles& roles, const bench_options& o,
                int64_t n_tokens, memory_block_store& store, const std::vector<token_id>& history,
                const std::vector<test::recall_needle>& needles, row& rw);

row recall_row(std::shared_ptr<const model> m, const test::recall_roles& roles, const bench_options& o,
               int64_t n_tokens, bool full) {
    const auto needles = spread_needles(o.n_needles, n_tokens, uint64_t(n_tokens));
    const auto history = test::make_recall_history(roles, n_tokens, needles, 7);
    const size_t page_bytes = page_bytes_of(*m);
    auto eng = make_engine(m, history_options(o, *m, n_tokens, full));
    memory_block_store store;  // where parked pages go (a host-memory stand-in for the disk store)
    if (!full) eng->kv().set_store(&store);
    row rw;
    rw.model = "recall";
    rw.mode = full ? "full" : "sparse";
    rw.n_tokens = n_tokens;
    rw.pool_bytes = int64_t(eng->kv().n_pages()) * int64_t(page_bytes);
    const run_result pre = run(*eng, history, 0);
    rw.prefill_tok_s = double(n_tokens) / pre.seconds;
    rw.asked = int(needles.size());
    rw.recalled = 0;
    for (size_t i = 0; i < needles.size(); ++i) {
        std::vector<token_id> prompt = history;
        prompt.push_back(roles.keys[size_t(needles[i].key)]);
        const run_result r = run(*eng, prompt, i == 0 ? o.n_decode : 1);
        rw.recalled += !r.fin.tokens.empty() && r.fin.tokens[0] == roles.values[size_t(needles[i].value)];
        if (i != 0) continue;
        rw.decode_ms = r.decode_ms;
        rw.pages_resident = r.fin.attention.sparse ? r.fin.attention.n_pages_resident : int32_t(n_tokens / 16 + 1);
        const int64_t summary_floats = int64_t(m->hp().n_layer) * m->hp().n_head_kv * 2 * m->hp().head_dim;
        rw.summary_bytes = r.fin.attention.sparse ? (n_tokens / 16) * summary_floats * 4 * 17 / 16 : 0;
        rw.read_bytes_per_token = double(r.fin.attention.n_pages_loaded) * double(page_bytes) /
                                  double(std::max(1, r.fin.n_generated));
    }
    if (!full) resume_row(m, roles, o, n_tokens, store, history, needles, rw);
    return rw;
}

// A restart: a new engine over the same store answers the needles again (summaries and blocks from the store).
void resume_row(std::shared_ptr<const model> m, const test::recall_roles& roles, const bench_options& o,
                int64_t n_tokens, memory_block_store& store, const std::vector<token_id>& history,
                const std::vector<test::recall_needle>& needles, row& rw) {
    auto eng = make_engine(m, history_options(o, *m, n_tokens, false));
    eng->kv().set_store(&store);
    rw.resumed = 0;
    for (size_t i = 0; i < needles.size(); ++i) {
        std::vector<token_id> prompt = history;
        prompt.push_back(roles.keys[size_t(needles[i].key)]);
        const run_result r = run(*eng, prompt, 1);
        if (i == 0) rw.resume_s = r.seconds;
        rw.resumed += !r.fin.tokens.empty() && r.fin.tokens[0] == roles.values[size_t(needles[i].value)];
    }
}

// ---------------------------------------------------------------------------
// Part 2: a SmolLM-shaped model over synthesized histories
// ---------------------------------------------------------------------------

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
    rw.read_bytes_per_token = r.fin.n_generated > 0 ? double(r.fin.attention.n_pages_loaded) * double(page_bytes) /
                                                          double(r.fin.n_generated)
                                                    : 0;
    return rw;
}

// ---------------------------------------------------------------------------
// Part 3: full vs sparse on a real model
// ---------------------------------------------------------------------------

struct approx_row {
    int32_t budget = 0;
    bool shared = false;  // one selection per layer for all KV heads
    double top1 = 0, kl = 0;
};

// The text of every string in the scenario files (scripts, personas, clues), in file order.
std::string scenario_text() {
    std::string all;
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(MNEMOS_SCENARIOS_DIR))
        if (e.path().extension() == ".json" && e.path().filename() != "scenario.schema.json") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        std::ifstream in(f);
        std::stringstream ss;
        ss << in.rdbuf();
        const std::string s = ss.str();
        // Crude but enough: the contents of quoted strings longer than 40 bytes (prose, not keys).
        for (size_t i = 0; (i = s.find('"', i)) != std::string::npos;) {
            size_t j = i + 1;
            while (j < s.size() && s[j] != '"') j += s[j] == '\\' ? 2 : 1;
            if (j - i > 40) all += s.substr(i + 1, j - i - 1) + "\n";
            i = j + 1;
        }
    }
    return all;
}

std::vector<std::vector<float>> last_logits(std::shared_ptr<const model> m, const engine_options& eo,
                                            const std::vector<token_id>& prompt, int32_t n_last) {
    auto eng = make_engine(std::move(m), eo);
    // The history without its last positions first (no logits), so that the run with logits reuses it.
    run(*eng, std::vector<token_id>(prompt.begin(), prompt.end() - n_last - 16), 0);
    std::vector<std::vector<float>> out;
    request r;
    r.prompt = prompt;
    r.max_tokens = 0;
    const int64_t first = int64_t(prompt.size()) - n_last;
    r.on_logits = [&](int64_t pos, std::span<const float> lg) {
        if (pos >= first) out.emplace_back(lg.begin(), lg.end());
    };
    eng->submit(std::move(r));
    eng->run_until_idle();
    return out;
}

// Top-1 agreement and mean KL(ref || got) over the positions both have.
void score_against(const std::vector<std::vector<float>>& ref, const std::vector<std::vector<float>>& got,
                   approx_row& ar) {
    const size_t n = std::min(ref.size(), got.size());
    for (size_t p = 0; p < n; ++p) {
        const auto& a = ref[p];
        const auto& b = got[p];
        ar.top1 += std::max_element(a.begin(), a.end()) == a.begin() + (std::max_element(b.begin(), b.end()) - b.begin());
        const float ma = *std::max_element(a.begin(), a.end()), mb = *std::max_element(b.begin(), b.end());
        double za = 0, zb = 0;
        for (size_t i = 0; i < a.size(); ++i) za += std::exp(double(a[i] - ma)), zb += std::exp(double(b[i] - mb));
        for (size_t i = 0; i < a.size(); ++i) {
            const double lpa = double(a[i] - ma) - std::log(za), lpb = double(b[i] - mb) - std::log(zb);
            ar.kl += std::exp(lpa) * (lpa - lpb);
        }
    }
    ar.top1 /= double(std::max<size_t>(1, n));
    ar.kl /= double(std::max<size_t>(1, n));
}

std::vector<approx_row> approximation(const bench_options& o) {
    auto m = load_or_die(o.approx_model);
    const std::string text = scenario_text();
    std::vector<token_id> toks = m->tok().encode(text, m->tok().add_bos_default(), false);
    while (int64_t(toks.size()) < o.approx_length) toks.insert(toks.end(), toks.begin() + 1, toks.end());
    toks.resize(size_t(o.approx_length));
    engine_options full;
    full.n_threads = o.n_threads;
    full.attention.mode = attention_mode::full;
    full.n_ctx = int32_t(o.approx_length + 64);
    const auto ref = last_logits(m, full, toks, o.approx_positions);
    std::vector<approx_row> rows;
    for (int div : {0, 8, 4, 2}) {  // 0: the defaults (64 sinks, 1024 window, 32 pages: 1600 tokens)
        for (bool shared : {false, true}) {
            engine_options sp = full;
            sp.attention.mode = attention_mode::sparse;
            const int32_t budget = div ? int32_t(o.approx_length / div) : attention_options{}.budget(16);
            if (div) {
                sp.attention.n_sink = 64;
                sp.attention.n_window = budget / 2;
                sp.attention.n_pages = (budget - 64 - budget / 2) / 16;
            }
            sp.attention.shared_selection = shared;
            const auto got = last_logits(m, sp, toks, o.approx_positions);
            approx_row ar;
            ar.budget = budget;
            ar.shared = shared;
            score_against(ref, got, ar);
            rows.push_back(ar);
        }
    }
    return rows;
}

void print_rows(const std::vector<row>& rows) {
    std::printf("%-13s %-6s %9s %11s %10s %9s %9s %9s %9s %11s %12s %11s\n", "model", "mode", "tokens",
                "prefill t/s", "decode ms", "recall", "restart", "resume s", "resident", "pool MB", "summary MB",
                "read B/tok");
    for (const row& r : rows) {
        char rec[32];
        if (r.recalled < 0) std::snprintf(rec, sizeof rec, "-");
        else std::snprintf(rec, sizeof rec, "%d/%d", r.recalled, r.asked);
        char res[32], res_s[32];
        if (r.resumed < 0) std::snprintf(res, sizeof res, "-"), std::snprintf(res_s, sizeof res_s, "-");
        else std::snprintf(res, sizeof res, "%d/%d", r.resumed, r.asked), std::snprintf(res_s, sizeof res_s, "%.3f", r.resume_s);
        char pre[32];
        if (r.prefill_tok_s > 0) std::snprintf(pre, sizeof pre, "%.0f", r.prefill_tok_s);
        else std::snprintf(pre, sizeof pre, "not run");
        std::printf("%-13s %-6s %9lld %11s %10.3f %9s %9s %9s %9d %11.1f %12.1f %11.0f\n", r.model.c_str(),
                    r.mode.c_str(), (long long)r.n_tokens, pre, r.decode_ms, rec, res, res_s, r.pages_resident,
                    r.pool_bytes / 1048576.0, r.summary_bytes / 1048576.0, r.read_bytes_per_token);
        std::fflush(stdout);
    }
}

}  // namespace

int main(int argc, char** argv) {
    bench_options o;
    if (!parse_args(argc, argv, o)) return 2;
    std::vector<row> rows;
    std::printf("bench_long_context: %d threads, isa %s; sparse: sinks %d, window %d, pages %d, pool %d pages\n",
                o.n_threads, kernels::isa_name(kernels::best_isa()), o.attention.n_sink, o.attention.n_window,
                o.attention.n_pages, o.pool_pages);
    if (!o.lengths.empty()) {
        test::recall_roles roles;
        const std::string path = temp_path("recall.gguf");
        if (!test::write_recall_model(path, {}, &roles)) return 1;
        auto m = load_or_die(path);
        std::filesystem::remove(path);
        for (int64_t n : o.lengths) {
            if (n <= o.full_max) rows.push_back(recall_row(m, roles, o, n, true));
            rows.push_back(recall_row(m, roles, o, n, false));
            print_rows({rows.back()});
        }
    }
    if (!o.smollm_lengths.empty()) {
        auto m = smollm_shaped();
        for (int64_t n : o.smollm_lengths) {
            memory_block_store store;
            const auto history = synthesize_history(*m, n, store);
            if (n <= o.full_max) rows.push_back(smollm_row(m, o, n, true, store, history));
            rows.push_back(smollm_row(m, o, n, false, store, history));
            print_rows({rows.back()});
        }
    }
    std::printf("\n");
    print_rows(rows);
    std::vector<approx_row> approx;
    if (!o.approx_model.empty()) {
        approx = approximation(o);
        std::printf("\n%s over %lld tokens of scenario text, last %d positions:\n", o.approx_model.c_str(),
                    (long long)o.approx_length, o.approx_positions);
        std::printf("%10s %10s %10s %12s\n", "budget", "selection", "top-1", "KL");
        for (const auto& a : approx)
            std::printf("%10d %10s %10.3f %12.5f\n", a.budget, a.shared ? "shared" : "per-head", a.top1, a.kl);
    }
    // One JSON line.
    std::printf("{\"bench\":\"long_context\",\"threads\":%d,\"rows\":[", o.n_threads);
    for (size_t i = 0; i < rows.size(); ++i) {
        const row& r = rows[i];
        std::printf("%s{\"model\":\"%s\",\"mode\":\"%s\",\"tokens\":%lld,\"prefill_tok_s\":%.1f,\"decode_ms\":%.4f,"
                    "\"recalled\":%d,\"asked\":%d,\"resumed\":%d,\"resume_s\":%.4f,\"pages_resident\":%d,\"pool_bytes\":%lld,\"summary_bytes\":%lld,"
                    "\"read_bytes_per_token\":%.0f}",
                    i ? "," : "", r.model.c_str(), r.mode.c_str(), (long long)r.n_tokens, r.prefill_tok_s, r.decode_ms,
                    r.recalled, r.asked, r.resumed, r.resume_s, r.pages_resident, (long long)r.pool_bytes, (long long)r.summary_bytes,
                    r.read_bytes_per_token);
    }
    std::printf("],\"approx\":[");
    for (size_t i = 0; i < approx.size(); ++i)
        std::printf("%s{\"budget\":%d,\"shared\":%s,\"top1\":%.4f,\"kl\":%.6f}", i ? "," : "", approx[i].budget,
                    approx[i].shared ? "true" : "false", approx[i].top1, approx[i].kl);
    std::printf("]}\n");
    return 0;
}

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
#include "bench/long_context/bench_long_context.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

using namespace mnemos::bench_lc;

namespace {

void usage(FILE* out) {
    std::fprintf(
        out,
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
        if (a == "--lengths")
            o.lengths = parse_list(v);
        else if (a == "--smollm-lengths")
            o.smollm_lengths = parse_list(v);
        else if (a == "--full-max")
            o.full_max = std::atoll(v.c_str());
        else if (a == "--threads")
            o.n_threads = std::atoi(v.c_str());
        else if (a == "--decode")
            o.n_decode = std::max(2, std::atoi(v.c_str()));
        else if (a == "--needles")
            o.n_needles = std::max(1, std::atoi(v.c_str()));
        else if (a == "--sinks")
            o.attention.n_sink = std::atoi(v.c_str());
        else if (a == "--window")
            o.attention.n_window = std::atoi(v.c_str());
        else if (a == "--pages")
            o.attention.n_pages = std::atoi(v.c_str());
        else if (a == "--pool-pages")
            o.pool_pages = std::max(64, std::atoi(v.c_str()));
        else if (a == "--shared-selection")
            o.attention.shared_selection = v == "1" || v == "true";
        else if (a == "--approx")
            o.approx_model = v;
        else if (a == "--approx-length")
            o.approx_length = std::atoll(v.c_str());
        else {
            std::fprintf(stderr, "bench_long_context: unknown option '%s' (see --help)\n", a.c_str());
            return false;
        }
    }
    return true;
}

}  // namespace

namespace mnemos::bench_lc {

void print_rows(const std::vector<row>& rows) {
    std::printf("%-13s %-6s %9s %11s %10s %9s %9s %9s %9s %11s %12s %11s\n", "model", "mode", "tokens", "prefill t/s",
                "decode ms", "recall", "restart", "resume s", "resident", "pool MB", "summary MB", "read B/tok");
    for (const row& r : rows) {
        char rec[32];
        if (r.recalled < 0)
            std::snprintf(rec, sizeof rec, "-");
        else
            std::snprintf(rec, sizeof rec, "%d/%d", r.recalled, r.asked);
        char res[32], res_s[32];
        if (r.resumed < 0)
            std::snprintf(res, sizeof res, "-"), std::snprintf(res_s, sizeof res_s, "-");
        else
            std::snprintf(res, sizeof res, "%d/%d", r.resumed, r.asked),
                std::snprintf(res_s, sizeof res_s, "%.3f", r.resume_s);
        char pre[32];
        if (r.prefill_tok_s > 0)
            std::snprintf(pre, sizeof pre, "%.0f", r.prefill_tok_s);
        else
            std::snprintf(pre, sizeof pre, "not run");
        std::printf("%-13s %-6s %9lld %11s %10.3f %9s %9s %9s %9d %11.1f %12.1f %11.0f\n", r.model.c_str(),
                    r.mode.c_str(), (long long)r.n_tokens, pre, r.decode_ms, rec, res, res_s, r.pages_resident,
                    r.pool_bytes / 1048576.0, r.summary_bytes / 1048576.0, r.read_bytes_per_token);
        std::fflush(stdout);
    }
}

// Each sparse row's decode time beside its baselines: full attention at the same length (where it ran) and the
// same model's shortest sparse history (the aim: 1M within 2x of 8k).
void print_ratios(const std::vector<row>& rows) {
    std::printf("\n%-13s %9s %16s %20s\n", "model", "tokens", "decode vs full", "decode vs shortest");
    for (const row& r : rows) {
        if (r.mode != "sparse") continue;
        const row* full = nullptr;
        const row* shortest = nullptr;
        for (const row& b : rows) {
            if (b.model != r.model) continue;
            if (b.mode == "full" && b.n_tokens == r.n_tokens) full = &b;
            if (b.mode == "sparse" && (!shortest || b.n_tokens < shortest->n_tokens)) shortest = &b;
        }
        char vs_full[32] = "-";
        if (full && r.decode_ms > 0)
            std::snprintf(vs_full, sizeof vs_full, "%.2fx faster", full->decode_ms / r.decode_ms);
        std::printf("%-13s %9lld %16s %19.2fx\n", r.model.c_str(), (long long)r.n_tokens, vs_full,
                    shortest->decode_ms > 0 ? r.decode_ms / shortest->decode_ms : 0.0);
    }
}

// One JSON line: every row, then the approximation rows.
void print_json(const bench_options& o, const std::vector<row>& rows, const std::vector<approx_row>& approx) {
    std::printf("{\"bench\":\"long_context\",\"threads\":%d,\"rows\":[", o.n_threads);
    for (size_t i = 0; i < rows.size(); ++i) {
        const row& r = rows[i];
        std::printf(
            "%s{\"model\":\"%s\",\"mode\":\"%s\",\"tokens\":%lld,\"prefill_tok_s\":%.1f,\"decode_ms\":%.4f,"
            "\"recalled\":%d,\"asked\":%d,\"resumed\":%d,\"resume_s\":%.4f,\"pages_resident\":%d,\"pool_bytes\":%lld,"
            "\"summary_bytes\":%lld,"
            "\"read_bytes_per_token\":%.0f}",
            i ? "," : "", r.model.c_str(), r.mode.c_str(), (long long)r.n_tokens, r.prefill_tok_s, r.decode_ms,
            r.recalled, r.asked, r.resumed, r.resume_s, r.pages_resident, (long long)r.pool_bytes,
            (long long)r.summary_bytes, r.read_bytes_per_token);
    }
    std::printf("],\"approx\":[");
    for (size_t i = 0; i < approx.size(); ++i)
        std::printf("%s{\"budget\":%d,\"shared\":%s,\"top1\":%.4f,\"kl\":%.6f}", i ? "," : "", approx[i].budget,
                    approx[i].shared ? "true" : "false", approx[i].top1, approx[i].kl);
    std::printf("]}\n");
}

}  // namespace mnemos::bench_lc

int main(int argc, char** argv) {
    bench_options o;
    if (!parse_args(argc, argv, o)) return 2;
    std::printf("bench_long_context: %d threads, isa %s; sparse: sinks %d, window %d, pages %d, pool %d pages\n",
                o.n_threads, mnemos::kernels::isa_name(mnemos::kernels::best_isa()), o.attention.n_sink,
                o.attention.n_window, o.attention.n_pages, o.pool_pages);
    std::vector<row> rows = recall_rows(o);
    for (row& r : smollm_rows(o)) rows.push_back(std::move(r));
    std::printf("\n");
    print_rows(rows);
    print_ratios(rows);
    std::vector<approx_row> approx;
    if (!o.approx_model.empty()) {
        approx = approximation(o);
        std::printf("\n%s over %lld tokens of scenario text, last %d positions:\n", o.approx_model.c_str(),
                    (long long)o.approx_length, o.approx_positions);
        std::printf("%10s %10s %10s %12s\n", "budget", "selection", "top-1", "KL");
        for (const auto& a : approx)
            std::printf("%10d %10s %10.3f %12.5f\n", a.budget, a.shared ? "shared" : "per-head", a.top1, a.kl);
    }
    print_json(o, rows, approx);
    return 0;
}

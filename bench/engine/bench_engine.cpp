// bench_engine: prefill and decode throughput of the CPU engine for every
// model in ../shared/models. Prints a table, then one JSON line.
//
//   prefill  P  : one prompt of P tokens, no cache, time to its last logits
//   decode B@C  : B sequences whose context already holds C tokens (a shared
//                 prefix served by the prefix cache), generating N tokens each;
//                 tokens/s over all sequences
//
// Reference figures from a widely used engine on this kind of machine with 2
// threads (from the issue) are printed beside ours where they exist.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.h"

using namespace mnemos;
using namespace mnemos::engine;
using clk = std::chrono::steady_clock;

namespace {

struct figure {
    std::string model, what;
    int32_t batch = 1, ctx = 0;
    double tok_s = 0, ref_tok_s = 0;
};

std::vector<token_id> random_tokens(int n, int n_vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<token_id> t(static_cast<size_t>(n));
    for (auto& x : t) x = static_cast<token_id>(3 + rng() % static_cast<uint32_t>(n_vocab - 3));
    return t;
}

double prefill(std::shared_ptr<const model> m, int n_threads, int n_prompt) {
    engine_options eo;
    eo.n_threads = n_threads;
    eo.n_ctx = n_prompt + 16;
    eo.prefix_cache = false;
    auto e = engine::engine::create(m, eo);
    if (!e) return 0;
    double best = 0;
    for (int rep = 0; rep < 2; ++rep) {
        request r;
        r.prompt = random_tokens(n_prompt, m->hp().n_vocab, 100 + rep);
        r.max_tokens = 1;
        const auto t0 = clk::now();
        (*e)->submit(std::move(r));
        (*e)->run_until_idle();
        const double s = std::chrono::duration<double>(clk::now() - t0).count();
        best = std::max(best, n_prompt / s);
    }
    return best;
}

double decode(std::shared_ptr<const model> m, int n_threads, int batch, int ctx, int n_gen) {
    engine_options eo;
    eo.n_threads = n_threads;
    eo.n_ctx = ctx + n_gen + 16;
    eo.kv_bytes = 0;
    auto e = engine::engine::create(m, eo);
    if (!e) return 0;
    const auto shared = random_tokens(ctx, m->hp().n_vocab, 7);
    {  // warm the prefix cache with the shared context
        request r;
        r.prompt = shared;
        r.max_tokens = 1;
        (*e)->submit(std::move(r));
        (*e)->run_until_idle();
    }
    int64_t n_tokens = 0;
    int n_started = 0;
    clk::time_point t_start{};
    int64_t tokens_at_start = 0;
    for (int b = 0; b < batch; ++b) {
        request r;
        r.prompt = shared;
        r.prompt.push_back(static_cast<token_id>(3 + b));  // distinct last token: 1 token of prefill each
        r.max_tokens = n_gen;
        r.ignore_eos = true;
        r.sampling.temperature = 0;
        r.on_token = [&, first = true](token_id tok, std::string_view) mutable {
            if (tok < 0) return;
            ++n_tokens;
            if (first) {
                first = false;
                if (++n_started == batch) t_start = clk::now(), tokens_at_start = n_tokens;
            }
        };
        (*e)->submit(std::move(r));
    }
    (*e)->run_until_idle();
    const double s = std::chrono::duration<double>(clk::now() - t_start).count();
    return (n_tokens - tokens_at_start) / s;
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir = std::string(MNEMOS_SHARED_DIR) + "/models";
    int n_threads = 2;
    bool quick = false;
    const char* want_isa = nullptr;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::printf(
                "usage: bench_engine [--models DIR] [--threads N] [--quick] [--isa scalar|avx2|avx512]\n\n"
                "Prefill (512 and 4096-token prompts) and decode (batch 1 and 8 at context 512 and 4096)\n"
                "tokens/s for every model in DIR (default ../shared/models). --quick: context 512 only.\n"
                "--isa: the highest kernel level to use (as MNEMOS_ISA); the level actually used is printed.\n"
                "MNEMOS_AMX=0 keeps the avx512 level off AMX.\n");
            return 0;
        } else if (a == "--models" && i + 1 < argc)
            dir = argv[++i];
        else if (a == "--threads" && i + 1 < argc)
            n_threads = std::atoi(argv[++i]);
        else if (a == "--quick")
            quick = true;
        else if (a == "--isa" && i + 1 < argc)
            want_isa = argv[++i];
        else {
            std::fprintf(stderr, "bench_engine: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    if (want_isa) {
        const std::string w = want_isa;
        if (w != "scalar" && w != "avx2" && w != "avx512") {
            std::fprintf(stderr, "bench_engine: --isa wants scalar, avx2 or avx512, not %s\n", want_isa);
            return 2;
        }
        // Before anything asks for the level: best_isa() reads MNEMOS_ISA once.
        setenv("MNEMOS_ISA", want_isa, 1);
    }
    const kernels::isa used = kernels::best_isa();
    const bool vnni = used == kernels::isa::avx512 && kernels::isa_avx512_vnni();
    const bool amx = used == kernels::isa::avx512 && kernels::isa_amx();
    std::printf("isa: %s%s%s", kernels::isa_name(used), vnni ? " +vnni" : "", amx ? " +amx" : "");
    if (want_isa && std::string(want_isa) != kernels::isa_name(used))
        std::printf(" (%s requested; not on this CPU)", want_isa);
    std::printf("; %d threads (the reference column: the reference engine's figures on 2 threads%s)\n", n_threads,
                n_threads == 2 ? "" : ", so the ratio is not like for like");

    // Figures of the reference engine, 2 threads (prefill: 512-token prompt; decode: batch 1).
    const std::map<std::string, std::pair<double, double>> ref = {
        {"smollm-bpe-r-q4_k_m", {4606, 508}}, {"llama-spm-r-q8_0", {11030, 1605}}, {"stories260K-f32", {4135, 2999}}};

    std::vector<std::string> models;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (e.path().extension() == ".gguf" && n.rfind("vocab-", 0) != 0) models.push_back(e.path().string());
    }
    std::sort(models.begin(), models.end());
    if (models.empty()) {
        std::fprintf(stderr, "bench_engine: no models in %s\n", dir.c_str());
        return 1;
    }

    std::vector<figure> figs;
    std::printf("%-22s %-8s %5s %6s %12s %12s %7s\n", "model", "phase", "batch", "ctx", "tok/s", "reference", "ratio");
    for (const std::string& path : models) {
        auto loaded = model::load(path);
        if (!loaded) {
            std::fprintf(stderr, "skip %s: %s\n", path.c_str(), loaded.error().to_string().c_str());
            continue;
        }
        std::shared_ptr<const model> m(std::move(loaded.value()));
        const std::string name = std::filesystem::path(path).stem().string();
        const int max_ctx = m->hp().n_ctx_train;
        auto it = ref.find(name);
        auto add = [&](const std::string& what, int batch, int ctx, double v, double r) {
            figs.push_back({name, what, batch, ctx, v, r});
            std::printf("%-22s %-8s %5d %6d %12.1f ", name.c_str(), what.c_str(), batch, ctx, v);
            if (r > 0)
                std::printf("%12.1f %7.2f\n", r, v / r);
            else
                std::printf("%12s %7s\n", "-", "-");
            std::fflush(stdout);
        };
        for (int ctx : {512, 4096}) {
            if (quick && ctx > 512) continue;
            const int c = std::min(ctx, max_ctx - 16);  // stories260K: 512-token context
            if (ctx > 512 && c < ctx) continue;
            add("prefill", 1, c, prefill(m, n_threads, c), ctx == 512 && it != ref.end() ? it->second.first : 0);
        }
        for (int ctx : {512, 4096}) {
            if (quick && ctx > 512) continue;
            const int c = std::min(ctx, max_ctx - 80);
            if (ctx > 512 && c < ctx) continue;
            for (int batch : {1, 8})
                add("decode", batch, c, decode(m, n_threads, batch, c, 32),
                    batch == 1 && ctx == 512 && it != ref.end() ? it->second.second : 0);
        }
    }
    std::printf("{\"bench\":\"engine\",\"threads\":%d,\"isa\":\"%s\",\"vnni\":%s,\"amx\":%s,\"results\":[", n_threads,
                kernels::isa_name(used), vnni ? "true" : "false", amx ? "true" : "false");
    for (size_t i = 0; i < figs.size(); ++i) {
        const figure& f = figs[i];
        std::printf("%s{\"model\":\"%s\",\"phase\":\"%s\",\"batch\":%d,\"ctx\":%d,\"tok_s\":%.1f", i ? "," : "",
                    f.model.c_str(), f.what.c_str(), f.batch, f.ctx, f.tok_s);
        if (f.ref_tok_s > 0)
            std::printf(",\"reference_tok_s\":%.1f,\"ratio\":%.3f", f.ref_tok_s, f.tok_s / f.ref_tok_s);
        std::printf("}");
    }
    std::printf("]}\n");
    return 0;
}

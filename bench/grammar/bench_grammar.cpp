// bench_grammar: what schema-constrained decoding costs per token.
//
//   mask <state>   : token_mask_builder::fill() for one grammar state with the smollm vocabulary (49152 tokens),
//                    mean over many calls; the state decides how much of the vocabulary trie is walked
//   mask kw <state>: the same for the JSON Schema keywords compiled to byte automata (Zod-shaped tool with
//                    integer bounds, a safe-integer range, email format + Zod's email pattern, a regex, a
//                    bounded number; a recursive $ref tree; a date-time format)
//   decode step    : one decode step of smollm-bpe-r-q4_k_m at batch 1 (the baseline), same run, same threads
//   generate       : whole constrained vs unconstrained generations (tokens/s), same seeds
//
// Usage: bench_grammar [model.gguf] [n_threads]. Prints a table, then one JSON line.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/grammar.h"
#include "engine/tokenizer.h"

using namespace mnemos;
using namespace mnemos::engine;
using clk = std::chrono::steady_clock;

namespace {

const char* k_schema = R"({"type":"object","properties":{
  "name":{"enum":["get_weather","roll_dice","recall"]},
  "arguments":{"type":"object","properties":{
    "city":{"type":"string","maxLength":40},
    "days":{"type":"integer"},
    "temp":{"type":"number"},
    "metric":{"type":"boolean"},
    "tags":{"type":"array","items":{"type":"string"},"maxItems":4}},
   "required":["city","days"]}},
 "required":["name","arguments"]})";

// Zod 4's output for z.object({email: z.email(), age: z.number().int().min(0).max(150), id: z.number().int(),
// code: z.string().regex(/^[A-Z]{3}-\d{2,4}$/), role: z.enum(["admin","user"]), score: z.number().gt(0).max(1),
// when: z.iso.datetime()}).
const char* k_zod_schema = R"({"type":"object","properties":{
  "email":{"type":"string","format":"email",
    "pattern":"^(?!\\.)(?!.*\\.\\.)([A-Za-z0-9_'+\\-\\.]*)[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9\\-]*\\.)+[A-Za-z]{2,}$"},
  "age":{"type":"integer","minimum":0,"maximum":150},
  "id":{"type":"integer","minimum":-9007199254740991,"maximum":9007199254740991},
  "code":{"type":"string","pattern":"^[A-Z]{3}-\\d{2,4}$"},
  "role":{"type":"string","enum":["admin","user"]},
  "score":{"type":"number","exclusiveMinimum":0,"maximum":1},
  "when":{"type":"string","format":"date-time"}},
 "required":["email","age","id","code","role","score","when"],"additionalProperties":false})";

// A recursive tree (z.lazy) through $ref.
const char* k_tree_schema = R"({"$defs":{"node":{"type":"object","properties":{
    "name":{"type":"string","maxLength":16},
    "children":{"type":"array","items":{"$ref":"#/$defs/node"}}},
  "required":["name","children"],"additionalProperties":false}},"$ref":"#/$defs/node"})";

double seconds_since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

struct gen_result {
    double tok_s = 0;
    int64_t n_tokens = 0;
    int n_valid = 0;
};

gen_result generate(engine::engine& e, const tokenizer& tk, std::shared_ptr<const grammar> g, int n_seqs,
                    int max_tokens) {
    gen_result r;
    const auto prompt = tk.encode("Call a tool for the weather in Paris:", false, false);
    std::vector<finish_info> infos(static_cast<size_t>(n_seqs));
    const auto t0 = clk::now();
    for (int i = 0; i < n_seqs; ++i) {
        request q;
        q.prompt = prompt;
        q.max_tokens = max_tokens;
        q.sampling.temperature = 1.0f;
        q.sampling.seed = 7 + static_cast<uint64_t>(i);
        q.constraint = g;
        q.on_finish = [&infos, i](const finish_info& f) { infos[static_cast<size_t>(i)] = f; };
        e.submit(std::move(q));
        e.run_until_idle();  // batch 1: one sequence at a time
    }
    const double s = seconds_since(t0);
    for (const auto& f : infos) {
        r.n_tokens += f.n_generated;
        r.n_valid += f.reason == finish_reason::stop_string || f.reason == finish_reason::eos;
    }
    r.tok_s = r.n_tokens / s;
    return r;
}

}  // namespace

constexpr const char* k_usage =
    "usage: bench_grammar [--model FILE] [--threads N]   (or: bench_grammar [FILE [N]])\n"
    "\n"
    "The per-token cost of the grammar's token mask in a set of parser states (a tool-call schema, Zod-style\n"
    "keyword schemas: bounds, email, regex, date-time, a recursive $ref tree), beside one decode step at\n"
    "batch 1 and generation with and without the constraint. Prints a table, then one JSON line.\n"
    "  --model FILE   a GGUF model (default ../shared/models/smollm-bpe-r-q4_k_m.gguf: 49k-token vocabulary)\n"
    "  --threads N    engine threads for the decode baseline (default 2)\n";

int main(int argc, char** argv) {
    std::string path = std::string(MNEMOS_SHARED_DIR) + "/models/smollm-bpe-r-q4_k_m.gguf";
    int n_threads = 2;
    int n_positional = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::fputs(k_usage, stdout);
            return 0;
        }
        if (a == "--model" && i + 1 < argc) {
            path = argv[++i];
        } else if (a == "--threads" && i + 1 < argc) {
            n_threads = std::atoi(argv[++i]);
        } else if (a.rfind("--", 0) == 0) {
            std::fprintf(stderr, "bench_grammar: unknown option '%s'\n%s", a.c_str(), k_usage);
            return 2;
        } else if (n_positional++ == 0) {
            path = a;
        } else {
            n_threads = std::atoi(a.c_str());
        }
    }
    if (n_threads < 1) {
        std::fprintf(stderr, "bench_grammar: --threads must be at least 1\n");
        return 2;
    }
    auto m = model::load(path);
    if (!m) {
        std::fprintf(stderr, "bench_grammar: %s\n", m.error().to_string().c_str());
        return 1;
    }
    std::shared_ptr<const model> mdl(std::move(m.value()));
    const tokenizer& tk = mdl->tok();

    auto t0 = clk::now();
    token_mask_builder mb(tk);
    const double build_ms = seconds_since(t0) * 1e3;

    grammar_options go;
    auto g = grammar::from_json_schema(k_schema, go);
    if (!g) {
        std::fprintf(stderr, "bench_grammar: %s\n", g.error().to_string().c_str());
        return 1;
    }
    auto zod = grammar::from_json_schema(k_zod_schema, go);
    auto tree = grammar::from_json_schema(k_tree_schema, go);
    if (!zod || !tree) {
        std::fprintf(stderr, "bench_grammar: %s\n", (!zod ? zod : tree).error().to_string().c_str());
        return 1;
    }
    struct state_case {
        const char* name;
        std::string prefix;
        double us = 0;
        int n_allowed = 0;
        const grammar* g = nullptr;  // nullptr: the tool-call schema
    };
    std::vector<state_case> cases = {
        {"start", "", 0, 0},
        {"after '{'", "{", 0, 0},
        {"in key", "{\"na", 0, 0},
        {"enum value", "{\"name\":\"ro", 0, 0},
        {"after ':'", "{\"name\":\"recall\",\"arguments\":{\"days\":", 0, 0},
        {"in number", "{\"name\":\"recall\",\"arguments\":{\"temp\":12.5", 0, 0},
        {"in string", "{\"name\":\"recall\",\"arguments\":{\"city\":\"Par", 0, 0},
        {"after ','", "{\"name\":\"recall\",\"arguments\":{\"city\":\"Paris\", ", 0, 0},
    };
    const size_t n_base = cases.size();
    const grammar* zg = zod->get();
    const grammar* tg = tree->get();
    cases.insert(cases.end(),
                 {
                     {"kw int range", "{\"age\":1", 0, 0, zg},
                     {"kw safe int", "{\"id\":-90071", 0, 0, zg},
                     {"kw number bound", "{\"score\":0.", 0, 0, zg},
                     {"kw email start", "{\"email\":\"", 0, 0, zg},
                     {"kw email local", "{\"email\":\"jo.doe", 0, 0, zg},
                     {"kw email domain", "{\"email\":\"jo@mail.exa", 0, 0, zg},
                     {"kw regex", "{\"code\":\"AB", 0, 0, zg},
                     {"kw date-time", "{\"when\":\"2024-0", 0, 0, zg},
                     {"kw $ref tree", "{\"name\":\"a\",\"children\":[{\"name\":\"b\",\"children\":[", 0, 0, tg},
                 });
    std::vector<uint64_t> mask;
    for (auto& c : cases) {
        grammar_state s = c.g ? c.g->start() : (*g)->start();
        if (!s.accept_bytes(c.prefix)) {
            std::fprintf(stderr, "bench_grammar: prefix rejected: %s\n", c.prefix.c_str());
            return 1;
        }
        mb.fill(s, mask);  // warm-up
        int iters = 0;
        t0 = clk::now();
        while (iters < 20 || seconds_since(t0) < 0.3) {
            mb.fill(s, mask);
            ++iters;
        }
        c.us = seconds_since(t0) * 1e6 / iters;
        for (uint64_t w : mask) c.n_allowed += __builtin_popcountll(w);
    }

    // Baseline: one decode step at batch 1 (unconstrained generation, time per generated token).
    engine_options eo;
    eo.n_threads = n_threads;
    eo.n_ctx = 512;
    auto e = engine::engine::create(mdl, eo);
    if (!e) {
        std::fprintf(stderr, "bench_grammar: %s\n", e.error().to_string().c_str());
        return 1;
    }
    {
        // Warm-up.
        request q;
        q.prompt = tk.encode("Hello", false, false);
        q.max_tokens = 4;
        (*e)->submit(std::move(q));
        (*e)->run_until_idle();
    }
    double decode_ms = 0;
    {
        request q;
        q.prompt = tk.encode("Call a tool for the weather in Paris:", false, false);
        q.max_tokens = 64;
        q.ignore_eos = true;
        q.sampling.temperature = 1.0f;
        int64_t n = 0;
        clk::time_point first;
        q.on_token = [&](token_id, std::string_view) {
            if (n++ == 0) first = clk::now();
        };
        (*e)->submit(std::move(q));
        (*e)->run_until_idle();
        decode_ms = seconds_since(first) * 1e3 / static_cast<double>(n - 1);
    }
    const int n_seqs = 4;
    const gen_result free_gen = generate(**e, tk, nullptr, n_seqs, 96);
    const gen_result con_gen = generate(**e, tk, *g, n_seqs, 96);

    std::printf("bench_grammar: %s, vocab %d tokens, %zu trie nodes (built in %.1f ms), %d threads\n",
                std::filesystem::path(path).filename().c_str(), tk.n_vocab(), mb.n_trie_nodes(), build_ms, n_threads);
    std::printf("%-28s %12s %12s %14s\n", "what", "us/token", "allowed", "vs decode step");
    double worst = 0, sum = 0, kw_worst = 0, kw_sum = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        const auto& c = cases[i];
        std::printf("mask %-23s %12.1f %12d %13.1f%%\n", c.name, c.us, c.n_allowed, 100.0 * c.us / (decode_ms * 1e3));
        double& w = i < n_base ? worst : kw_worst;
        w = std::max(w, c.us);
        (i < n_base ? sum : kw_sum) += c.us;
    }
    std::printf("%-28s %12.1f %12s %14s\n", "decode step (batch 1)", decode_ms * 1e3, "-", "100.0%");
    std::printf("%-28s %12.1f tok/s (%lld tokens, %d/%d complete)\n", "generate unconstrained", free_gen.tok_s,
                static_cast<long long>(free_gen.n_tokens), free_gen.n_valid, n_seqs);
    std::printf("%-28s %12.1f tok/s (%lld tokens, %d/%d complete)\n", "generate constrained", con_gen.tok_s,
                static_cast<long long>(con_gen.n_tokens), con_gen.n_valid, n_seqs);

    std::printf(
        "{\"bench\":\"grammar\",\"model\":\"%s\",\"n_vocab\":%d,\"trie_nodes\":%zu,\"trie_build_ms\":%.2f,"
        "\"threads\":%d,\"mask_us\":{",
        std::filesystem::path(path).filename().c_str(), tk.n_vocab(), mb.n_trie_nodes(), build_ms, n_threads);
    for (size_t i = 0; i < n_base; ++i) std::printf("%s\"%s\":%.1f", i ? "," : "", cases[i].name, cases[i].us);
    std::printf("},\"mask_us_keywords\":{");
    for (size_t i = n_base; i < cases.size(); ++i)
        std::printf("%s\"%s\":%.1f", i > n_base ? "," : "", cases[i].name, cases[i].us);
    std::printf("},\"mask_us_keywords_mean\":%.1f,\"mask_us_keywords_worst\":%.1f", kw_sum / (cases.size() - n_base),
                kw_worst);
    std::printf(
        ",\"mask_us_mean\":%.1f,\"mask_us_worst\":%.1f,\"decode_step_us\":%.1f,\"worst_vs_decode\":%.4f,"
        "\"gen_free_tok_s\":%.2f,\"gen_constrained_tok_s\":%.2f,\"constrained_complete\":%d}\n",
        sum / n_base, worst, decode_ms * 1e3, worst / (decode_ms * 1e3), free_gen.tok_s, con_gen.tok_s,
        con_gen.n_valid);
    return 0;
}

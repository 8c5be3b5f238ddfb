// mnemos generate: run a model on a prompt and stream the continuation.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "agent/cli/commands.h"
#include "agent/cli/engine_flags.h"
#include "engine/engine.h"

namespace mnemos::cli {

namespace {

void generate_usage(FILE* out) {
    std::fprintf(out,
                 "usage: mnemos generate [--model FILE] --prompt TEXT [options]\n"
                 "\n"
                 "Runs a GGUF model (llama or qwen2 architecture) on TEXT and streams the\n"
                 "continuation to stdout; timings go to stderr.\n"
                 "\n"
                 "options:\n"
                 "  --model FILE          GGUF model (default: $MNEMOS_MODEL, else ../shared/models)\n"
                 "  --prompt TEXT         the prompt (this or --prompt-file is required)\n"
                 "  --prompt-file FILE    read the prompt from FILE ('-' = standard input): for long\n"
                 "                        histories that do not fit the command line\n"
                 "  --chat                wrap the prompt as a user message in the model's chat template\n"
                 "  --system TEXT         system message for --chat\n"
                 "  --n-predict N         tokens to generate at most (default 128)\n"
                 "  --temperature T       0 = greedy (default 0.8)\n"
                 "  --top-k K             (default 40; 0 = off)\n"
                 "  --top-p P             (default 0.95)\n"
                 "  --min-p P             (default 0.05)\n"
                 "  --repeat-penalty R    (default 1.0 = off)\n"
                 "  --seed S              sampling seed (default 0xC0FFEE)\n"
                 "  --stop TEXT           stop string (repeatable)\n"
                 "  --ignore-eos          keep generating after end-of-generation tokens\n"
                 "  --threads N           CPU threads (default: all)\n"
                 "  --ctx N               context length (default: the model's, at most 32768)\n"
                 "  --dump-logits FILE    write the top-8 [id, logit] and logsumexp of every prompt\n"
                 "                        position and generated step as JSON lines\n"
                 "  --no-stream           print the text only at the end\n"
                 "  -h, --help            show this help\n"
                 "\n"
                 "%s",
                 k_engine_flags_help);
}

// The whole of FILE, or of standard input for "-". Errors: io_error naming the file.
result<std::string> read_prompt_file(const std::string& path) {
    std::string text;
    if (path == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
        if (std::cin.bad()) return make_error(errc::io_error, "cannot read standard input");
        return text;
    }
    std::ifstream f(path, std::ios::binary);
    if (!f) return make_error(errc::io_error, "cannot open '" + path + "'");
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    if (f.bad()) return make_error(errc::io_error, "cannot read '" + path + "'");
    return text;
}

struct logits_dumper {
    FILE* f = nullptr;
    int32_t n_prompt = 0;
    std::vector<engine::token_id> prompt;  // a copy: the request is moved into the engine

    void write(int64_t pos, std::span<const float> lg) {
        float mx = -INFINITY;
        for (float v : lg) mx = std::max(mx, v);
        double s = 0;
        for (float v : lg) s += std::exp(static_cast<double>(v) - mx);
        const double lse = mx + std::log(s);
        std::vector<int32_t> idx(lg.size());
        for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int32_t>(i);
        const size_t k = std::min<size_t>(8, idx.size());
        std::partial_sort(idx.begin(), idx.begin() + static_cast<long>(k), idx.end(),
                          [&](int32_t a, int32_t b) { return lg[a] > lg[b] || (lg[a] == lg[b] && a < b); });
        std::fprintf(f, "{\"pos\":%lld,\"kind\":\"%s\",", static_cast<long long>(pos),
                     pos < n_prompt ? "prompt" : "generated");
        if (pos < n_prompt) std::fprintf(f, "\"token\":%d,", prompt[static_cast<size_t>(pos)]);
        std::fprintf(f, "\"logsumexp\":%.6f,\"top\":[", lse);
        for (size_t i = 0; i < k; ++i) std::fprintf(f, "%s[%d,%.6f]", i ? "," : "", idx[i], lg[idx[i]]);
        std::fprintf(f, "]}\n");
    }
};

}  // namespace

std::string resolve_model_path(const std::string& flag_value) {
    if (!flag_value.empty()) return flag_value;
    if (const char* env = std::getenv("MNEMOS_MODEL"); env && *env) return env;
    namespace fs = std::filesystem;
    std::vector<fs::path> roots{fs::current_path() / ".." / "shared" / "models",
                                fs::current_path() / "shared" / "models"};
    char exe[4096];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (fs::path p = fs::path(exe).parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
            roots.push_back(p / ".." / "shared" / "models");
    }
    static const char* known[] = {"stories260K-f32.gguf", "smollm-bpe-r-q4_k_m.gguf", "llama-spm-r-q8_0.gguf"};
    for (const auto& r : roots)
        for (const char* k : known) {
            std::error_code ec;
            if (fs::is_regular_file(r / k, ec)) {
                const std::string p = fs::weakly_canonical(r / k, ec).string();
                std::fprintf(stderr, "mnemos: no --model or $MNEMOS_MODEL given; using %s\n", p.c_str());
                return p;
            }
        }
    return {};
}

std::function<void(int32_t, int32_t)> prefill_progress_bar(size_t n_prompt, size_t min_tokens) {
    if (!isatty(STDERR_FILENO) || n_prompt < min_tokens) return {};
    return [](int32_t done, int32_t total) {
        const int width = 40, fill = static_cast<int>(int64_t(width) * done / std::max(1, total));
        std::fprintf(stderr, "\rprefill [%.*s%*s] %d/%d tokens", fill, "########################################",
                     width - fill, "", done, total);
        if (done == total) std::fprintf(stderr, "\r%*s\r", width + 40, "");
        std::fflush(stderr);
    };
}

int cmd_generate(int argc, char** argv) {
    std::string model_path, prompt, system, dump_path;
    bool chat = false, stream = true, have_prompt = false;
    engine::request req;
    req.max_tokens = 128;
    engine::engine_options eo;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&](const char* name) -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "mnemos generate: %s needs a value\n", name);
                std::exit(2);
            }
            return argv[++i];
        };
        auto number = [&](const char* name) -> double {
            const char* v = value(name);
            char* end = nullptr;
            const double d = std::strtod(v, &end);
            if (end == v || *end != 0) {
                std::fprintf(stderr, "mnemos generate: %s expects a number, got '%s'\n", name, v);
                std::exit(2);
            }
            return d;
        };
        if (a == "-h" || a == "--help") {
            generate_usage(stdout);
            return 0;
        } else if (a == "--model" || a == "-m")
            model_path = value("--model");
        else if (a == "--prompt" || a == "-p")
            prompt = value("--prompt"), have_prompt = true;
        else if (a == "--prompt-file") {
            auto text = read_prompt_file(value("--prompt-file"));
            if (!text) {
                std::fprintf(stderr, "mnemos generate: --prompt-file: %s\n", text.error().message().c_str());
                return 2;
            }
            prompt = std::move(text.value()), have_prompt = true;
        } else if (a == "--system")
            system = value("--system");
        else if (a == "--chat")
            chat = true;
        else if (a == "--n-predict" || a == "-n")
            req.max_tokens = static_cast<int32_t>(number("--n-predict"));
        else if (a == "--temperature" || a == "--temp")
            req.sampling.temperature = static_cast<float>(number("--temperature"));
        else if (a == "--top-k")
            req.sampling.top_k = static_cast<int32_t>(number("--top-k"));
        else if (a == "--top-p")
            req.sampling.top_p = static_cast<float>(number("--top-p"));
        else if (a == "--min-p")
            req.sampling.min_p = static_cast<float>(number("--min-p"));
        else if (a == "--repeat-penalty")
            req.sampling.repeat_penalty = static_cast<float>(number("--repeat-penalty"));
        else if (a == "--seed")
            req.sampling.seed = static_cast<uint64_t>(number("--seed"));
        else if (a == "--stop")
            req.stop.emplace_back(value("--stop"));
        else if (a == "--ignore-eos")
            req.ignore_eos = true;
        else if (a == "--threads" || a == "-t")
            eo.n_threads = static_cast<int32_t>(number("--threads"));
        else if (a == "--ctx")
            eo.n_ctx = static_cast<int32_t>(number("--ctx"));
        else if (a == "--dump-logits")
            dump_path = value("--dump-logits");
        else if (a == "--no-stream")
            stream = false;
        else {
            std::string err;
            const flag_parse fp = parse_engine_flag(argc, argv, i, eo, err);
            if (fp == flag_parse::ok) continue;
            if (fp == flag_parse::error)
                std::fprintf(stderr, "mnemos generate: %s\n", err.c_str());
            else
                std::fprintf(stderr, "mnemos generate: unknown option '%s' (see --help)\n", a.c_str());
            return 2;
        }
    }
    if (!have_prompt) {
        std::fprintf(stderr, "mnemos generate: --prompt or --prompt-file is required (see --help)\n");
        return 2;
    }
    model_path = resolve_model_path(model_path);
    if (model_path.empty()) {
        std::fprintf(
            stderr,
            "mnemos generate: no model. Pass --model FILE or set MNEMOS_MODEL (see README: how to fetch one).\n");
        return 2;
    }

    const auto t0 = std::chrono::steady_clock::now();
    auto loaded = engine::model::load(model_path);
    if (!loaded) {
        std::fprintf(stderr, "mnemos generate: cannot load model: %s\n", loaded.error().to_string().c_str());
        return 1;
    }
    std::shared_ptr<const engine::model> m(std::move(loaded.value()));
    const auto t_loaded = std::chrono::steady_clock::now();

    const engine::tokenizer& tok = m->tok();
    if (chat) {
        std::vector<engine::chat_message> msgs;
        if (!system.empty()) msgs.push_back({"system", system});
        msgs.push_back({"user", prompt});
        const std::string text = m->chat().render(msgs, true);
        req.prompt = tok.encode(text, tok.add_bos_default(), true);
        for (auto& s : m->chat().stop_strings()) req.stop.push_back(s);
    } else {
        req.prompt = tok.encode(prompt, tok.add_bos_default(), true);
    }

    auto eng = engine::engine::create(m, eo);
    if (!eng) {
        std::fprintf(stderr, "mnemos generate: %s\n", eng.error().to_string().c_str());
        return 1;
    }

    logits_dumper dump;
    if (!dump_path.empty()) {
        dump.f = std::fopen(dump_path.c_str(), "w");
        if (!dump.f) {
            std::fprintf(stderr, "mnemos generate: cannot write %s: %s\n", dump_path.c_str(), std::strerror(errno));
            return 1;
        }
        dump.n_prompt = static_cast<int32_t>(req.prompt.size());
        dump.prompt = req.prompt;
        req.on_logits = [&dump](int64_t pos, std::span<const float> lg) { dump.write(pos, lg); };
    }

    std::string all_text;
    auto t_first = std::chrono::steady_clock::time_point{};
    req.on_token = [&](engine::token_id, std::string_view text) {
        if (t_first == std::chrono::steady_clock::time_point{}) t_first = std::chrono::steady_clock::now();
        if (stream) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
        } else {
            all_text += text;
        }
    };
    req.on_prefill = prefill_progress_bar(req.prompt.size());
    engine::finish_info fin;
    req.on_finish = [&](const engine::finish_info& info) { fin = info; };
    const int32_t n_prompt = static_cast<int32_t>(req.prompt.size());
    (*eng)->submit(std::move(req));
    (*eng)->run_until_idle();
    const auto t_end = std::chrono::steady_clock::now();
    if (!stream) std::fwrite(all_text.data(), 1, all_text.size(), stdout);
    std::fputc('\n', stdout);
    if (dump.f) std::fclose(dump.f);

    if (fin.reason == engine::finish_reason::error) {
        std::fprintf(stderr, "mnemos generate: %s\n", fin.error.to_string().c_str());
        return 1;
    }
    using secs = std::chrono::duration<double>;
    const double load_s = secs(t_loaded - t0).count();
    const double prefill_s =
        t_first.time_since_epoch().count() ? secs(t_first - t_loaded).count() : secs(t_end - t_loaded).count();
    const double decode_s = t_first.time_since_epoch().count() ? secs(t_end - t_first).count() : 0.0;
    std::fprintf(
        stderr,
        "\nmnemos: %s (%s, %s), load %.2f s | prompt %d tokens, %.1f tok/s | generated %d tokens, %.1f tok/s | "
        "stop: %s\n",
        model_path.c_str(), m->hp().arch.c_str(), m->weight_type_name(), load_s, n_prompt,
        prefill_s > 0 ? n_prompt / prefill_s : 0.0, fin.n_generated,
        decode_s > 0 && fin.n_generated > 1 ? (fin.n_generated - 1) / decode_s : 0.0,
        engine::finish_reason_name(fin.reason));
    if (fin.attention.sparse)
        std::fprintf(stderr, "mnemos: sparse attention (%d sink tokens, %d-token window, %d pages per query)\n",
                     fin.attention.n_sink, fin.attention.n_window, fin.attention.n_pages);
    return 0;
}

}  // namespace mnemos::cli

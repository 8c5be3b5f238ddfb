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

#include "agent/cli/args.h"
#include "agent/cli/commands.h"
#include "agent/cli/engine_flags.h"
#include "engine/engine.h"

namespace mnemos::cli {

namespace {

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
    std::string model_path, prompt, prompt_file, system, dump_path;
    bool chat = false, no_stream = false;
    engine::request req;
    req.max_tokens = 128;
    engine::engine_options eo;
    arg_parser p("mnemos generate [--model FILE] --prompt TEXT [options]",
                 "Runs a GGUF model (llama or qwen2 architecture) on TEXT and streams the\n"
                 "continuation to stdout; timings go to stderr.");
    p.text("--model,-m", model_path, "FILE", "GGUF model (default: $MNEMOS_MODEL, else ../shared/models)");
    p.text("--prompt,-p", prompt, "TEXT", "the prompt (this or --prompt-file is required)");
    p.text("--prompt-file", prompt_file, "FILE",
           "read the prompt from FILE ('-' = standard input): for long histories that do not fit the command line");
    p.toggle("--chat", chat, "wrap the prompt as a user message in the model's chat template");
    p.text("--system", system, "TEXT", "system message for --chat");
    p.integer("--n-predict,-n", req.max_tokens, 1, 1 << 24, "N", "tokens to generate at most (default 128)");
    p.real("--temperature,--temp", req.sampling.temperature, 0, 100, "T", "0 = greedy (default 0.8)");
    p.integer("--top-k", req.sampling.top_k, 0, 1 << 24, "K", "(default 40; 0 = off)");
    p.real("--top-p", req.sampling.top_p, 0, 1, "P", "(default 0.95)");
    p.real("--min-p", req.sampling.min_p, 0, 1, "P", "(default 0.05)");
    p.real("--repeat-penalty", req.sampling.repeat_penalty, 0, 100, "R", "(default 1.0 = off)");
    p.integer("--seed", req.sampling.seed, 0, UINT64_MAX, "S", "sampling seed (default 0xC0FFEE)");
    p.repeated("--stop", req.stop, "TEXT", "stop string (repeatable)");
    p.toggle("--ignore-eos", req.ignore_eos, "keep generating after end-of-generation tokens");
    p.integer("--threads,-t", eo.n_threads, 0, 1024, "N", "CPU threads (default: all)");
    p.integer("--ctx", eo.n_ctx, 0, 1 << 24, "N", "context length (default: the model's, at most 32768)");
    p.text("--dump-logits", dump_path, "FILE",
           "write the top-8 [id, logit] and logsumexp of every prompt position and generated step as JSON lines");
    p.toggle("--no-stream", no_stream, "print the text only at the end");
    add_engine_flags(p, eo);
    if (const int rc = p.run(argc, argv); rc >= 0) return rc;
    const bool stream = !no_stream;
    if (!prompt_file.empty()) {
        auto text = read_prompt_file(prompt_file);
        if (!text) {
            std::fprintf(stderr, "mnemos generate: --prompt-file: %s\n", text.error().message().c_str());
            return 2;
        }
        prompt = std::move(text.value());
    } else if (prompt.empty()) {
        std::fprintf(stderr, "mnemos generate: --prompt or --prompt-file is required (see --help)\n");
        return 2;
    }
    const auto t0 = std::chrono::steady_clock::now();
    int rc = 0;
    model_path = resolve_model_path(model_path);  // the path is printed with the timings
    auto m = load_command_model("generate", model_path, &rc);
    if (!m) return rc;
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
        model_path.c_str(), m->hp().arch.c_str(), m->weight_mix().c_str(), load_s, n_prompt,
        prefill_s > 0 ? n_prompt / prefill_s : 0.0, fin.n_generated,
        decode_s > 0 && fin.n_generated > 1 ? (fin.n_generated - 1) / decode_s : 0.0,
        engine::finish_reason_name(fin.reason));
    if (fin.attention.sparse)
        std::fprintf(stderr, "mnemos: sparse attention (%d sink tokens, %d-token window, %d pages per query)\n",
                     fin.attention.n_sink, fin.attention.n_window, fin.attention.n_pages);
    return 0;
}

}  // namespace mnemos::cli

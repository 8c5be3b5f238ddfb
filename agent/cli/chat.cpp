// mnemos chat: an interactive, streaming conversation with a local model.
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/cli/args.h"
#include "agent/cli/commands.h"
#include "agent/cli/engine_flags.h"
#include "agent/core/runtime.h"
#include "memory/store.h"

namespace mnemos::cli {

int cmd_chat(int argc, char** argv) {
    std::string model_path, store_dir, session_id, system;
    int32_t max_tokens = 256;
    engine::sampler_params sp;
    engine::engine_options eo;
    arg_parser p("mnemos chat [--model FILE] [--system TEXT] [--store DIR --session ID] [options]",
                 "Reads one user message per line from stdin and streams the model's reply to stdout.\n"
                 "With --store and --session the conversation is durable and resumes where it left off.\n"
                 "Empty line or EOF ends the chat.");
    p.text("--model,-m", model_path, "FILE", "GGUF model (default: $MNEMOS_MODEL, else ../shared/models)");
    p.text("--system", system, "TEXT", "system prompt (persona) of a new session");
    p.text("--store", store_dir, "DIR", "RocksDB directory (default: in memory)");
    p.text("--session", session_id, "ID", "session id (default: a new random one)");
    p.integer("--max-tokens", max_tokens, 1, 1 << 24, "N", "per reply (default 256)");
    p.real("--temperature,--temp", sp.temperature, 0, 100, "T", "(default 0.8; 0 = greedy)");
    p.integer("--threads,-t", eo.n_threads, 0, 1024, "N", "engine CPU threads (default: all)");
    add_engine_flags(p, eo);
    if (const int rc = p.run(argc, argv); rc >= 0) return rc;
    model_path = resolve_model_path(model_path);
    if (model_path.empty()) {
        std::fprintf(stderr, "mnemos chat: no model. Pass --model FILE or set MNEMOS_MODEL.\n");
        return 2;
    }
    auto loaded = engine::model::load(model_path);
    if (!loaded) {
        std::fprintf(stderr, "mnemos chat: cannot load model: %s\n", loaded.error().to_string().c_str());
        return 1;
    }
    std::shared_ptr<const engine::model> m(std::move(loaded.value()));
    agent::runtime_options ro;
    ro.engine = eo;
    ro.store_dir = store_dir;
    auto rt = agent::runtime::open(m, ro);
    if (!rt) {
        std::fprintf(stderr, "mnemos chat: %s\n", rt.error().to_string().c_str());
        return 1;
    }
    agent::engine_runner& runner = rt.value()->runner();
    agent::session_manager& sessions = rt.value()->sessions();
    agent::session_ptr s;
    if (!session_id.empty()) {
        if (auto found = sessions.find(session_id); found) {
            s = found.value();
            std::fprintf(stderr, "mnemos chat: resumed session %s (%zu messages)\n", s->id.c_str(), s->messages.size());
        }
    }
    if (!s) {
        agent::character c;
        c.persona = system;
        auto created = sessions.create(session_id, c, "");
        if (!created) {
            std::fprintf(stderr, "mnemos chat: %s\n", created.error().to_string().c_str());
            return 1;
        }
        s = created.value();
        std::fprintf(stderr, "mnemos chat: session %s\n", s->id.c_str());
    }
    std::string line;
    for (;;) {
        std::fprintf(stdout, "> ");
        std::fflush(stdout);
        if (!std::getline(std::cin, line) || line.empty()) break;
        if (!agent::valid_utf8(line)) {
            std::fprintf(stderr, "mnemos chat: input is not valid UTF-8\n");
            continue;
        }
        auto plan = sessions.begin_turn(s, {{"user", line}});
        if (!plan) {
            std::fprintf(stderr, "mnemos chat: %s\n", plan.error().to_string().c_str());
            break;
        }
        // The whole history is the prompt (sparse attention beyond the window) up to what the KV pool holds;
        // past that, the system message and the recent messages are kept.
        const int32_t n_ctx = runner.history_limit();
        if (auto fs = agent::fit_to_window(plan.value(), n_ctx, max_tokens, runner.page_size()); !fs.ok()) {
            std::fprintf(stderr, "mnemos chat: %s\n", fs.message().c_str());
            sessions.end_turn(s, {}, false);
            break;
        }
        const int32_t room = n_ctx - static_cast<int32_t>(plan->prompt.size());
        engine::request r;
        r.prompt = std::move(plan->prompt);
        r.stop = std::move(plan->stop);
        r.max_tokens = std::min(max_tokens, room);
        r.sampling = sp;
        r.on_prefill = prefill_progress_bar(r.prompt.size());
        std::string reply;
        std::promise<engine::finish_info> done;
        r.on_token = [&reply](engine::token_id, std::string_view text) {
            reply += text;
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
        };
        r.on_finish = [&done](const engine::finish_info& info) { done.set_value(info); };
        runner.submit(std::move(r));
        const engine::finish_info info = done.get_future().get();
        std::fprintf(stdout, "\n");
        if (info.reason == engine::finish_reason::error)
            std::fprintf(stderr, "mnemos chat: %s\n", info.error.to_string().c_str());
        nlohmann::json extra;
        if (plan->context.truncated) {
            extra["context"] = agent::context_window_json(plan->context);
            std::fprintf(stderr, "[history longer than the window: kept %d first and %d recent tokens, left out %d]\n",
                         plan->context.n_kept_first, plan->context.n_kept_recent, plan->context.n_dropped);
        }
        sessions.end_turn(s, reply, info.reason != engine::finish_reason::error, extra);
        std::fprintf(stderr, "[%d prompt tokens, %d reused, %d generated, %s]\n", info.n_prompt, info.n_reused,
                     info.n_generated, engine::finish_reason_name(info.reason));
    }
    return 0;  // the runtime's teardown stops the engine thread, then flushes and closes the store
}

}  // namespace mnemos::cli

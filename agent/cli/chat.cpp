// mnemos chat: an interactive, streaming conversation with a local model. Ctrl-C stops the reply being
// written (what was generated is kept, marked "interrupted") and returns to the prompt; Ctrl-C at the
// prompt, Ctrl-D or /exit leaves, after the store is flushed and closed.
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
#include "agent/cli/interrupt.h"
#include "agent/core/runtime.h"

namespace mnemos::cli {

namespace {

struct chat_settings {
    std::string model_path, store_dir, session_id, system;
    int32_t max_tokens = 256;
    engine::sampler_params sampling;
    engine::engine_options engine;
};

constexpr size_t k_resume_shown = 4;    // messages shown when a session resumes
constexpr size_t k_resume_chars = 240;  // of each

std::string plural(size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

// The session to talk in: found (resumed, its last messages shown) or created with --system.
result<agent::session_ptr> open_session(agent::session_manager& sessions, const chat_settings& cs) {
    if (!cs.session_id.empty()) {
        if (auto found = sessions.find(cs.session_id); found) {
            const auto& s = found.value();
            const auto messages = s->messages();
            std::fprintf(stderr, "mnemos chat: resumed session %s (%s)\n", s->id.c_str(),
                         plural(messages.size(), "message", "messages").c_str());
            if (!cs.system.empty() && cs.system != s->chr.persona)
                std::fprintf(stderr,
                             "mnemos chat: --system differs from the session's stored system prompt; the "
                             "stored one is kept\n");
            const size_t from = messages.size() > k_resume_shown ? messages.size() - k_resume_shown : 0;
            for (size_t i = from; i < messages.size(); ++i) {
                const auto& m = messages[i];
                if (m.role == "system") continue;
                const bool cut = m.content.size() > k_resume_chars;
                std::fprintf(stderr, "  %s: %s%s\n", m.role.c_str(), m.content.substr(0, k_resume_chars).c_str(),
                             cut ? " ..." : "");
            }
            return s;
        } else if (found.error().code() != errc::not_found) {
            return found.error();
        }
    }
    agent::character c;
    c.persona = cs.system;
    auto created = sessions.create(cs.session_id, c, "");
    if (created) std::fprintf(stderr, "mnemos chat: session %s\n", created.value()->id.c_str());
    return created;
}

// Waits for the reply, cancelling it when Ctrl-C arrives. Returns its finish info.
engine::finish_info await_reply(agent::engine_runner& runner, engine::seq_id id,
                                std::future<engine::finish_info>& done) {
    bool cancelled = false;
    while (done.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready)
        if (!cancelled && interrupt_guard::raised()) {
            runner.cancel(id);
            cancelled = true;
        }
    return done.get();
}

// One exchange: the user's line appended, the reply streamed and appended (partial when interrupted).
// Returns false when the chat cannot go on.
bool exchange(agent::runtime& rt, const agent::session_ptr& s, const std::string& line, const chat_settings& cs) {
    auto& sessions = rt.sessions();
    auto& runner = rt.runner();
    auto plan = sessions.begin_turn(s, {{"user", line}});
    if (!plan) {
        std::fprintf(stderr, "mnemos chat: %s\n", plan.error().to_string().c_str());
        return false;
    }
    // The whole history is the prompt (sparse attention beyond the window) up to what the KV pool holds;
    // past that, the system message and the recent messages are kept.
    const int32_t n_ctx = runner.history_limit();
    if (auto fs = agent::fit_to_window(plan.value(), n_ctx, cs.max_tokens, runner.page_size()); !fs.ok()) {
        std::fprintf(stderr, "mnemos chat: %s\n", fs.message().c_str());
        sessions.end_turn(s, {}, false);
        return false;
    }
    engine::request r;
    r.max_tokens = std::min(cs.max_tokens, n_ctx - static_cast<int32_t>(plan->prompt.size()));
    r.prompt = std::move(plan->prompt);
    r.stop = std::move(plan->stop);
    r.sampling = cs.sampling;
    r.on_prefill = prefill_progress_bar(r.prompt.size());
    std::string reply;
    std::promise<engine::finish_info> finished;
    auto done = finished.get_future();
    r.on_token = [&reply](engine::token_id, std::string_view text) {
        reply += text;
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
    };
    r.on_finish = [&finished](const engine::finish_info& info) { finished.set_value(info); };
    const engine::finish_info info = await_reply(runner, runner.submit(std::move(r), "chat"), done);
    const bool interrupted = info.reason == engine::finish_reason::cancelled;
    std::fprintf(stdout, interrupted ? " [interrupted]\n" : "\n");
    if (info.reason == engine::finish_reason::error)
        std::fprintf(stderr, "mnemos chat: %s\n", info.error.to_string().c_str());
    nlohmann::json extra = nlohmann::json::object();
    if (plan->context.truncated) {
        extra["context"] = agent::context_window_json(plan->context);
        std::fprintf(stderr, "[history longer than the window: kept %d first and %d recent tokens, left out %d]\n",
                     plan->context.n_kept_first, plan->context.n_kept_recent, plan->context.n_dropped);
    }
    if (interrupted) extra["interrupted"] = true;
    const bool keep = info.reason != engine::finish_reason::error && !(interrupted && reply.empty());
    if (auto st = sessions.end_turn(s, reply, keep, extra); !st.ok())
        std::fprintf(stderr, "mnemos chat: the reply was not stored: %s\n", st.to_string().c_str());
    std::fprintf(stderr, "[%d prompt tokens, %d reused, %d generated, %s]\n", info.n_prompt, info.n_reused,
                 info.n_generated, engine::finish_reason_name(info.reason));
    interrupt_guard::clear();
    return true;
}

// Reads lines until /exit, end of input or Ctrl-C at the prompt.
void chat_loop(agent::runtime& rt, const agent::session_ptr& s, const chat_settings& cs) {
    std::string line;
    for (;;) {
        std::fprintf(stdout, "> ");
        std::fflush(stdout);
        if (!interrupt_guard::read_line(line)) break;
        if (line.empty()) continue;
        if (line == "/exit" || line == "/quit") break;
        if (!agent::valid_utf8(line)) {
            std::fprintf(stderr, "mnemos chat: input is not valid UTF-8\n");
            continue;
        }
        if (!exchange(rt, s, line, cs)) break;
    }
    std::fprintf(stdout, "\n");
}

}  // namespace

int cmd_chat(int argc, char** argv) {
    chat_settings cs;
    arg_parser p("mnemos chat [--model FILE] [--system TEXT] [--store DIR --session ID] [options]",
                 "Reads one user message per line from stdin and streams the model's reply to stdout.\n"
                 "With --store and --session the conversation is durable and resumes where it left off.\n"
                 "Ctrl-C stops a reply (what was written is kept); /exit, Ctrl-D or Ctrl-C at the prompt leave.");
    p.text("--model,-m", cs.model_path, "FILE", "GGUF model (default: $MNEMOS_MODEL, else ../shared/models)");
    p.text("--system", cs.system, "TEXT", "system prompt (persona) of a new session");
    p.text("--store", cs.store_dir, "DIR", "RocksDB directory (default: in memory)");
    p.text("--session", cs.session_id, "ID", "session id (default: a new random one)");
    p.integer("--max-tokens", cs.max_tokens, 1, 1 << 24, "N", "per reply (default 256)");
    p.real("--temperature,--temp", cs.sampling.temperature, 0, 100, "T", "(default 0.8; 0 = greedy)");
    p.integer("--top-k", cs.sampling.top_k, 0, 1 << 24, "K", "(default 40; 0 = off)");
    p.real("--top-p", cs.sampling.top_p, 0, 1, "P", "(default 0.95)");
    p.real("--min-p", cs.sampling.min_p, 0, 1, "P", "(default 0.05)");
    p.integer("--seed", cs.sampling.seed, 0, UINT64_MAX, "S", "sampling seed (default 0xC0FFEE)");
    p.integer("--ctx", cs.engine.n_ctx, 0, 1 << 24, "N", "context length (default: the model's, at most 32768)");
    p.integer("--threads,-t", cs.engine.n_threads, 0, 1024, "N", "engine CPU threads (default: all)");
    add_engine_flags(p, cs.engine);
    if (const int rc = p.run(argc, argv); rc >= 0) return rc;
    int rc = 0;
    auto m = load_command_model("chat", cs.model_path, &rc);
    if (!m) return rc;
    agent::runtime_options ro;
    ro.engine = cs.engine;
    ro.store_dir = cs.store_dir;
    auto rt = agent::runtime::open(std::move(m), ro);
    if (!rt) {
        std::fprintf(stderr, "mnemos chat: %s\n", rt.error().to_string().c_str());
        return 1;
    }
    auto s = open_session(rt.value()->sessions(), cs);
    if (!s) {
        std::fprintf(stderr, "mnemos chat: %s\n", s.error().to_string().c_str());
        return 1;
    }
    interrupt_guard guard;
    chat_loop(*rt.value(), s.value(), cs);
    return 0;  // the runtime's teardown stops the engine thread, then flushes and closes the store
}

}  // namespace mnemos::cli

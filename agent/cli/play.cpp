// mnemos play: run a scenario file (agent/play.h) and print its score.
#include "agent/play/play.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/cli/args.h"
#include "agent/cli/commands.h"
#include "agent/cli/engine_flags.h"
#include "agent/cli/interrupt.h"
#include "agent/play/player_inbox.h"
#include "agent/play/steps.h"
#include "agent/scenario/runner_text.h"
#include "agent/scenario/scenario.h"
#include "agent/server/server.h"
#include "engine/model.h"

namespace mnemos::cli {

namespace {

// The table after a game: characters, tool turns, probes, then one line of totals.
void print_report(const agent::play_report& r, const agent::scenario& sc, const std::string& model_path) {
    std::fprintf(stderr, "\n%s (%s) with %s\n", sc.title.c_str(), sc.id.c_str(), model_path.c_str());
    std::fprintf(stderr, "%-24s %8s %9s %6s %8s %8s\n", "character", "tokens", "generated", "turns", "sys_tok",
                 "reused");
    for (const auto& c : r.characters)
        std::fprintf(stderr, "%-24s %8lld %9lld %6d %8d %8d\n", c.id.c_str(), static_cast<long long>(c.n_tokens),
                     static_cast<long long>(c.n_generated), c.n_turns, c.n_system_tokens, c.n_prefix_reused);
    for (const auto& t : r.tool_turns) {
        std::string called;
        for (const auto& c : t.called) called += (called.empty() ? "" : ",") + c;
        std::fprintf(stderr, "tool turn %-4lld %-16s called [%s] %s\n", static_cast<long long>(t.step_idx),
                     t.speaker.c_str(), called.c_str(), t.passed ? "PASS" : "FAIL");
    }
    std::fprintf(stderr, "%-32s %s\n", "probe", "result");
    for (const auto& p : r.probes)
        std::fprintf(stderr, "%-32s %s\n", p.id.c_str(),
                     p.score.passed   ? "PASS"
                     : p.context_full ? "FAIL (context full)"
                                      : "FAIL");
    if (r.clues.n_available > 0 || !r.accusation.votes.empty())
        std::fprintf(stderr, "clues found %d/%d | votes %zu, %d for a culprit | accusation: %s\n", r.clues.n_found,
                     r.clues.n_available, r.accusation.votes.size(), r.accusation.n_correct,
                     r.accusation.verdict.empty() ? "no one (no majority)"
                     : r.accusation.solved        ? (r.accusation.verdict + ", a culprit").c_str()
                                                  : (r.accusation.verdict + ", not a culprit").c_str());
    double t_turns = 0;
    int64_t n_gen = 0;
    for (const auto& t : r.timings) t_turns += t.seconds, n_gen += t.n_generated;
    std::fprintf(stderr,
                 "score %d/%zu | tool turns %d/%zu | windowed steps %lld | steps %lld (%lld resumed) | %zu "
                 "generations, %lld tokens, %.2f s (%.1f ms each) | "
                 "prefix hits: %lld memory, %lld disk, %lld computed | total %.2f s\n",
                 r.n_probes_passed, r.probes.size(), r.n_tool_turns_passed, r.tool_turns.size(),
                 static_cast<long long>(r.n_windowed), static_cast<long long>(r.n_steps),
                 static_cast<long long>(r.n_steps_resumed), r.timings.size(), static_cast<long long>(n_gen), t_turns,
                 r.timings.empty() ? 0.0 : 1000.0 * t_turns / double(r.timings.size()),
                 static_cast<long long>(r.hits_resident), static_cast<long long>(r.hits_store),
                 static_cast<long long>(r.misses), r.seconds);
}

// A game that stopped before its end: where, and how to go on.
void print_stopped(const agent::play_report& r, const agent::play_options& po) {
    const char* why = r.interrupted ? "interrupted" : "stopped (--max-steps)";
    if (po.store_dir.empty())
        std::fprintf(stderr, "%s at step %lld/%lld; without --store the game is not kept\n", why,
                     static_cast<long long>(r.n_steps_done), static_cast<long long>(r.n_steps));
    else
        std::fprintf(stderr, "%s at step %lld/%lld; run the same command with --resume to continue\n", why,
                     static_cast<long long>(r.n_steps_done), static_cast<long long>(r.n_steps));
}

// --play-as: the player named by id or name becomes interactive; false (and a message) when there is none.
bool make_interactive(agent::scenario& sc, const std::string& who) {
    const auto id = agent::play_steps::find_participant(sc, who);  // by id or name, width and case folded
    for (auto& pl : sc.players)
        if (id && pl.id == *id) {
            pl.interactive = true;
            return true;
        }
    std::string names;
    for (const auto& pl : sc.players) names += (names.empty() ? "" : ", ") + pl.id;
    std::fprintf(stderr, "mnemos play: --play-as: no player '%s' in %s (players: %s)\n", who.c_str(), sc.id.c_str(),
                 names.empty() ? "none" : names.c_str());
    return false;
}

// The command line of `mnemos play`.
struct play_cli {
    std::string file, model_path, play_as;
    agent::play_options po;
    engine::engine_options eo;
    bool quiet = false;
    int serve_port = -1;
    double linger_s = 0;
    double player_timeout_s = 120;
};

// Parses the flags into c; returns an exit status (--help, a bad flag) or -1 to go on.
int parse_play_flags(int argc, char** argv, play_cli& c) {
    arg_parser p("mnemos play FILE [options]",
                 "Plays a scenario (scenarios/*.json): the game master and NPCs are characters whose\n"
                 "sessions share the scenario's prefix; scripted lines are appended, interactive turns\n"
                 "generated, clues released at their phase, probes asked on a copy of the character's\n"
                 "context and scored. In a scenario with tools the game master is an agent: its calls\n"
                 "run (packs kept by the runner, recall over its whole stored history) and are scored\n"
                 "against expect_tools / must_call_tools. A history longer than the window is attended\n"
                 "sparsely (below). Turns stream to stdout, progress and the summary go to stderr.");
    p.positional("FILE", c.file, true, "the scenario");
    p.text("--model,-m", c.model_path, "FILE", "GGUF model (default: $MNEMOS_MODEL, else ../shared/models)");
    p.text("--store", c.po.store_dir, "DIR",
           "RocksDB directory: the game, its sessions and KV persist (default: memory)");
    p.toggle("--resume", c.po.resume, "continue the game found in --store where it stopped");
    p.toggle("--accept-changes", c.po.accept_changes,
             "with --resume: a character whose system text the scenario now renders otherwise gets the new text as a "
             "new system message (without it such a resume is refused, naming the characters)");
    p.integer("--seed", c.po.seed, 0, UINT64_MAX, "S", "sampling seed (default 0)");
    p.real("--temperature,--temp", c.po.temperature, 0, 100, "T", "(default 0 = greedy)");
    p.integer("--max-tokens", c.po.max_tokens, 1, 1 << 24, "N",
              "tokens per turn and per probe (default: the scenario's budgets)");
    p.integer("--ctx", c.po.n_ctx, 0, 1 << 24, "N", "context length (default: the model's, at most 32768)");
    p.text("--transcript", c.po.transcript_path, "FILE", "write the transcript as text");
    p.text("--results", c.po.results_path, "FILE",
           "write the results as JSON (probes, score, tokens, prefix hits, timings)");
    p.integer("--threads,-t", c.po.n_threads, 0, 1024, "N", "engine CPU threads (default: all)");
    p.integer("--max-steps", c.po.max_steps, 0, INT64_MAX, "N",
              "stop after N steps (counting resumed ones) as if interrupted; --resume continues");
    p.text("--tool-choice", c.po.tool_choice, "C",
           "the game master's tool calls: auto (the model decides; default) or required (the first generation of "
           "each of its turns and probes is a call)");
    p.integer("--serve", c.serve_port, 0, 65535, "PORT",
              "serve the game on 127.0.0.1:PORT while it plays (0: any free port): the spectator page at /, the "
              "WebSocket feed (turns stream token by token) and the API of `mnemos serve`");
    p.real("--linger", c.linger_s, 0, 1e6, "S", "with --serve: keep serving S seconds after the game ends (default 0)");
    p.real("--player-timeout", c.player_timeout_s, 0, 1e6, "S",
           "with --serve: interactive players' lines come over the WebSocket ({\"type\": \"player\", \"name\": "
           "NAME, \"content\": LINE}); a turn waits at most S seconds for its line, then says the scripted line or is "
           "skipped (default 120)");
    p.toggle("--quiet", c.quiet, "do not stream the turns");
    p.text("--play-as", c.play_as, "PLAYER",
           "you are this player (id or name, e.g. detective): its mode becomes interactive, so each of its turns "
           "asks you for the line (Enter says the scripted one; \"@name: ...\" addresses someone else)");
    add_engine_flags(p, c.eo);
    if (const int rc = p.run(argc, argv); rc >= 0) return rc;
    c.po.attention = c.eo.attention;
    if (c.eo.kv_bytes) c.po.kv_bytes = c.eo.kv_bytes;
    if (c.po.resume && c.po.store_dir.empty()) {
        std::fprintf(stderr, "mnemos play: --resume needs --store DIR\n");
        return 2;
    }
    return -1;
}

// The warm-up on stderr: one line per character, redrawn as its system text is prefilled ("warm-up 2/6
// Julian Blackwood [#####     ] 1200/2400 tokens"), each ended when its character is done.
std::function<void(const agent::warmup_progress&)> warmup_progress_line() {
    const bool tty = isatty(STDERR_FILENO);
    return [tty](const agent::warmup_progress& w) {
        const bool done = w.skipped || w.n_done >= w.n_tokens;
        if (!tty && !done) return;  // a log gets one line per character
        const int width = 30, fill = static_cast<int>(int64_t(width) * w.n_done / std::max(1, w.n_tokens));
        std::fflush(stdout);
        std::fprintf(stderr, "%swarm-up %d/%d %s [%.*s%*s] %d/%d tokens%s", tty ? "\r\033[K" : "", w.character_idx + 1,
                     w.n_characters, w.name.c_str(), fill, "##############################", width - fill, "", w.n_done,
                     w.n_tokens, w.skipped ? " (longer than the window: skipped)" : "");
        if (done) std::fputc('\n', stderr);
        std::fflush(stderr);
    };
}

// Turns to stdout (unless quiet), progress to stderr, and interactive players' lines from the terminal.
void use_terminal(agent::play_options& po, bool quiet, const agent::scenario& sc) {
    if (!quiet)
        po.on_output = [](std::string_view text) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
        };
    po.on_progress = [](std::string_view line) {
        std::fflush(stdout);
        std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    };
    po.on_warmup = warmup_progress_line();
    if (isatty(STDIN_FILENO))
        po.ask_player = [&sc](const agent::player_prompt& q) {
            using agent::runner_text_key;
            std::string prompt;
            if (!q.scripted.empty())
                prompt = agent::runner_text(sc, runner_text_key::player_script, {{"line", q.scripted}});
            prompt += agent::runner_text(sc, runner_text_key::player_prompt, {{"player", q.player}, {"to", q.to}});
            std::fputs(prompt.c_str(), stdout);
            std::fflush(stdout);
            std::string line;
            if (!interrupt_guard::read_line(line)) return agent::player_line{};
            return agent::parse_player_line(line);
        };
}

// --serve: the play's own runner and sessions behind the HTTP server while it plays, for the spectator page;
// interactive players' lines come over the WebSocket into the inbox. Both must outlive the game.
struct served_game {
    explicit served_game(const std::vector<std::string>& players) : inbox(players), has_players(!players.empty()) {}
    agent::player_inbox inbox;
    bool has_players;
    std::unique_ptr<agent::server> srv;  // after the inbox: its on_player uses it
};

void serve_while_playing(const play_cli& c, agent::play_options& po, served_game& g) {
    auto& inbox = g.inbox;
    auto& srv = g.srv;
    const double player_timeout_s = c.player_timeout_s, linger_s = c.linger_s;
    const int serve_port = c.serve_port;
    if (g.has_players)
        po.ask_player = [&inbox, player_timeout_s](const agent::player_prompt& q) {
            std::fflush(stdout);
            std::fprintf(stderr,
                         "[play] waiting up to %g s for %s's line to %s over the WebSocket "
                         "({\"type\": \"player\", \"name\": \"%s\", \"content\": ...})\n",
                         player_timeout_s, q.player.c_str(), q.to.c_str(), q.player.c_str());
            auto line = inbox.wait(q.player, std::chrono::milliseconds(static_cast<int64_t>(player_timeout_s * 1000)));
            if (!line)
                std::fprintf(stderr, "[play] no line from %s: %s\n", q.player.c_str(),
                             q.scripted.empty() ? "turn skipped" : "the scripted line is said");
            return agent::parse_player_line(line.value_or(std::string()));
        };
    po.on_runtime = [&srv, &inbox, serve_port](agent::engine_runner& runner, agent::session_manager& sessions) {
        agent::server_options so;
        so.port = static_cast<uint16_t>(serve_port);
        so.on_player = [&inbox](const std::string& name, const std::string& content) {
            return inbox.post(name, content);
        };
        auto started = agent::server::start(so, runner, sessions);
        if (!started) {
            std::fprintf(stderr, "mnemos play: cannot serve: %s\n", started.error().to_string().c_str());
            return;
        }
        srv = std::move(started.value());
        std::fprintf(stderr, "[play] spectator page: http://127.0.0.1:%u/\n", static_cast<unsigned>(srv->port()));
    };
    po.on_teardown = [&srv, &inbox, linger_s] {
        inbox.close();
        if (!srv) return;
        if (linger_s > 0) {  // Ctrl-C / SIGTERM ends it early
            std::fprintf(stderr, "[play] serving %.0f s more\n", linger_s);
            const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(linger_s);
            while (!interrupt_guard::raised() && std::chrono::steady_clock::now() < until)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        srv->stop();
        srv.reset();
    };
}

}  // namespace

int cmd_play(int argc, char** argv) {
    play_cli c;
    if (const int rc = parse_play_flags(argc, argv, c); rc >= 0) return rc;
    auto sc = agent::load_scenario(c.file);
    if (!sc) {
        std::fprintf(stderr, "mnemos play: %s\n", sc.error().to_string().c_str());
        return 1;
    }
    if (!c.play_as.empty() && !make_interactive(sc.value(), c.play_as)) return 2;
    int rc = 0;
    auto m = load_command_model("play", c.model_path, &rc);
    if (!m) return rc;
    agent::play_options& po = c.po;
    use_terminal(po, c.quiet, sc.value());
    std::vector<std::string> player_names;
    for (const auto& p : sc->players)
        if (p.interactive) player_names.push_back(p.name);
    served_game served(player_names);
    if (c.serve_port >= 0) serve_while_playing(c, po, served);

    interrupt_guard guard;  // Ctrl-C / SIGTERM: stop after the step in progress, flush, close; twice: exit
    po.should_stop = [] { return interrupt_guard::raised(); };
    auto rep = agent::play_scenario(sc.value(), m, po);
    if (!rep) {
        std::fprintf(stderr, "mnemos play: %s\n", rep.error().to_string().c_str());
        return 1;
    }
    const auto& r = rep.value();
    print_report(r, sc.value(), c.model_path);
    if (r.n_steps_done < r.n_steps) print_stopped(r, po);
    return r.interrupted ? 128 + interrupt_guard::last_signal() : 0;
}

}  // namespace mnemos::cli

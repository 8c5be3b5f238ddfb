#pragma once
// The game (agent/play/play.h play_scenario): the runtime objects, the steps
// and what happened. run() composes: open the runtime, compile the game
// master's tools, read the game log, rebuild the character sessions, warm the
// shared prefix, play the remaining steps phase by phase, then score and
// write the files. The parts that need no runtime live beside it: steps.h
// (the game as data), game_tools.h, game_log.h and play_report.h.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/event.h"
#include "agent/core/runtime.h"
#include "agent/play/action_tools.h"
#include "agent/play/game_tools.h"
#include "agent/play/play.h"
#include "agent/play/steps.h"
#include "agent/scenario/runner_text.h"
#include "agent/tooling/agent_loop.h"
#include "memory/store.h"

namespace mnemos::agent::play_game {

using json = nlohmann::json;
using play_steps::step;

// KV page size of the engine and of the durable store's block refs.
inline constexpr int32_t k_page_size = 16;

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class game {
  public:
    game(const scenario& sc, const play_options& o);
    ~game() { teardown(); }

    result<play_report> run(std::shared_ptr<const engine::model> m);

  private:
    // -- run()'s parts, in order (game.cpp)
    status open_runtime();
    status prepare_tools();
    result<std::vector<step_event>> read_log();
    status setup_sessions(const std::vector<step_event>& done);
    status warm_prefix();  // game_warmup.cpp
    status play_rest(std::vector<step_event>& done);
    result<play_report> finish(const std::vector<step_event>& done, std::chrono::steady_clock::time_point t_start);
    // -- the characters' system texts against the game's (game_system_texts.cpp)
    // The system message this run gives character c's session (its text, then the tool section).
    std::string system_text_of(const scenario_character& c) const;
    // character id -> sha256 hex of system_text_of.
    std::map<std::string, std::string> system_hashes() const;
    // On resume: the characters whose system text differs from the hash in the game's metadata (a game without
    // hashes records them now). Not accept_changes: an error naming them; else kept in changed_ for apply.
    status check_system_texts(json& meta);
    // After setup_sessions: each changed character's session gets its new text as a system message.
    status apply_system_changes();
    // Tells on_teardown (once, when the runtime was handed out), stops the engine, flushes the store.
    void teardown();

    // -- one step (game_turns.cpp)
    result<step_event> run_step(int64_t idx);
    result<step_event> run_probe(const step& s, int64_t idx, step_event ev);
    result<step_event> run_turn(const step& s, int64_t idx, step_event ev);
    // The game master opens a phase in its own words (the scripted narration as its cue and fallback).
    result<step_event> run_narration(const step& s, int64_t idx, step_event ev);
    status apply(const std::vector<play_steps::effect>& effs);

    // -- the table's mechanics (game_actions.cpp)
    // A character's investigate / ask / vote: its first generation is a call of that tool under its grammar.
    result<step_event> run_action(const step& s, int64_t idx, step_event ev);
    // A player's action: its scripted target, or what the player types.
    result<step_event> run_player_action(const step& s, step_event ev);
    // Whoever the previous ask addressed answers the one who asked.
    result<step_event> run_answer(const step& s, int64_t idx, step_event ev);
    // The game master reads the votes and the truth.
    result<step_event> run_verdict(step_event ev);
    // An interactive player's "/investigate X" or "/vote X" typed on its turn: done as its action.
    void run_command(const play_actions::player_command& cmd, step_event& ev);
    // What the step's calls did and the clues its words fire, recorded in ev and in the table (before its effects).
    void settle(step_event& ev);
    // The effects of ev except the speaker's own messages that its live session already holds.
    std::vector<play_steps::effect> effects_after_live(const step_event& ev) const;
    // The registry of character cid's tools for step idx (scenario tools for the game master, tools.npc for npcs,
    // and the actions it is offered), over st and table; empty when it has none.
    std::unique_ptr<tools::tool_registry> make_tools(const std::string& cid, game_tools::tool_state& st,
                                                     play_table::table_state& table, int64_t idx);

    struct gen_result {
        std::string text;
        engine::finish_info info;
        double seconds = 0;
        bool context_full = false;
    };
    // stream: text goes to on_output as it is sampled, and, when token_sid is set, to the session
    // manager's token observer for that session (spectators of `mnemos play --serve`).
    // on_prefill: the engine's prefill progress (tokens done, prompt tokens), for the warm-up.
    gen_result generate(std::vector<engine::token_id> prompt, std::vector<std::string> stop, int32_t budget,
                        uint64_t seed, bool stream, std::shared_ptr<const engine::grammar> constraint = nullptr,
                        std::string trigger = {}, std::string token_sid = {},
                        std::function<void(int32_t, int32_t)> on_prefill = {});
    // The warm-up's progress to on_warmup and to the game session's spectators (session_manager::notify_status).
    void tell_warmup(const warmup_progress& w) const;
    // Fits a generation's prompt into the window (runtime's fit_to_window: the system message and the most
    // recent messages that fit, with room to answer); false when even the last message does not fit.
    bool fit_prompt(turn_plan& plan, int32_t budget, bool& windowed) const;
    int32_t window() const;
    bool has_tools(const std::string& cid) const;

    struct agent_out {
        std::string text;                // the final reply
        std::vector<step_round> rounds;  // the tool rounds, for the step event
        std::vector<std::string> called;
        engine::finish_info info;  // summed over generations
        double seconds = 0;
        bool context_full = false;
        bool windowed = false;
    };
    // Appends a round's call and result messages; returns the next generation's plan.
    using append_fn =
        std::function<result<turn_plan>(const std::vector<engine::chat_message>&, const std::vector<json>&)>;
    // Drives the agent loop (agent/tooling/agent_loop.h) synchronously: plan -> tool calls -> results -> plan,
    // up to 4 generations, when st is given (the game master of a scenario with tools); one generation
    // otherwise. live: the generations belong to the character's session (a turn, not a probe on a copy):
    // their tokens reach the token observer.
    // action: an action turn's tool, called first under its own grammar; the turn ends with that call.
    result<agent_out> run_agent(const std::string& cid, turn_plan plan, game_tools::tool_state* st, int32_t budget,
                                int64_t idx, const append_fn& append, bool live, play_table::table_state* table,
                                turn_action action = turn_action::talk);
    // run_agent's tool round: runs the calls, streams them, appends the call and result messages.
    result<turn_plan> run_round(const loop::run_tools& t, const tools::tool_registry& reg, loop::agent_loop& lp,
                                const append_fn& append);

    std::string display_name(const std::string& id) const { return play_steps::display_name(sc_, id); }
    std::string words(runner_text_key k, text_args args = {}) const { return runner_text(sc_, k, args); }
    void out(std::string_view text) const {
        if (opt_.on_output) opt_.on_output(text);
    }
    void progress(const std::string& line) const {
        if (opt_.on_progress) opt_.on_progress(line);
    }

    bool handed_out_ = false;           // on_runtime was called: on_teardown is owed
    std::vector<std::string> changed_;  // characters whose new system text --accept-changes applies

    const scenario& sc_;
    const play_options& opt_;
    std::vector<step> steps_;
    std::shared_ptr<const engine::model> model_;
    std::unique_ptr<memory::store> db_;
    std::unique_ptr<session_store_i> store_;
    std::unique_ptr<engine_runner> runner_;
    std::unique_ptr<session_manager> sessions_;
    std::string game_id_;
    std::map<std::string, session_ptr> chars_;           // character id -> session
    game_tools::tool_state tools_;                       // the game's packs and notes
    tool_choice first_choice_ = tool_choice::automatic;  // of each tool turn and probe (play_options::tool_choice)
    // The tools of a character that has any: its grammars and the tool section of its system text.
    struct character_tools {
        std::shared_ptr<const engine::grammar> g_auto;                           // a call after "<tool_call>"
        std::shared_ptr<const engine::grammar> g_forced;                         // a call from the first token
        std::map<turn_action, std::shared_ptr<const engine::grammar>> g_action;  // a call of that action's tool
        std::string prompt;
    };
    std::map<std::string, character_tools> char_tools_;  // character id -> its tools
    std::vector<engine::token_id> call_tag_;
    play_table::table_state table_;                  // clues found and votes cast (rebuilt from the game log)
    play_actions::action_context ctx_;               // what an action call may do in the current step
    const std::vector<step_event>* done_ = nullptr;  // the completed steps (play_rest's)
    play_report rep_;
    std::map<std::string, character_report> char_rep_;
};

}  // namespace mnemos::agent::play_game

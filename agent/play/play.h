#pragma once
// The scenario runner behind `mnemos play`: plays a scenario (agent/scenario.h)
// in process on the runtime (agent/runtime.h). Every model-played cast member
// is a character with its own session whose system text starts with the
// scenario's shared prefix (registered as a shared prefix, so its KV blocks are
// computed once and reused: in memory through the prefix cache, on disk through
// the store). The game is flattened into numbered steps: phase narrations,
// clue releases, scripted lines, interactive (generated) turns, history turns
// and probes. Each completed step is one event in the game log (session
// "<scenario id>.game"), written after the step's messages; the game log is
// the truth. A resumed run reads it, rebuilds any character session that a
// crash left half-written, and continues at the first missing step; with
// greedy decoding (or the same seed) the final logs equal an uninterrupted
// run's.
//
// Probes are asked on a copy of the character's tokens (the question and the
// answer are never appended to its session), so they do not alter the game;
// the answer is scored with score_probe.
//
// Tools: the game master of a scenario with tools is an agent. Its system
// text carries the tool section (Hermes format, tools/prompt.h); each of its
// generations may call the scenario's tools (decoded under their JSON
// grammar); the calls run at once, the call and result messages are appended
// to its session (durable "tool_call" / "tool_result" message events) and it
// plans again, at most 4 generations a turn. The turn's step event records
// every call with its arguments and result, so the packs (add_item,
// remove_item, list_inventory) and notes kept by the runner are rebuilt from
// the game log on resume; recall searches the character's whole durable log
// (not only what its window shows). expect_tools of a turn and
// must_call_tools of a probe are scored from the calls made; a probe's calls
// act on a copy of the packs.
//
// Long histories: when a character's context plus room to answer exceeds the
// window (the scenario's budgets.window_tokens, else the engine's context),
// a generation sees its system message (shared prefix + character) and the
// most recent messages that fit; the results JSON says how many steps were
// windowed ("context").
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/scenario/scenario.h"
#include "engine/attention.h"
#include "engine/model.h"
#include "engine/status.h"

namespace mnemos::agent {

class engine_runner;
class session_manager;

// What an interactive player is asked (play_options::ask_player).
struct player_prompt {
    std::string player;    // the player's name
    std::string to;        // whom the script has them address: a name, or "everyone"
    std::string scripted;  // the scripted line of the turn ("" for an "interactive" turn)
};

// An interactive player's answer.
struct player_line {
    std::string text;  // "" keeps the scripted line (or skips a turn without one)
    std::string to;    // another addressee (id or name); "" keeps the script's
};

// Where the warm-up is (play_options::on_warmup): before the first step, every character's system text is
// prefilled so that its KV is ready.
struct warmup_progress {
    int32_t character_idx = 0;  // 0-based, of n_characters
    int32_t n_characters = 0;
    std::string name;      // the character's display name
    int32_t n_done = 0;    // tokens of its system text prefilled so far
    int32_t n_tokens = 0;  // tokens of its system text
    bool skipped = false;  // longer than the window: not prefilled (a progress line says so and what follows)
};

struct play_options {
    // RocksDB directory: sessions, the game log and KV blocks persist there.
    // Default: "" (in memory; --resume is impossible)
    std::string store_dir;
    // Continue the game found in the store (store_dir required). Without it a
    // store that already holds this game is refused (unsupported).
    // Default: false
    bool resume = false;
    // Sampling temperature of turns and probes; <= 0 is greedy.
    // Default: 0 (greedy)
    float temperature = 0;
    // Sampling seed; step i samples with seed + i, so a resumed run draws the same.
    // Default: 0
    uint64_t seed = 0;
    // Tokens generated per turn and per probe at most; 0 uses the scenario's budgets.
    // Default: 0
    int32_t max_tokens = 0;
    // Engine CPU threads.
    // Default: 0 (all)
    int32_t n_threads = 0;
    // Engine context length.
    // Default: 0 (the model's, at most 32768)
    int32_t n_ctx = 0;
    // Attention beyond n_ctx and the KV pool size (engine/attention.h, engine_options::kv_bytes).
    // Default: auto (64 sinks, 1024-token window, 32 pages), the engine's pool size
    engine::attention_options attention;
    size_t kv_bytes = 0;
    // Files written at the end ("" = none): the transcript as text, the results as JSON.
    // Default: ""
    std::string transcript_path;
    std::string results_path;
    // Streamed output (generated text as it is sampled, lines, clues, probe
    // verdicts). Default: none.
    std::function<void(std::string_view text)> on_output;
    // One progress line per phase (start and end). Default: none.
    std::function<void(std::string_view line)> on_progress;
    // The warm-up's progress, as each character's system text is prefilled (several calls per character,
    // the last with n_done == n_tokens). The game session's spectators get the same as {"kind": "warmup", ...}
    // status (session_manager::notify_status). Default: none.
    std::function<void(const warmup_progress&)> on_warmup;
    // Called after each completed step (its event is durable), with the step
    // index and the number of steps. Default: none.
    std::function<void(int64_t step_idx, int64_t n_steps)> on_step;
    // --resume of a game whose scenario renders a character's system text otherwise than when the game began
    // (a hash per character in the game log's metadata): false refuses with an error naming the characters;
    // true appends the new text to each such session as a new system message and records its hash.
    // Default: false
    bool accept_changes = false;
    // Plays at most this many steps (counting resumed ones), then stops as if
    // interrupted (files are still written); a later resume continues.
    // Default: -1 (to the end)
    int64_t max_steps = -1;
    // Asked before each step: true stops the game there, as max_steps does (the steps done are durable, the
    // files written, the store closed cleanly with its KV flushed); play_report::interrupted is set and a
    // later resume continues. The CLI answers it from Ctrl-C / SIGTERM. Default: none (never stops).
    std::function<bool()> should_stop;
    // Reads the line of an interactive player (a person typing): every turn of
    // a player in "mode": "interactive", and "interactive" turns of others.
    // The prompt names the player, whom the script has them address and the
    // scripted line (empty for an "interactive" turn). The answer's text
    // replaces the scripted line; an empty text keeps it, or skips a turn that
    // has none ("skipped" in its step event). The answer's `to` (a character's
    // or player's id or name; "" keeps the script's) addresses someone else.
    // The CLI reads the terminal, or with --serve waits (--player-timeout) on a
    // player_inbox (agent/player_inbox.h) fed by WebSocket {"type": "player"}
    // frames (server_options::on_player). Default: none (scripted lines are
    // said, interactive player turns are skipped).
    std::function<player_line(const player_prompt& prompt)> ask_player;
    // The game master of a scenario with tools is an agent: each generation may
    // call the scenario's tools (Hermes <tool_call> tags, decoded under the
    // tools' JSON grammar), the calls run, their results are appended and it
    // plans again (at most 4 generations a turn). "auto": the model decides
    // whether to call; "required": the first generation of each of its turns
    // and probes is a call (exercises the tools with models that never write
    // the tag by themselves).
    // Default: "auto"
    std::string tool_choice = "auto";
    // Called once the engine runner and session manager exist (before any
    // step), e.g. to serve them to spectators (agent/server.h). They stay valid
    // until on_teardown is called. The text of each generated turn goes to the
    // manager's token observer (session_manager::notify_token, the character's
    // session id) as it is sampled, before the turn's message event; probes
    // (asked on a copy) do not. Default: none.
    std::function<void(engine_runner& runner, session_manager& sessions)> on_runtime;
    // Called once before the runner and session manager handed to on_runtime
    // are destroyed (at the end of the game or on an error): stop using them.
    // Default: none.
    std::function<void()> on_teardown;
};

struct probe_result {
    std::string id;
    std::string asked_to;
    std::string question;
    std::string answer;
    probe_score score;                      // passed is false when context_full
    bool context_full = false;              // the character's context had no room: not asked, failed
    std::vector<std::string> tools_called;  // by the answer's generations, in order
};

// An interactive turn with expect_tools, scored from the calls it made.
struct tool_turn_result {
    int64_t step_idx = 0;
    std::string speaker;
    std::vector<std::string> expected;
    std::vector<std::string> called;
    std::vector<std::string> missing;  // expected but not called
    bool passed = false;
};

struct turn_timing {
    int64_t step_idx = 0;
    std::string kind;     // "turn" (generated) or "probe"
    std::string speaker;  // character id
    double seconds = 0;
    int32_t n_prompt = 0;
    int32_t n_reused = 0;  // prompt tokens served by the prefix cache
    int32_t n_generated = 0;
};

struct character_report {
    std::string id;
    std::string session_id;
    int64_t n_tokens = 0;         // session tokens at the end
    int64_t n_generated = 0;      // tokens generated for its turns in this process
    int32_t n_turns = 0;          // generated turns (all, resumed ones included)
    int32_t n_system_tokens = 0;  // tokens of its system message
    int32_t n_prefix_reused = 0;  // of those, reused from the cache when first prefilled in this process
};

// Clues to find (by investigation or by a keyword / asked trigger) and who found them.
struct clue_report {
    int32_t n_available = 0;
    int32_t n_found = 0;                                     // by anyone
    std::map<std::string, int32_t> by_finder;                // character or player id -> clues it found
    std::vector<std::pair<std::string, std::string>> found;  // (clue id, finder), in clue order
};

// The accusation scored from the votes cast (agent/play/table.h).
struct accusation_report {
    struct vote {
        std::string voter, suspect;
        bool correct = false;  // the suspect is a culprit
    };
    std::vector<vote> votes;
    std::map<std::string, int32_t> tally;  // suspect -> votes
    std::string verdict;                   // the suspect with the most votes; "" on a tie or without votes
    bool solved = false;                   // the verdict names a culprit
    int32_t n_correct = 0;                 // votes naming a culprit
};

struct play_report {
    std::string scenario_id;
    std::string game_session_id;
    int64_t n_steps = 0;
    int64_t n_steps_resumed = 0;       // completed before this process (read from the game log)
    int64_t n_steps_done = 0;          // in the game log at the end: n_steps unless the game stopped early
    bool interrupted = false;          // stopped by should_stop (max_steps is not an interruption)
    std::vector<probe_result> probes;  // in step order, resumed ones included
    int32_t n_probes_passed = 0;
    std::vector<tool_turn_result> tool_turns;  // turns with expect_tools, in step order
    int32_t n_tool_turns_passed = 0;
    int64_t n_windowed = 0;  // steps whose generations saw only the system text + a recent window
    std::vector<character_report> characters;
    clue_report clues;                 // a mystery's
    accusation_report accusation;      // a mystery's
    std::vector<turn_timing> timings;  // steps run by this process
    int64_t hits_resident = 0;         // prompt tokens reused from resident KV pages
    int64_t hits_store = 0;            // ... from blocks loaded from the store
    int64_t misses = 0;                // prompt tokens computed
    double seconds = 0;                // wall time of play_scenario
    std::string results_json;          // what results_path receives
    std::string transcript;            // what transcript_path receives
};

// Plays sc with model m to the end. On success every step has run and its
// event is in the game log; the files are written. Errors: invalid_argument
// (resume without a store), unsupported (the store holds the game and resume
// is off), io_error (store, files), those of engine_runner::start.
result<play_report> play_scenario(const scenario& sc, std::shared_ptr<const engine::model> m,
                                  const play_options& options);

// A typed player line: "@NAME: text" or "@id text" addresses NAME/id instead of the script's addressee (full-width
// "＠" and "：" and the ideographic space work as well: "＠厨师：你在哪？"); anything else is the text as is
// (surrounding spaces trimmed).
player_line parse_player_line(const std::string& typed);

// The session id of the game log and of a character's session.
std::string play_game_session_id(const scenario& sc);
std::string play_character_session_id(const scenario& sc, std::string_view character_id);

}  // namespace mnemos::agent

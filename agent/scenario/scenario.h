#pragma once
// Scenarios: runnable, scored scripts for mnemos (scenarios/*.json, schema in
// scenarios/scenario.schema.json). A murder-mystery table, a long-lived
// companion and a tool agent are described as data: a shared public script
// and rules, characters with private scripts, clues, phases of scripted or
// interactive turns, probes (questions asked to a character on a fork of its
// session, scored by facts that must / must not appear), tools, and an
// optional seeded generator of a long history.
//
// This header is the data half: loading, validating, rendering the system
// texts, generating the history and scoring an answer. The runner
// (`mnemos play`) drives sessions with it.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/character.h"
#include "engine/status.h"

namespace mnemos::agent {

// ---------------------------------------------------------------------------
// The scenario, mirroring scenarios/scenario.schema.json
// ---------------------------------------------------------------------------

enum class scenario_kind { mystery, companion, tool_agent };
enum class character_role { npc, game_master, companion };
enum class phase_kind { introduction, investigation, accusation, reveal, conversation, task, history };

const char* scenario_kind_name(scenario_kind k);
const char* character_role_name(character_role r);
const char* phase_kind_name(phase_kind k);

// A cast member played by the model (agent::character is the runtime's view
// of the same thing; this one keeps the id and role the script refers to).
struct scenario_character {
    std::string id;    // "gardener"; characters and players share one id namespace
    std::string name;  // "Tobias Reed"
    character_role role = character_role::npc;
    std::string persona;               // who they are, how they speak
    std::string public_knowledge;      // what anyone may know
    std::string private_script;        // what only this character knows (times, places, objects)
    std::vector<std::string> secrets;  // never to be revealed
    std::vector<std::string> goals;
};

// A participant not played by the model: scripted lines or a person typing.
struct scenario_player {
    std::string id;
    std::string name;
    std::string description;
    bool interactive = false;  // "mode": "interactive"
};

// What makes a clue appear other than its phase beginning (agent/scenario/mechanics.h). At most one kind.
struct clue_trigger {
    std::vector<std::string> keywords;  // keyword: any of these said (matched as probes are) in a line ...
    std::string said_by;                // ... by this character or player ("" = anyone)
    std::string asked;                  // asked: a question addressed to this character or suspect ...
    std::vector<std::string> subject;   // ... that mentions any of these
    int32_t act = 0;                    // act: at the start of the first phase of this act (1, 2, ...)
};

// Who receives a clue that is found (investigated or triggered): the finder alone, or everyone.
enum class clue_reveal { finder, all };

struct scenario_clue {
    std::string id;
    std::string title;
    std::string text;
    std::string available_from;                // phase id: released when it begins; found only from then on (targeted)
    std::string found_by;                      // character or player credited with a released clue (it sees it), or ""
    std::vector<std::string> visible_to;       // empty: everyone
    std::string target;                        // location or character where investigate() finds it, or ""
    clue_reveal reveal = clue_reveal::finder;  // of a found clue ("reveal_to")
    std::optional<clue_trigger> trigger;       // keyword / asked / act
    // Released at the start of a phase (no target, no keyword or asked trigger).
    bool pushed() const { return target.empty() && (!trigger || trigger->act > 0); }
};

// A place the cast may investigate ("locations"; characters can be investigated too).
struct scenario_location {
    std::string id;
    std::string name;
    std::string description;
};

// A suspect nobody plays (named in the script, may be a culprit, may be asked about, never speaks).
struct scenario_suspect {
    std::string id;
    std::string name;
    std::string description;
};

enum class culprit_role { killer, accomplice, mastermind };
const char* culprit_role_name(culprit_role r);

struct scenario_culprit {
    std::string id;  // a character, player or suspect
    culprit_role role = culprit_role::killer;
};

// One turn of a phase: a scripted line or an interactive turn. Also the unit
// generate_history() produces.
// What a turn does besides speaking: talk (only speak), investigate a target, ask someone a question (they
// answer in the next step), or vote for a suspect. A character's action is a tool call under the grammar.
enum class turn_action { talk, investigate, ask, vote };
const char* turn_action_name(turn_action a);

// Who speaks in a phase: its scripted turns, each participant in turn for some rounds, or whom the game master
// calls on (it asks a question, the character answers).
enum class turn_policy { scripted, round_robin, directed };
const char* turn_policy_name(turn_policy p);

struct scripted_turn {
    std::string speaker;                    // character or player id
    std::string to = "all";                 // character or player id, or "all"
    std::string line;                       // empty iff interactive
    bool interactive = false;               // a character: the model speaks; a player: a person types
    std::vector<std::string> expect_tools;  // tools an interactive turn should call
    int32_t day = -1;                       // generated turns: 0-based day; -1 otherwise
    std::string fact;                       // generated turns: id of the fact planted in this line, or ""
    turn_action action = turn_action::talk;
    std::string target;  // a scripted player's investigate target or vote; "" for a character (it chooses)
};

struct scenario_phase {
    std::string id;
    phase_kind kind = phase_kind::conversation;
    std::string title;
    int32_t round = 0;      // investigation round (1, 2, ...); 0 otherwise
    std::string narration;  // said when the phase begins: by the game master in its own words, else as written
    std::vector<scripted_turn> turns;
    int32_t act = 0;  // the act it belongs to (1, 2, ...); 0: none
    turn_policy policy = turn_policy::scripted;
    int32_t rounds = 1;                      // round_robin / directed: how many times round the participants
    std::vector<std::string> participants;   // round_robin / directed; default: every npc character
    turn_action action = turn_action::talk;  // round_robin: what each turn does
};

// A fact to look for: any one of the alternatives (matched as score_probe says).
using text_match = std::vector<std::string>;

struct scenario_probe {
    std::string id;
    std::string at_phase;  // asked during this phase ...
    int32_t at_turn = -1;  // ... after this many of its turns; -1: after the last
    std::string asked_to;  // character id
    std::string question;
    std::vector<text_match> must_contain;      // all items must appear
    std::vector<text_match> must_not_reveal;   // no item may appear
    std::vector<std::string> must_call_tools;  // e.g. {"recall"}
    std::vector<std::string> sources;          // who stated the needed facts
    std::string fact;                          // generator fact id, or ""
    std::string note;
};

struct game_tool {
    std::string name;  // "add_item"
    std::string description;
    std::string parameters_json;  // JSON Schema of the arguments (an object schema), compact
};

struct scenario_tools {
    std::vector<std::string> builtin;  // subset of recall, note, roll_dice, clock
    std::vector<game_tool> game;
    // Built-ins every npc character has ("npc"; recall reads its own history, note keeps its own notes).
    // Default: recall and note in a mystery, none otherwise; [] turns them off.
    std::vector<std::string> npc;
    // The game master's tools (builtin and game) include name.
    bool allows(std::string_view name) const;
};

struct generator_fact {
    std::string id;
    int32_t day = 0;   // 0-based
    std::string text;  // planted verbatim
    std::string key;   // distinctive word; absent from all filler
};

// Seeded daily-log generator (see generate_history).
struct history_generator {
    std::string kind = "daily_log";
    uint64_t seed = 0;
    std::string phase;    // the history phase it fills
    std::string speaker;  // writes the entries
    std::string to;       // receives them, speaks the replies
    int32_t days = 0;
    std::string start_date;  // YYYY-MM-DD
    // Default: 2..3 entries a day.
    int32_t entries_min = 2;
    int32_t entries_max = 3;
    // Default: 4..6 sentences an entry.
    int32_t sentences_min = 4;
    int32_t sentences_max = 6;
    std::vector<std::string> sentences;  // templates with {slot} placeholders
    std::vector<std::string> replies;    // Default: none
    std::map<std::string, std::vector<std::string>> slots;
    std::vector<generator_fact> facts;
};

struct scenario_budgets {
    // Most tokens generated in one interactive turn. Default: 256.
    int32_t max_tokens_per_turn = 256;
    // Most tokens in a probe's answer. Default: 160.
    int32_t max_tokens_per_probe = 160;
    // Attention window given to characters; older facts need recall. Default: 0 (the model's own).
    int32_t window_tokens = 0;
};

struct scenario {
    std::string source;  // the path or name it was parsed from
    std::string id;
    std::string title;
    std::string description;
    std::string language;        // "en", "zh"
    std::string translation_of;  // scenario id, or ""
    // "runner_text": the runner's strings this scenario words its own way, by key (agent/scenario/runner_text.h).
    std::map<std::string, std::string> text_overrides;
    scenario_kind kind = scenario_kind::mystery;
    std::string public_script;  // shared.public_script
    std::string rules;          // shared.rules
    std::vector<scenario_character> characters;
    std::vector<scenario_player> players;
    std::string culprit;                       // mystery: a character id (the killer); "culprits" is the general form
    std::vector<scenario_culprit> culprits;    // every culprit with its role ("culprit" read as one killer)
    std::vector<scenario_suspect> suspects;    // not played
    std::vector<scenario_location> locations;  // investigation targets besides characters
    std::string solution;
    std::vector<scenario_clue> clues;
    std::vector<scenario_phase> phases;
    std::vector<scenario_probe> probes;
    scenario_tools tools;
    std::optional<history_generator> generator;
    scenario_budgets budgets;

    // nullptr when absent.
    const scenario_character* find_character(std::string_view id) const;
    const scenario_player* find_player(std::string_view id) const;
    const scenario_phase* find_phase(std::string_view id) const;
    const scenario_clue* find_clue(std::string_view id) const;
    const scenario_suspect* find_suspect(std::string_view id) const;
    const scenario_location* find_location(std::string_view id) const;
    // The game master's id, or "".
    std::string game_master() const;
};

// ---------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------

// Parses and validates a scenario. On success the scenario is complete and
// every cross-reference resolves. On failure: errc::invalid_argument with
// every problem found (not only the first), one per line, each as
// "<source_name>: <json pointer>: <what>", e.g.
// "scenarios/x.json: /characters/2/secrets: expected an array of strings";
// malformed JSON gives "<source_name>:<line>:<column>: malformed JSON: <what>"
// (line and column 1-based, column in UTF-8 code points).
result<scenario> parse_scenario(std::string_view json_text, std::string_view source_name);

// Reads a file and parse_scenario()s it with the path as source name.
// Errors: not_found (no such file), io_error, and those of parse_scenario.
result<scenario> load_scenario(const std::string& path);

// For tests and tooling: for each object of the schema, the property names
// the loader accepts. Keys: "" for the top level, else the schema's $defs
// name ("character", "probe", ...). scenarios/scenario.schema.json must list
// the same properties.
const std::map<std::string, std::vector<std::string>>& scenario_accepted_properties();

// ---------------------------------------------------------------------------
// Rendering (append-only friendly)
// ---------------------------------------------------------------------------

// The text every character's system message starts with: title, public
// script and rules (under the runner text rules_heading). It depends on nothing character-specific, so it is
// byte-identical across the cast and its KV blocks are computed once and
// shared (register it as the runtime's shared prefix).
std::string shared_prefix_text(const scenario& sc);

// A character's full system text: shared_prefix_text(sc) first, then persona,
// public knowledge, private script, secrets and goals, in the same layout as
// agent::character_system_prompt (runtime.h) for the character mapped with
// private_knowledge = private_script. Always starts with shared_prefix_text(sc).
std::string character_system_text(const scenario& sc, const scenario_character& c);
// The runtime character a scenario character plays as (private_knowledge = private_script; no shared prefix),
// with the system text's headings in the scenario's language (the one-argument form: English); a mystery's game
// master also knows the truth: the solution and the culprits with their roles.
character runtime_character(const scenario& sc, const scenario_character& c);
character runtime_character(const scenario_character& c);
// A culprit's role in the scenario's language (runner text killer, accomplice, mastermind).
std::string culprit_role_text(const scenario& sc, culprit_role r);

// ---------------------------------------------------------------------------
// Generated history
// ---------------------------------------------------------------------------

// The generated turns of sc.generator (empty when it has none), in order:
// for each day, entries by generator.speaker to generator.to, each followed
// by a reply from generator.to when replies exist. Deterministic for a given
// (scenario, seed) on every platform (own splitmix64, no std distributions).
// Every fact is planted exactly once, on its day, and its turn carries its id.
std::vector<scripted_turn> generate_history(const scenario& sc, uint64_t seed);

// ---------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------

struct probe_score {
    bool passed = false;
    std::vector<std::string> missing;        // must_contain items not found (alternatives joined by " | ")
    std::vector<std::string> revealed;       // must_not_reveal strings found
    std::vector<std::string> tools_missing;  // must_call_tools not in tools_called
};

// Scores an answer: every must_contain item present (any alternative), no
// must_not_reveal string present, and every must_call_tools name in
// tools_called. "Present": found in the answer after both are normalised for
// width, case, Chinese numerals, times and dates, without cutting a number
// (agent/scenario/text_normalize.h).
probe_score score_probe(const scenario_probe& p, std::string_view answer,
                        const std::vector<std::string>& tools_called = {});

}  // namespace mnemos::agent

#pragma once
// Runner text: every string `mnemos play` puts into a character's context or
// prints for the players (the turn cue, a clue, the narrator's name, the
// interactive prompt, ...) in the scenario's language. One table holds them,
// keyed by language ("en", "zh"; any other language gets English); a scenario
// can override single strings ("runner_text": {"cue": "..."}). A template
// names its values in braces ("{speaker}"); each key has a fixed set of them.
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mnemos::agent {

struct scenario;

enum class runner_text_key {
    cue,              // a model-played character's turn: "(It is your turn, {speaker}. Speak to {to}.)"
    clue,             // a released clue as the game master says it: "Clue: {title}. {text}"
    heard,            // a line as its listeners receive it: "{speaker}: {text}"
    narrator,         // who speaks when no one does: "Narrator"
    everyone,         // the addressee "all": "everyone"
    rules_heading,    // before the rules in every system text: "## Rules"
    you_are,          // a character without persona: "You are {name}."
    secrets_heading,  // system text section headings: "Secrets (never reveal):"
    goals_heading,    //
    public_heading,   //
    private_heading,  //
    line_head,        // printed before a line: "{speaker} -> {to}: "
    narration_tag,    // printed before narration: "[narration] "
    clue_tag,         // printed before a clue: "[clue] "
    context_full,     // after a generation that ran out of context: "(context full)"
    no_input,         // after a player's skipped turn: "(no input)"
    probe_head,       // streamed before a probe's answer: "[probe {probe}] {name}, {question}\n  answer: "
    probe_line,       // the transcript's probe line: "[probe {probe} -> {name}] {question}\n"
    probe_answer,     // the transcript's answer: "  answer: {text}\n"
    pass,             // "PASS"
    fail,             // "FAIL"
    player_script,    // the interactive prompt's hint: "(script: \"{line}\"; Enter says it)\n"
    player_prompt,    // the interactive prompt: "{player} -> {to} (\"@name: ...\" to address someone else)> "
    no_one_called,    // a player addressed no one: "(no one else called '{name}' here: speaking to {to})"
    // The table's mechanics (agent/play/table.h):
    truth,                 // the game master's system text: "The truth, known only to you until the reveal: {solution}"
    culprit_line,          // below it, one per culprit: "Culprit: {name} ({role})"
    killer,                // a culprit's role: "killer"
    accomplice,            //
    mastermind,            //
    cue_investigate,       // an investigation turn's cue: "(It is your turn, {speaker}. Investigate: ...)"
    cue_ask,               // a questioning turn's cue
    cue_vote,              // a voting turn's cue
    asks,                  // a question as everyone hears it: "{speaker} asks {asked}: {text}"
    investigates,          // printed: "{speaker} investigates {target}"
    votes_for,             // printed: "{speaker} votes for {suspect}"
    action_head,           // printed before an action turn's words: "{speaker} ({action}): "
    nothing_more,          // an investigation that finds nothing: "nothing more"
    found_tag,             // printed before a clue a step found: "  [found] "
    found_line,            // the transcript's found clue: "  [found] {title} by {finder} ({shown})"
    shown_to_everyone,     //
    kept_by_finder,        //
    verdict_tag,           // printed before the verdict: "[verdict] "
    verdict_votes,         // the verdict's votes: "The votes: {votes}. "
    vote_entry,            // one of them: "{voter} for {suspect}"
    list_separator,        // between them: ", "
    no_majority,           // "No one has a majority."
    table_accuses,         // "The table accuses {name}."
    verdict_truth,         // "The truth: {solution}"
    verdict_culprit,       // after it, one per culprit: " {name} ({role})."
    investigate_tool,      // the investigate tool's description: "... Targets: {targets}."
    ask_tool,              // the ask tool's description: "... People: {people}."
    vote_tool,             // the vote tool's description: "... Suspects: {suspects}."
    nothing_called,        // a player's command names nothing: "[play] nothing called '{name}' here"
    votes_at_accusation,   // "[play] votes are cast at the accusation"
    investigate_in_phase,  // "[play] one investigates during an investigation"
    narrate,               // the game master's cue to open a phase: "(Open \"{title}\" for the table ...: {text})"
    n_keys
};

// "cue", "clue", ... (the key in a scenario's "runner_text" object).
const char* runner_text_name(runner_text_key k);
// The key named so, or nullopt.
std::optional<runner_text_key> runner_text_key_named(std::string_view name);
// The placeholders a key's template may use ("speaker", "to"), in the table's order.
std::vector<std::string> runner_text_placeholders(runner_text_key k);
// The languages with a table of their own: "en", "zh".
std::vector<std::string> runner_text_languages();

// The built-in template of a key in a language: its primary subtag picks the table ("zh-Hans" -> "zh"); a
// language without a table gets English.
std::string_view builtin_runner_text(std::string_view language, runner_text_key k);

using text_args = std::initializer_list<std::pair<std::string_view, std::string_view>>;
// Replaces each "{name}" of tmpl by its value in args; braces naming nothing in args stay as they are.
std::string fill_text(std::string_view tmpl, text_args args);

// The scenario's text for a key: its override ("runner_text") if it has one, else the built-in one of its
// language, filled with args.
std::string runner_text(const scenario& sc, runner_text_key k, text_args args = {});

}  // namespace mnemos::agent

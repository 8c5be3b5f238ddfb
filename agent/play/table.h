#pragma once
// The table's mechanics (issue: script-killer games as published): clues found by investigation or fired by
// triggers, questions and answers, votes, and their scores. Pure functions of the scenario and the step
// events: what a step found or cast is recorded in its event ("reveals", "vote", "asked" in its extra
// fields), so a resumed game rebuilds the same table by replaying the game log.
// Internals of agent/play (the game drives them), public for its tests.
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/core/event.h"
#include "agent/play/play.h"
#include "agent/scenario/scenario.h"
#include "engine/chat_template.h"

namespace mnemos::agent::play_steps {
struct step;
struct effect;
}  // namespace mnemos::agent::play_steps

namespace mnemos::agent::play_table {

// A clue found during a step: by whom, seen by everyone or by the finder (and its visible_to), and whether the
// finder already read it as the result of its own investigate() call.
struct reveal {
    std::string clue;
    std::string finder;  // character or player id; "" for an act trigger
    bool to_all = false;
    bool by_tool = false;
};

struct vote {
    std::string voter;
    std::string suspect;
};

// What the table has found and cast so far.
struct table_state {
    std::map<std::string, std::string> found;  // clue id -> finder (targeted and triggered clues)
    std::vector<vote> votes;                   // in order; a later vote of the same voter replaces its earlier one
};

// -- the steps of the mechanics (build_steps)

// Whether clue cl is handed out when phase pi begins: a clue without target or keyword/asked trigger, at its
// available_from phase or at the first phase of its trigger's act.
bool released_at(const scenario& sc, const scenario_clue& cl, size_t pi);
// Who sees a released clue: visible_to, and found_by when visible_to leaves it out (empty: everyone).
std::vector<std::string> clue_audience(const scenario_clue& cl);
// The turns of a phase under its policy: scripted (its turns), round_robin (each participant, rounds times, with
// the phase's action), directed (the game master asks each participant in turn, rounds times).
std::vector<scripted_turn> policy_turns(const scenario& sc, const scenario_phase& ph);
// The participants of a round_robin / directed phase: its list, else every npc character.
std::vector<std::string> participants(const scenario& sc, const scenario_phase& ph);
// Fills an action turn's step (kind, target, line, who types it).
void action_step(const scenario& sc, const scripted_turn& tr, play_steps::step& s);

// -- what a step event means

// A person's or place's display name: characters and players (play_steps::display_name), suspects, locations.
std::string name_of(const scenario& sc, const std::string& id);
// investigate, ask, vote and verdict (answer is a turn or a line).
bool is_action_kind(const std::string& kind);
// The clue as the cast reads it: "Clue: <title>. <text>".
std::string clue_text(const scenario& sc, const scenario_clue& cl);
// What a character is told when its action turn begins, by kind.
std::string action_cue(const scenario& sc, const step_event& ev);
// What an action step appends: the speaker's cue, calls and reply; a question to everyone; the verdict to all.
std::vector<play_steps::effect> action_effects(const scenario& sc, const step_event& ev);
// The messages of the step's reveals: the clue to everyone or to its finder (unless it read it as its call's
// result) and the clue's visible_to.
void add_reveal_effects(const scenario& sc, const step_event& ev, std::vector<play_steps::effect>& out);
std::string action_transcript(const scenario& sc, const step_event& ev);
std::string reveal_transcript(const scenario& sc, const step_event& ev);

// -- recording and replaying

std::vector<reveal> reveals_of(const step_event& ev);
void add_reveals(step_event& ev, const std::vector<reveal>& rs);
std::optional<vote> vote_of(const step_event& ev);
void set_vote(step_event& ev, const vote& v);
// The one an ask step addressed ("" when none: no valid call, or a skipped turn).
std::string asked_of(const step_event& ev);
void set_asked(step_event& ev, const std::string& who);
// Records ev's reveals and vote in st.
void apply(table_state& st, const step_event& ev);
table_state replay(const std::vector<step_event>& done);

// -- the mechanics

// The next clue of target that is not yet found and is available in phase pi (clue order), or nullopt.
std::optional<reveal> investigate(const scenario& sc, const table_state& st, const std::string& who,
                                  const std::string& target, size_t pi);
// The clues a step's words fire (each once): a keyword said by its said_by (or anyone), or a question to the
// asked character mentioning the subject. Clues already found never fire again.
std::vector<reveal> triggered(const scenario& sc, const table_state& st, const step_event& ev);
// The verdict read at the reveal: the votes, the accusation, the truth.
std::string verdict_text(const scenario& sc, const table_state& st);

// -- scores

// Clues to find (targeted or keyword/asked triggered) and who found them.
clue_report score_clues(const scenario& sc, const table_state& st);
// The votes cast, the accusation (the suspect most voted for; none on a tie) and whether it names a culprit.
accusation_report score_votes(const scenario& sc, const table_state& st);

}  // namespace mnemos::agent::play_table

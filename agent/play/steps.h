#pragma once
// The game as data: the scenario flattened into numbered steps, and what each
// completed step (its event in the game log) means for the characters: who
// hears it, which messages it appends to whose session, and its transcript
// line. Pure functions of the scenario and the events: no runtime, no I/O.
// Internals of agent/play (the game drives them), public for its tests.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/event.h"
#include "agent/scenario/scenario.h"
#include "engine/chat_template.h"

namespace mnemos::agent::play_steps {

// One unit of the game, in play order. Scripted steps are fully determined by
// the scenario; generated ones (turn, probe, interactive player) by the game log.
// The mechanics (agent/play/table.h): investigate / ask / vote (a character's action is a tool call under the
// grammar; a player's is scripted or typed), answer (whoever the previous ask addressed), verdict (the game
// master reads the votes and the solution at the reveal).
enum class step_kind { narration, clue, line, turn, probe, investigate, ask, vote, answer, verdict };

// "narration", "clue", "line", "turn", "probe", "investigate", "ask", "vote", "answer", "verdict" (the "kind" of a
// step event).
const char* step_kind_name(step_kind k);

struct step {
    step_kind kind = step_kind::line;
    size_t phase_idx = 0;
    std::string speaker;                // character or player id; "" for the narrator
    std::string to = "all";             // character or player id, or "all"
    std::string text;                   // scripted text
    std::vector<std::string> audience;  // clue: characters who see it (empty: everyone)
    const scenario_probe* probe = nullptr;
    bool player_input = false;              // an interactive player's turn
    std::vector<std::string> expect_tools;  // turn: tools it should call
    std::string target;                     // a scripted player's investigate target or vote
};

// Every step of the game, phase by phase: the narration, the clues released, then the turns (generated history
// included) with the probes placed between them.
std::vector<step> build_steps(const scenario& sc);

// A message a completed step appends to a character's session.
struct effect {
    std::string character;  // character id
    engine::chat_message msg;
};

// The narrator's name for "", "everyone" for "all" (runner text, in the scenario's language), a character's or
// player's name, else the id.
std::string display_name(const scenario& sc, const std::string& id);
// The id of a character or player named by id or by name, or "all" for "all", "everyone" or the scenario's word
// for everyone; compared after scenario_text::normalize_for_match (width, case, spacing) and trimming.
std::optional<std::string> find_participant(const scenario& sc, std::string_view id_or_name);
// What a character is told when it is its turn: "(It is your turn, <name>. Speak to <name>.)" (runner text cue).
std::string cue(const scenario& sc, const std::string& speaker, const std::string& to);
// What the game master is told when it opens a phase: the phase's title and its scripted narration (runner text
// narrate).
std::string narrate_cue(const scenario& sc, const std::string& phase_id);
// What a line is printed after: "<name> -> <name>: " (runner text line_head).
std::string line_head(const scenario& sc, const std::string& speaker, const std::string& to);
// Whom a step speaks to: its `to`, "all" when that is empty.
const std::string& addressee(const step_event& ev);
// The characters who hear a step's text (never the speaker): its audience, else the addressee or everyone.
std::vector<std::string> listeners(const scenario& sc, const step_event& ev);
// Every message a completed step appends, derived from its event alone (probes append nothing).
std::vector<effect> effects(const scenario& sc, const step_event& ev);
// The names of the tools a step's generations called (from its event), in call order.
std::vector<std::string> tools_called(const step_event& ev);
// The step's lines in the transcript (its tool calls first, one line each).
std::string transcript_line(const scenario& sc, const step_event& ev);

// A scenario id as part of a session id ([A-Za-z0-9_.-], at most 48 characters, "game" when empty).
std::string sanitize_id(std::string_view s);

}  // namespace mnemos::agent::play_steps

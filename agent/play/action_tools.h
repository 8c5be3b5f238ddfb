#pragma once
// The actions of the table as tools (agent/play/table.h): investigate(target), ask(character, question) and
// vote(suspect) for model-played characters, decoded under their JSON grammar like every game tool, and the
// same actions typed by interactive players ("/investigate kitchen", "/vote maid").
// Internals of agent/play (the game drives them), public for its tests.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/event.h"
#include "agent/play/table.h"
#include "agent/scenario/scenario.h"
#include "tools/tool.h"

namespace mnemos::agent::play_actions {

// When a call may act: the game sets it before each step.
struct action_context {
    size_t phase_idx = 0;
    turn_action turn = turn_action::talk;  // the step's action: ask is possible only in an ask step
    bool asked = false;                    // this step's question is asked (one a step)
};

// "investigate", "ask", "vote" ("" for talk).
const char* tool_name(turn_action a);

// The actions character cid is offered, fixed for the game (its system text lists them): investigate to npcs when a
// clue has a target; ask to npcs when a turn or round asks, and to the game master when a phase is directed;
// vote to npcs when a turn or round votes.
std::vector<turn_action> offered(const scenario& sc, const std::string& cid);

// Adds the offered action tools of cid to reg, acting on table under ctx (both outlive reg). investigate: during an
// investigation phase or turn, the next clue of the target (table_state::found updated at once); ask: in an ask
// step, once; vote: in an accusation phase (a later vote replaces the earlier one).
void add_action_tools(tools::tool_registry& reg, const scenario& sc, const std::string& cid,
                      play_table::table_state& table, action_context& ctx);

// What a step's calls did, written into its event: reveals (the clues its investigate calls found), the vote, and
// whom it asked (ev.to and ev.text become the addressee and the question).
void record_calls(const scenario& sc, step_event& ev);

// The id of a location, character, player or suspect named by id or name, or "": compared after
// scenario_text::normalize_for_match (width, case, spacing; "ＢＯＡＴＨＯＵＳＥ" finds "boathouse") and trimming.
std::string find_target(const scenario& sc, const std::string& id_or_name);

// A typed command of an interactive player: "/investigate TARGET", "/vote SUSPECT" (the action and the text after
// it); nullopt for anything else.
struct player_command {
    turn_action action = turn_action::talk;
    std::string argument;
};
std::optional<player_command> parse_player_command(const std::string& text);

}  // namespace mnemos::agent::play_actions

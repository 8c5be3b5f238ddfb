#pragma once
// The tools of a scenario's game master: the built-ins the scenario names
// (recall over the character's whole durable log and the game's notes, note,
// roll_dice and clock on the game's fixed calendar) and its game tools
// (add_item, remove_item and list_inventory keep packs; any other is
// acknowledged). What they keep (tool_state) is never stored on its own: a
// resumed game rebuilds it by replaying the calls in the game log.
// Internals of agent/play (the game drives them), public for its tests.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/event.h"
#include "agent/core/runtime.h"
#include "agent/scenario/scenario.h"
#include "tools/builtins.h"
#include "tools/tool.h"
#include "tools/tool_call_parser.h"

namespace mnemos::agent::game_tools {

using json = nlohmann::json;

// Free strings in tool arguments are at most this long (the grammar then closes a call within a known number
// of tokens, even for a model that would ramble), and a forced call may use this many tokens whatever the
// turn's budget.
inline constexpr int32_t k_max_argument_chars = 40;
inline constexpr int32_t k_call_tokens = 256;

// What the game's tools keep: the packs (inventory) and pinned notes.
struct tool_state {
    struct item {
        std::string name;  // as first added
        int64_t quantity = 0;
    };
    std::map<std::string, std::vector<item>> packs;             // owner -> items in the order added
    std::vector<std::string> notes;                             // the game master's
    std::map<std::string, std::vector<std::string>> npc_notes;  // each npc's own (scenario tools.npc)
};

// Lower case, surrounding white space trimmed (item names compare so).
std::string lower(std::string_view s);
// The held item an argument names: the same name (case-insensitively), else the only held item whose name
// contains it or is contained in it; nullptr when none or ambiguous.
tool_state::item* find_item(std::vector<tool_state::item>& pack, const std::string& name);

// A game tool's handler over st: add_item, remove_item and list_inventory keep the packs; any other game tool
// of a scenario is acknowledged ({"ok": true, "tool": name}) and recorded only in the game log.
tools::tool_handler game_tool_handler(const std::string& name, tool_state& st);

// Bounds every free string of a schema to max_len characters.
void bound_strings(json& schema, int32_t max_len);

// The game's calendar for the clock tool: the generator's start date, else 2026-01-01 (a replay gets the same).
std::chrono::system_clock::time_point game_clock(const scenario& sc);

// The registry of the game master's tools for step idx: the scenario's built-ins then its game tools, over st.
// sid: the character's session (recall reads its log from store); roll_dice draws from seed and idx.
// A tool the registry refuses is reported through progress and left out.
std::unique_ptr<tools::tool_registry> make_game_tools(const scenario& sc, tool_state& st, const std::string& sid,
                                                      uint64_t seed, int64_t idx, session_store_i& store,
                                                      const std::function<void(const std::string&)>& progress);

// Adds built-in tool b to reg for session sid, keeping notes in `notes` (recall finds them after the log).
void add_builtin(tools::tool_registry& reg, const scenario& sc, const std::string& b, std::vector<std::string>& notes,
                 const std::string& sid, uint64_t seed, int64_t idx, session_store_i& store,
                 const std::function<void(const std::string&)>& progress);

// Runs one call to completion (the game's tools answer at once; a tool that does not within 5 s gets a
// timeout). Returns {"result": ...} or {"error": "..."}; recall's hits lose their times (a replay finds the same).
json run_tool_call(const tools::tool_registry& reg, const tools::tool_call& c);

// Rebuilds the packs and notes from the calls of the completed turns in the game log (probes ran on copies
// and changed nothing). gm: the game master's id; the notes of anyone else are its own (npc_notes); "": all
// notes are the game master's.
void replay_tool_calls(const std::vector<step_event>& done, tool_state& st, const std::string& gm = {});

}  // namespace mnemos::agent::game_tools

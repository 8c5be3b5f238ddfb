#pragma once
// Typed events: the truth of the design (DESIGN.md) is each session's append-only event log. This is the
// only place that spells event fields. An event is stored as one compact JSON object; its fields come out
// in sorted key order, so a typed event writes the same bytes the JSON writers always wrote. Fields this
// version does not know are kept in `extra` and written back unchanged; an event of an unknown "type" is
// an other_event, kept whole.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/status.h"

namespace mnemos::agent {

enum class message_kind { plain, tool_call, tool_result };

// {"type": "message"}: one chat message of a session, rendered into its tokens.
struct message_event {
    std::string role;  // system | user | assistant | tool
    std::string content;
    int64_t ts = 0;                                   // unix seconds
    message_kind kind = message_kind::plain;          // "kind": absent | "tool_call" | "tool_result"
    nlohmann::json tool_calls;                        // OpenAI tool_calls of a tool_call message (null: none)
    std::optional<std::string> name, tool_call_id;    // a tool result's tool and call id
    std::optional<int64_t> step, round;               // the agent loop's step (server) / round (play)
    nlohmann::json context;                           // context_window_json when the window was cut (null: none)
    nlohmann::json extra = nlohmann::json::object();  // fields not named above
};

// {"type": "note"}: a note pinned by the notes tool.
struct note_event {
    int64_t id = 0;
    std::string text;
    int64_t ts = 0;
    nlohmann::json extra = nlohmann::json::object();
};

// {"type": "prefix"}: a version of a shared prefix (the reserved prefix log).
struct prefix_event {
    std::string id;
    std::string text;
    int64_t ts = 0;
    nlohmann::json extra = nlohmann::json::object();
};

// {"type": "step"}: one step of a played game (agent/play), in the game's own session.
struct step_event {
    int64_t idx = 0;
    std::string kind;  // line | turn | clue | narration | probe | ...
    std::string phase, speaker, to;
    std::vector<std::string> audience;  // empty: everyone `to` names
    std::string text;
    std::optional<std::string> probe;  // a probe's id
    std::optional<bool> passed;        // a probe's verdict
    nlohmann::json rounds;             // tool rounds [{"content", "calls": [...]}] (null: none)
    bool context_full = false, windowed = false, skipped = false;
    int64_t ts = 0;
    nlohmann::json extra = nlohmann::json::object();
};

// One tool call of a step's round (step_event::rounds): the tool, its arguments, and its result or error.
struct step_call {
    std::string name;
    nlohmann::json arguments = nlohmann::json::object();
    std::optional<nlohmann::json> result;  // absent: the call failed with `error`
    std::string error;
};

// One round of a step's generations: the text that called tools, and the calls.
struct step_round {
    std::string content;
    std::vector<step_call> calls;
};

// step_event::rounds, typed: [{"content", "calls": [{"name", "arguments", "result" | "error"}]}] (none when it is
// not an array; fields of the wrong type read as empty), and the JSON of typed rounds (null when there are none).
std::vector<step_round> step_rounds(const step_event& e);
nlohmann::json step_rounds_json(const std::vector<step_round>& rounds);

// Any other "type" (or none): kept as it was read.
struct other_event {
    nlohmann::json body;
};

using event = std::variant<message_event, note_event, prefix_event, step_event, other_event>;

// The event as stored (compact JSON, sorted keys).
nlohmann::json event_json(const event& e);
std::string event_json_text(const event& e);
// Errors: corrupt when the text is not a JSON object or a known field has the wrong JSON type.
result<event> parse_event(std::string_view text);
result<event> event_from_json(const nlohmann::json& j);

}  // namespace mnemos::agent

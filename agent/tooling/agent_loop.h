#pragma once
// Tool calling for the HTTP server: OpenAI `tools` / `tool_choice` /
// `response_format` on /v1/chat/completions, and the settings and built-in
// tools of server-side agent sessions (POST /v1/sessions/{id}/messages runs
// plan -> tool call -> tool result -> plan again, up to a step limit).
//
// Prompt format (models whose chat template has no tool section, e.g. ChatML):
// the tools go into the system message as tools::render_tools_prompt renders
// them (Hermes format: a <tools> block of OpenAI function definitions, then
// the instruction to answer with <tool_call>{"name": ..., "arguments": ...}
// </tool_call>). History: an assistant message carrying tool_calls renders as
// its content followed by one "<tool_call>\n{json}\n</tool_call>" per call;
// a role "tool" message renders as "<tool_response>\n{"name": ..., "content":
// ...}\n</tool_response>" in a "tool" turn (ChatML: <|im_start|>tool).
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/core/runtime.h"
#include "engine/grammar.h"
#include "engine/status.h"
#include "tools/builtins.h"
#include "tools/tool.h"
#include "tools/tool_call_parser.h"

namespace mnemos::agent {

// ---------------------------------------------------------------------------
// OpenAI tools on chat completions
// ---------------------------------------------------------------------------

enum class tool_choice { none, automatic, required, named };

struct chat_tools {
    tools::tool_registry registry;  // the request's function definitions (handlers unused)
    tool_choice choice = tool_choice::none;
    std::string named;  // the function of tool_choice named
    // Decoding: constraint (null: free text) and trigger ("" with a constraint: from the first token).
    std::shared_ptr<const engine::grammar> constraint;
    std::string trigger;
    // The output is a bare {"name", "arguments"} document to return as a tool call (named, required).
    bool forced_call = false;
    // response_format json_object / json_schema: the content is constrained JSON.
    bool json_output = false;
    std::string system_text;  // the tool section for the system prompt ("" when no tools are offered)
};

// Request limits on tools (README "Limits"): each bounds the work one request can cause (prompt rendering,
// grammar compilation) before any of it is done.
inline constexpr size_t k_max_tools = 128;               // entries of `tools`
inline constexpr size_t k_max_schema_bytes = 64 * 1024;  // a tool's `parameters`, or json_schema.schema, as JSON
inline constexpr size_t k_max_tool_description_bytes = 16 * 1024;  // a tool's `description`

// Parses `tools`, `tool_choice` and `response_format` of a chat completion body. A body without them gives
// choice none. Errors: invalid_argument naming the field (malformed definitions, unknown named function,
// tool_choice other than none without tools, a schema the grammar cannot compile) or the limit it breaks
// (k_max_tools, k_max_schema_bytes, k_max_tool_description_bytes).
result<chat_tools> parse_chat_tools(const nlohmann::json& body);

// Adds the tool section to the messages: appended to the first system message, or a new system message first.
void add_tools_prompt(std::vector<engine::chat_message>& msgs, const std::string& system_text);

// "<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>"
std::string hermes_tool_call(const std::string& name, const nlohmann::json& arguments);

// Tool calls in a model's output: a forced call is the bare JSON document; otherwise Hermes tags. Returns the
// calls (empty when none or malformed) and the content outside them.
tools::parsed_output extract_tool_calls(const std::string& text, bool forced_call);

// OpenAI message.tool_calls: [{"id": "call_...", "type": "function", "function": {"name", "arguments": string}}].
nlohmann::json openai_tool_calls(const std::vector<tools::tool_call>& calls);

// ---------------------------------------------------------------------------
// Agent sessions
// ---------------------------------------------------------------------------

struct agent_settings {
    // Built-in tools by name: roll_dice, clock, note, recall.
    std::vector<std::string> tools;
    // Generations per user message (the last one may not call a tool).
    // Default: 4
    int32_t max_steps = 4;
    // A tool that has not answered by then gets {"error": "timeout"} as its result.
    // Default: 5000
    int32_t tool_timeout_ms = 5000;
    // roll_dice seed.
    // Default: 0
    uint64_t seed = 0;
};

// From the "agent" object of POST /v1/sessions ({"tools": [...] | true, "max_steps", "tool_timeout_ms", "seed"}).
// Errors: invalid_argument naming the field.
result<agent_settings> parse_agent_settings(const nlohmann::json& j);
nlohmann::json agent_settings_to_json(const agent_settings& a);

// recall's source: the session's durable event log (message events; seq = position in the log).
std::shared_ptr<tools::history_source_i> make_event_history(session_store_i& store);
// note's store: each note is an event {"type": "note", "id", "text", "ts"} in the session's log.
std::shared_ptr<tools::notes_store_i> make_event_notes(session_manager& sessions);

// The registry of a session's built-ins. Errors: invalid_argument for an unknown tool name.
result<std::shared_ptr<tools::tool_registry>> make_agent_tools(const agent_settings& a, const std::string& session,
                                                               session_manager& sessions);

}  // namespace mnemos::agent

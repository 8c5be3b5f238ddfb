#pragma once
// OpenAI `tools` / `tool_choice` / `response_format` on /v1/chat/completions:
// the request's shapes parsed and bounded, and the response's tool_calls.
//
// Prompt format (models whose chat template has no tool section, e.g. ChatML):
// the tools go into the system message as tools::render_tools_prompt renders
// them (Hermes format: a <tools> block of OpenAI function definitions, then
// the instruction to answer with <tool_call>{"name": ..., "arguments": ...}
// </tool_call>). History: an assistant message carrying tool_calls renders as
// its content followed by one "<tool_call>\n{json}\n</tool_call>" per call;
// a role "tool" message renders as "<tool_response>\n{"name": ..., "content":
// ...}\n</tool_response>" in a "tool" turn (ChatML: <|im_start|>tool).
#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/chat_template.h"
#include "engine/grammar.h"
#include "engine/status.h"
#include "tools/tool.h"
#include "tools/tool_call_parser.h"

namespace mnemos::agent {

// none: plain text; automatic: the model may call (after the "<tool_call>" trigger); required: a call from the
// first token, any tool; named: a call of one function from the first token.
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

// A tool choice over a registry's tools: the choice and, for named, the function.
struct tool_choice_spec {
    tool_choice choice = tool_choice::none;
    std::string named;
};

// A `tool_choice` value over the tools of reg: null (the default: automatic, none without tools), "none",
// "auto" (none without tools), "required", or {"type": "function", "function": {"name": ...}}. Errors:
// invalid_argument naming 'tool_choice' (malformed, an unknown function, required / named without tools).
result<tool_choice_spec> parse_tool_choice_value(const nlohmann::json& v, const tools::tool_registry& reg);

// The grammar of a call under a choice over reg: required: a call of any of its tools, from the first token;
// named: a call of spec.named, from the first token; automatic: a call of any tool after the "<tool_call>"
// trigger (one leading whitespace allowed); none: null. Errors: invalid_argument when the schema does not
// compile ("'tools': ..." or "tool 'name': ...").
result<std::shared_ptr<const engine::grammar>> tool_call_grammar(const tools::tool_registry& reg,
                                                                 const tool_choice_spec& spec);

// OpenAI message.tool_calls: [{"id": "call_...", "type": "function", "function": {"name", "arguments": string}}].
nlohmann::json openai_tool_calls(const std::vector<tools::tool_call>& calls);

// The steps of parse_chat_tools, for tests.
namespace openai_tools_detail {

// `tools` into ct.registry; returns whether any tool was defined.
result<bool> parse_tool_definitions(const nlohmann::json& body, chat_tools& ct);
// `tool_choice` over ct.registry into ct.choice / ct.named.
status parse_tool_choice(const nlohmann::json& body, chat_tools& ct);
// ct.system_text, ct.constraint, ct.trigger and ct.forced_call from ct.choice.
status compile_choice(chat_tools& ct);
// `response_format` over the above (json_object / json_schema replace the tools' decoding).
status parse_response_format(const nlohmann::json& body, chat_tools& ct);

}  // namespace openai_tools_detail

}  // namespace mnemos::agent

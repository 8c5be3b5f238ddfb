#pragma once
// The tool section of a system prompt for models without a native one, in the Hermes format (the format
// Qwen 2.5's chat template also renders):
//
//   <preamble>
//   <tools>
//   {"type": "function", "function": {"name": "...", "description": "...", "parameters": {...}}}
//   ... one line per tool ...
//   </tools>
//
//   For each function call, return a json object with function name and arguments within
//   <tool_call></tool_call> XML tags:
//   <tool_call>
//   {"name": <function-name>, "arguments": <args-json-object>}
//   </tool_call>
//
// Replies parse with parse_tool_calls() (tools/tool_call_parser.h). To constrain the calls, set the engine
// request's constraint to tool_registry::call_grammar(o) (with o.max_leading_whitespace = 1 for the newline
// after the tag) and constraint_trigger to "<tool_call>"; the text around the calls stays free.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "tools/tool.h"

namespace mnemos::tools {

// The default first paragraph.
extern const char* const k_tools_preamble;

// The whole tool section (above); empty when the registry is empty.
std::string render_tools_prompt(const tool_registry& registry, std::string_view preamble = k_tools_preamble);

// A tool's result as the next user/tool message in the Hermes format:
// <tool_response>\n{"name": "...", "content": <result>}\n</tool_response>
std::string render_tool_response(std::string_view name, const nlohmann::json& content);

}  // namespace mnemos::tools

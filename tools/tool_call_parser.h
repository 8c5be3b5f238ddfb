#pragma once
// Tool calls from model text, in the native formats of common chat models:
//   hermes  (Hermes, Qwen 2/2.5):  <tool_call>{"name": "f", "arguments": {...}}</tool_call>, one or several,
//           with text around them; the closing tag may be missing after a complete JSON object (the engine's
//           grammar ends the call and the model may stop there).
//   llama3  (Llama 3.1/3.2 JSON):  [<|python_tag|>]{"name": "f", "parameters": {...}}, or several separated
//           by ';' or new lines, or a JSON array of such objects.
//   plain   a bare JSON object {"name": ..., "arguments"|"parameters": {...}} (or an array of them).
// "arguments" given as a string holding JSON (OpenAI style) is decoded. Model JSON is parsed without
// exceptions.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace mnemos::tools {

enum class tool_call_format { none, hermes, llama3, plain };
const char* tool_call_format_name(tool_call_format f);

struct tool_call {
    std::string name;
    nlohmann::json arguments = nlohmann::json::object();  // always an object
};

struct parsed_output {
    tool_call_format format = tool_call_format::none;  // none: no tool call, only text
    std::vector<tool_call> calls;
    std::string content;  // the text outside the calls, trimmed
};

// Parses a model's reply. Text without a call is not an error (format none, content = the text).
// Errors: invalid_argument when a call is malformed or truncated — unterminated or invalid JSON, a missing or
// non-string "name", arguments that are not an object; the message says which call (1-based) and why, e.g.
// "tool call 2: truncated JSON (no closing '}')". Never throws.
result<parsed_output> parse_tool_calls(std::string_view text);

}  // namespace mnemos::tools

#pragma once
// Tool calls in model text: how a call is written into a prompt (Hermes
// tags) and found in a model's output (Hermes tags, the bare JSON document of
// a forced call, or any format tools/tool_call_parser.h reads, e.g. Llama 3 JSON).
//
// Hermes: "<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>", one per call.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "tools/tool_call_parser.h"

namespace mnemos::agent {

// The tags around a Hermes call; the opening one triggers constrained decoding of an automatic call.
inline constexpr std::string_view k_call_open = "<tool_call>";
inline constexpr std::string_view k_call_close = "</tool_call>";
// What a forced call's prompt ends with (the model writes the JSON after it).
inline constexpr std::string_view k_call_prefix = "<tool_call>\n";

// "<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>"
std::string hermes_tool_call(const std::string& name, const nlohmann::json& arguments);

// Tool calls in a model's output: a forced call is the bare JSON document; otherwise Hermes tags (a call cut
// short at the end is dropped, the complete ones before it kept). Returns the calls (empty when none or
// malformed) and the content outside them.
tools::parsed_output extract_tool_calls(const std::string& text, bool forced_call);

}  // namespace mnemos::agent

#pragma once
// The request of POST /v1/responses (OpenAI Responses API): its fields checked (an unknown or unsupported
// one is a 400 naming it), its generation parameters, its tools / tool_choice / text.format as the chat
// completions' chat_tools, and its input (a string or items) as chat messages. Nothing here throws on client
// data; nothing here touches a session (responses.cpp joins this to the stored chain).
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/server/src/request_parse.h"
#include "agent/tooling/openai_tools.h"

namespace mnemos::agent::server_detail {

struct response_request {
    json body;       // the request as sent
    gen_params gen;  // max_output_tokens, temperature, top_p, seed, stream
    std::string instructions;
    std::shared_ptr<const chat_tools> tools;  // tools / tool_choice / text.format; null: plain text
    std::string previous_id;                  // previous_response_id ("" none)
    bool store = true;
};

// The fields of a Responses body, the generation parameters and the tools (everything but `input`, which
// needs the previous response: parse_response_input). Errors: invalid_argument naming the field.
result<response_request> parse_response_request(const json& b);

// What the items of `input` may refer to beyond themselves.
struct input_context {
    std::map<std::string, std::string> call_names;  // call_id -> function name (calls of the previous response)
    // An item_reference's stored item ({"type": "message" | "function_call", ...}); not_found when unknown.
    std::function<result<json>(const std::string& id)> resolve;
};

// Bounds on `input` (README "Limits").
inline constexpr size_t k_max_input_items = 4096;

// b["input"]: a string (one user message) or an array of items: messages ({"role", "content"}, content a
// string or input_text / output_text parts; developer = system), function_call (an assistant call, rendered
// as the model's call tag; consecutive calls join the assistant message before them), function_call_output
// (a tool message, named by its call_id) and item_reference (a stored item). Errors: invalid_argument naming
// the item and field (unknown item or part types, a function_call_output of an unknown call, ...).
status parse_response_input(const json& b, input_context& cx, std::vector<engine::chat_message>& out);

// The system text a request puts in front of its input: instructions, then the tool section.
std::string response_system_text(const response_request& r);

}  // namespace mnemos::agent::server_detail

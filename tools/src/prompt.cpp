// Hermes-style tool section of a system prompt. See tools/prompt.h.
#include "tools/prompt.h"

namespace mnemos::tools {

using nlohmann::json;

const char* const k_tools_preamble =
    "You are a function calling AI model. You are provided with function signatures within <tools></tools> XML "
    "tags. You may call one or more functions to assist with the user query. Don't make assumptions about what "
    "values to plug into functions. Here are the available tools:";

namespace {
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
}  // namespace

std::string render_tools_prompt(const tool_registry& registry, std::string_view preamble) {
    if (registry.size() == 0) return {};
    std::string out(preamble);
    out += "\n<tools>\n";
    for (const auto& t : registry.list()) {
        json fn = {{"type", "function"},
                   {"function", {{"name", t.name}, {"description", t.description}, {"parameters", t.parameters}}}};
        out += dump(fn) + "\n";
    }
    out +=
        "</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n"
        "<tool_call>\n"
        "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
        "</tool_call>";
    return out;
}

std::string render_tool_response(std::string_view name, const json& content) {
    return "<tool_response>\n" + dump(json{{"name", std::string(name)}, {"content", content}}) + "\n</tool_response>";
}

}  // namespace mnemos::tools

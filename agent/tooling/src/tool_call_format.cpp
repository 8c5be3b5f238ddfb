// Tool calls in model text (agent/tooling/tool_call_format.h).
#include "agent/tooling/tool_call_format.h"

namespace mnemos::agent {

using json = nlohmann::json;

std::string hermes_tool_call(const std::string& name, const json& arguments) {
    const json call{{"name", name}, {"arguments", arguments}};
    return std::string(k_call_prefix) + call.dump(-1, ' ', false, json::error_handler_t::replace) + "\n" +
           std::string(k_call_close);
}

tools::parsed_output extract_tool_calls(const std::string& text, bool forced_call) {
    tools::parsed_output out;
    out.content = text;
    if (forced_call) {
        json j = json::parse(text, nullptr, false);
        if (!j.is_discarded() && j.is_object() && j.contains("name") && j["name"].is_string()) {
            tools::tool_call c;
            c.name = j["name"].get<std::string>();
            if (j.contains("arguments") && j["arguments"].is_object()) c.arguments = j["arguments"];
            out.calls.push_back(std::move(c));
            out.content.clear();
            out.format = tools::tool_call_format::plain;
        }
        return out;
    }
    if (text.find(k_call_open) == std::string::npos) return out;
    auto p = tools::parse_tool_calls(text);
    if (!p || p->format != tools::tool_call_format::hermes) {
        // A call cut short (e.g. max_tokens): keep the complete calls before it.
        const size_t cut = text.rfind(k_call_open);
        if (cut == 0 || cut == std::string::npos) return out;
        auto q = tools::parse_tool_calls(text.substr(0, cut));
        if (!q || q->format != tools::tool_call_format::hermes) return out;
        return std::move(q.value());
    }
    return std::move(p.value());
}

}  // namespace mnemos::agent

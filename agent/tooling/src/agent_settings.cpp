// Agent session settings and their tools (agent/tooling/agent_settings.h).
#include "agent/tooling/agent_settings.h"

#include "agent/tooling/builtin_tools.h"
#include "agent/tooling/event_backed_tools.h"
#include "tools/builtins.h"

namespace mnemos::agent {

using json = nlohmann::json;

namespace {

std::vector<std::string> all_builtins() { return {builtin_tools::all.begin(), builtin_tools::all.end()}; }

// "tools": an array of built-in names or a boolean (true: all of them); absent: all of them.
status parse_tool_names(const json& j, agent_settings& a) {
    auto it = j.find("tools");
    if (it == j.end() || it->is_null()) {
        a.tools = all_builtins();
        return {};
    }
    if (it->is_boolean()) {
        if (it->get<bool>()) a.tools = all_builtins();
        return {};
    }
    if (!it->is_array()) return invalid_argument("'agent.tools' must be an array of names or a boolean");
    for (const auto& t : *it) {
        if (!t.is_string()) return invalid_argument("'agent.tools' must hold tool names");
        const std::string n = t.get<std::string>();
        if (!builtin_tools::is_builtin(n))
            return invalid_argument("'agent.tools': unknown built-in '" + n + "' (" + builtin_tools::names() + ")");
        a.tools.push_back(n);
    }
    return {};
}

}  // namespace

result<agent_settings> parse_agent_settings(const json& j) {
    agent_settings a;
    if (j.is_boolean()) {
        if (j.get<bool>()) a.tools = all_builtins();
        return a;
    }
    if (!j.is_object()) return invalid_argument("'agent' must be an object or a boolean");
    if (auto st = parse_tool_names(j, a); !st.ok()) return st;
    auto integer = [&](const char* key, int64_t lo, int64_t hi, auto& out) -> status {
        auto it = j.find(key);
        if (it == j.end() || it->is_null()) return {};
        if (!it->is_number_integer() || it->get<int64_t>() < lo || it->get<int64_t>() > hi)
            return invalid_argument(std::string("'agent.") + key + "' must be an integer in [" + std::to_string(lo) +
                                    ", " + std::to_string(hi) + "]");
        out = static_cast<std::remove_reference_t<decltype(out)>>(it->get<int64_t>());
        return {};
    };
    for (auto st : {integer("max_steps", 1, 16, a.max_steps), integer("tool_timeout_ms", 1, 600000, a.tool_timeout_ms),
                    integer("seed", 0, INT64_MAX, a.seed)})
        if (!st.ok()) return st;
    return a;
}

json agent_settings_to_json(const agent_settings& a) {
    return {{"tools", a.tools}, {"max_steps", a.max_steps}, {"tool_timeout_ms", a.tool_timeout_ms}, {"seed", a.seed}};
}

result<std::shared_ptr<tools::tool_registry>> make_agent_tools(const agent_settings& a, const std::string& session,
                                                               session_manager& sessions) {
    auto reg = std::make_shared<tools::tool_registry>();
    for (const auto& n : a.tools) {
        status st;
        if (n == builtin_tools::roll_dice)
            st = reg->add(tools::make_roll_dice_tool(a.seed));
        else if (n == builtin_tools::clock)
            st = reg->add(tools::make_clock_tool());
        else if (n == builtin_tools::note)
            st = reg->add(tools::make_note_tool(make_event_notes(sessions), session));
        else if (n == builtin_tools::recall)
            st = reg->add(tools::make_recall_tool(make_event_history(sessions.store()), session));
        else
            st = invalid_argument("unknown built-in tool '" + n + "'");
        if (!st.ok()) return st;
    }
    return reg;
}

}  // namespace mnemos::agent

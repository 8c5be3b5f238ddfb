#pragma once
// The settings of a server-side agent session (POST /v1/sessions "agent"):
// which built-in tools it offers, how many generations a user message may
// take, and the tools' timeout and seed; and the registry of those tools.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/core/runtime.h"
#include "engine/status.h"
#include "tools/tool.h"

namespace mnemos::agent {

struct agent_settings {
    // Built-in tools by name (agent/tooling/builtin_tools.h).
    // Default: none (parse_agent_settings: all of them)
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

// The registry of a session's built-ins (note and recall backed by the session's event log,
// agent/tooling/event_backed_tools.h). Errors: invalid_argument for an unknown tool name.
result<std::shared_ptr<tools::tool_registry>> make_agent_tools(const agent_settings& a, const std::string& session,
                                                               session_manager& sessions);

}  // namespace mnemos::agent

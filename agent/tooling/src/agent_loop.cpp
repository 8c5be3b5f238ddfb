// The tool-agent loop as a step machine (agent/tooling/agent_loop.h).
#include "agent/tooling/agent_loop.h"

#include "tools/prompt.h"

namespace mnemos::agent::loop {

using json = nlohmann::json;

agent_loop::agent_loop(loop_options o) : opt_(std::move(o)) {
    if (opt_.max_steps < 1) opt_.max_steps = 1;
}

tool_choice agent_loop::choice_at(const loop_options& o, int32_t step) {
    if (!o.g_auto || step >= o.max_steps - 1) return tool_choice::none;
    if (step > 0) return tool_choice::automatic;
    switch (o.first_choice) {
        case tool_choice::none:
            return tool_choice::none;
        case tool_choice::required:
        case tool_choice::named:
            return o.g_forced ? tool_choice::required : tool_choice::automatic;
        case tool_choice::automatic:
            break;
    }
    return tool_choice::automatic;
}

generate agent_loop::make_generate() const {
    generate g;
    g.step = step_;
    g.choice = choice_at(opt_, step_);
    if (g.choice == tool_choice::required) {
        g.prompt_suffix = opt_.call_tag;
        g.constraint = opt_.g_forced;
    } else if (g.choice == tool_choice::automatic) {
        g.constraint = opt_.g_auto;
        g.trigger = std::string(k_call_open);
        g.stop.emplace_back(k_call_close);
    }
    return g;
}

action agent_loop::next() const {
    switch (phase_) {
        case phase::generating:
            return make_generate();
        case phase::running_tools: {
            const round& r = rounds_.back();
            return run_tools{r.step, r.calls, r.content};
        }
        case phase::finished:
            break;
    }
    return done{final_text_, step_ + 1};
}

status agent_loop::on_generated(std::string text) {
    if (phase_ != phase::generating) return make_error(errc::internal, "agent loop: no generation was asked for");
    const tool_choice choice = choice_at(opt_, step_);
    tools::parsed_output calls;
    if (choice != tool_choice::none) calls = extract_tool_calls(text, choice == tool_choice::required);
    if (calls.calls.empty()) {
        final_text_ = std::move(text);
        phase_ = phase::finished;
        return {};
    }
    round r;
    r.step = step_;
    r.content = choice == tool_choice::required ? std::string() : calls.content;
    for (const auto& c : calls.calls)
        r.content += (r.content.empty() ? "" : "\n") + hermes_tool_call(c.name, c.arguments);
    r.calls = std::move(calls.calls);
    rounds_.push_back(std::move(r));
    phase_ = phase::running_tools;
    return {};
}

status agent_loop::on_tool_results(std::vector<json> results) {
    if (phase_ != phase::running_tools) return make_error(errc::internal, "agent loop: no tool calls were asked for");
    round& r = rounds_.back();
    if (results.size() != r.calls.size())
        return make_error(errc::internal, "agent loop: " + std::to_string(results.size()) + " results for " +
                                              std::to_string(r.calls.size()) + " calls");
    r.results = std::move(results);
    ++step_;
    phase_ = phase::generating;
    return {};
}

std::vector<std::string> agent_loop::called() const {
    std::vector<std::string> v;
    for (const auto& r : rounds_)
        for (const auto& c : r.calls) v.push_back(c.name);
    return v;
}

void apply(const generate& g, engine::request& r) {
    r.prompt.insert(r.prompt.end(), g.prompt_suffix.begin(), g.prompt_suffix.end());
    r.constraint = g.constraint;
    r.constraint_trigger = g.trigger;
    r.stop.insert(r.stop.end(), g.stop.begin(), g.stop.end());
}

json shown_result(const json& result) {
    return result.contains("result") ? result["result"] : json{{"error", result.value("error", json())}};
}

std::vector<engine::chat_message> tool_messages(const run_tools& t, const std::vector<json>& results) {
    std::vector<engine::chat_message> msgs;
    for (size_t i = 0; i < t.calls.size() && i < results.size(); ++i)
        msgs.push_back({"tool", tools::render_tool_response(t.calls[i].name, shown_result(results[i]))});
    return msgs;
}

}  // namespace mnemos::agent::loop

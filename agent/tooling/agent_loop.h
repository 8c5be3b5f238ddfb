#pragma once
// THE tool-agent loop: plan -> tool call -> tool result -> plan again, up to a
// number of generations, written once as a step machine and driven by the
// scenario runner (synchronously, agent/play) and by the server's agent
// sessions (from a coroutine, co_await at each generate / run_tools).
//
// The machine owns the decisions, not the I/O: which tool choice each
// generation has (the first one's choice, automatic after it, none on the last
// or when no tools are offered), the decoding settings that choice implies,
// the calls found in a generation's text, the assistant message that carries
// them, and when the turn is done. The driver owns the prompt, the engine, the
// tools and the session:
//
//     loop::agent_loop lp(options);
//     for (auto a = lp.next(); !std::holds_alternative<loop::done>(a); a = lp.next()) {
//         if (auto* g = std::get_if<loop::generate>(&a)) {
//             engine::request r = ...;            // the driver's prompt and budget
//             loop::apply(*g, r);                 // the choice's decoding settings
//             lp.on_generated(run(r).text);       // co_await in the server
//         } else if (auto* t = std::get_if<loop::run_tools>(&a)) {
//             append t->content, run t->calls     // co_await each call in the server
//             lp.on_tool_results(results);        // {"result": ...} | {"error": "..."} per call
//             append loop::tool_messages(*t, results)
//         }
//     }
//
// A driver may stop at any point (no room left for a prompt, an engine error):
// the machine holds no resources; rounds() says what ran.
//
// This header also includes the rest of agent/tooling for the callers that
// include only it.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "agent/tooling/agent_settings.h"
#include "agent/tooling/builtin_tools.h"
#include "agent/tooling/event_backed_tools.h"
#include "agent/tooling/openai_tools.h"
#include "agent/tooling/tool_call_format.h"
#include "engine/chat_template.h"
#include "engine/engine.h"
#include "engine/grammar.h"
#include "engine/status.h"
#include "tools/tool.h"

namespace mnemos::agent::loop {

struct loop_options {
    // Generations at most; the last one may not call a tool.
    // Default: 4
    int32_t max_steps = 4;
    // The first generation's choice: none (plain text, the turn ends there), automatic, or required / named (a
    // call from the first token under g_forced). Later generations are automatic.
    // Default: automatic
    tool_choice first_choice = tool_choice::automatic;
    // A call after the "<tool_call>" trigger (automatic generations). Null: no tools are offered and every
    // generation is plain text.
    // Default: null
    std::shared_ptr<const engine::grammar> g_auto;
    // A call from the first token (required / named). Null: a required first generation is automatic instead.
    // Default: null
    std::shared_ptr<const engine::grammar> g_forced;
    // The tokens of k_call_prefix ("<tool_call>\n") a forced generation's prompt ends with.
    // Default: none
    std::vector<engine::token_id> call_tag;
};

// Run one generation: the driver's prompt and stop strings with these on top (apply()).
struct generate {
    int32_t step = 0;                                   // 0-based generation index
    tool_choice choice = tool_choice::none;             // none, automatic or required (named is required here)
    std::vector<engine::token_id> prompt_suffix;        // required: the call tag
    std::shared_ptr<const engine::grammar> constraint;  // null: free text
    std::string trigger;                                // automatic: "<tool_call>"; "": from the first token
    std::vector<std::string> stop;                      // after the template's stop strings (automatic: the close tag)
};

// Run these calls (in order) and report each one's result with on_tool_results.
struct run_tools {
    int32_t step = 0;
    std::vector<tools::tool_call> calls;
    // The assistant message that carries the calls: the text around them (automatic; "" for a forced call),
    // then one hermes_tool_call per call, joined by "\n".
    std::string content;
};

// The turn is over: text is the final reply (the last generation's whole text).
struct done {
    std::string text;
    int32_t n_steps = 0;  // generations run
};

using action = std::variant<generate, run_tools, done>;

// One generation that called tools, with what the calls returned.
struct round {
    int32_t step = 0;
    std::string content;                  // as run_tools::content
    std::vector<tools::tool_call> calls;  // in order
    std::vector<nlohmann::json> results;  // per call: {"result": ...} or {"error": "..."}
};

class agent_loop {
  public:
    explicit agent_loop(loop_options o);

    // What to do now: generate first; after on_generated, run_tools (the text called tools) or done; after
    // on_tool_results, generate. Calling it again without feeding returns the same action.
    action next() const;

    // The text of the generation next() asked for. Errors: internal when next() is not a generate.
    status on_generated(std::string text);
    // One result per call of the run_tools next() asked for, in order. Errors: internal when next() is not a
    // run_tools, or the count differs.
    status on_tool_results(std::vector<nlohmann::json> results);

    // The generations that called tools so far, in order.
    const std::vector<round>& rounds() const { return rounds_; }
    // The names of every tool called so far, in call order.
    std::vector<std::string> called() const;

    // The choice generation `step` has under these options (none past the last step).
    static tool_choice choice_at(const loop_options& o, int32_t step);

  private:
    enum class phase { generating, running_tools, finished };
    generate make_generate() const;

    loop_options opt_;
    phase phase_ = phase::generating;
    int32_t step_ = 0;           // the generation asked for, or the last one run
    std::vector<round> rounds_;  // the last one is pending while running_tools
    std::string final_text_;
};

// Puts a generate's settings on a request: the prompt suffix after the prompt, the constraint and its trigger,
// the extra stop strings after the request's own.
void apply(const generate& g, engine::request& r);

// What the driver shows the model of a call's result: the result, or {"error": "..."}.
nlohmann::json shown_result(const nlohmann::json& result);
// The "tool" messages of a round's results (tools::render_tool_response of each shown result), in call order.
std::vector<engine::chat_message> tool_messages(const run_tools& t, const std::vector<nlohmann::json>& results);

}  // namespace mnemos::agent::loop

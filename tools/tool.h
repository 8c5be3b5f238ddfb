#pragma once
// Tool registry: named tools with a description, a JSON Schema for their
// arguments, and an asynchronous handler. Arguments are validated against the
// schema before the handler runs. The registry never runs tools on a thread of
// its own and has no timeouts: the agent calls call() from its event loop and
// adds the timeout.
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/grammar.h"
#include "engine/status.h"

namespace mnemos::tools {

// Completion of a tool: the result JSON or an error. Called exactly once.
using tool_done = std::function<void(result<nlohmann::json>)>;
// A tool's body. Receives validated arguments; may call `done` before returning or later (from any thread the
// tool chooses; the agent posts it back to its own loop).
using tool_handler = std::function<void(const nlohmann::json& args, tool_done done)>;

struct tool {
    std::string name;           // [A-Za-z0-9_-], 1..64 characters
    std::string description;    // one or two sentences for the model
    nlohmann::json parameters;  // JSON Schema of the arguments: {"type":"object","properties":{...},...}
    tool_handler handler;
};

// Checks `value` against a JSON Schema in the subset engine/grammar.h compiles: type and type lists;
// properties/required (no keys beyond the declared ones, as the grammar writes them), additionalProperties
// (a map without properties), min/maxProperties; items, prefixItems, min/maxItems; min/maxLength, pattern
// (ECMAScript, unanchored), format (date, time, date-time, uuid, email, ipv4, uri); minimum, maximum,
// exclusiveMinimum, exclusiveMaximum, multipleOf; enum/const; anyOf, oneOf (exactly one), allOf; local $ref
// (recursion bounded); {} and booleans. Returns ok, or invalid_argument whose message names the path of the
// first offending value ("$.arguments.tags[1]: expected a string").
status validate_json(const nlohmann::json& value, const nlohmann::json& schema);

// The JSON Schema of one call of t, {"name": t.name (const), "arguments": t.parameters}, for a place `at` (a JSON
// pointer without the '#': "" for the root, "/anyOf/2") of the document it goes into. t.parameters is a document of
// its own: its local $refs ("#", "#/$defs/x", "#/definitions/x", as zod and other generators write them) point
// into it, so they are rewritten to point into its copy at at + "/properties/arguments". A "$ref" inside a value
// (const, enum, default, examples) is data and stays as it is.
nlohmann::json tool_call_schema(const tool& t, const std::string& at = "");

class tool_registry {
  public:
    // Registers a tool. Errors (the registry is unchanged): invalid_argument for a bad or duplicate name, no
    // handler, or parameters that are not an object schema; unsupported (from engine::grammar) when the
    // parameters use a keyword that constrained decoding cannot enforce.
    status add(tool t);
    // nullptr when absent.
    const tool* find(std::string_view name) const;
    // In registration order.
    const std::vector<tool>& list() const { return tools_; }
    size_t size() const { return tools_.size(); }

    // Runs a tool. `done` is called exactly once: with not_found (unknown tool) or invalid_argument (arguments
    // that fail the schema; the message names the path) without running the handler; with internal when the
    // handler throws; otherwise with what the handler passes to its callback.
    void call(std::string_view name, const nlohmann::json& args, tool_done done) const;

    // The JSON Schema of one call in the Hermes/Qwen shape {"name": ..., "arguments": {...}}: an anyOf over the
    // tools, each with "name" const and its own "arguments" schema (the name decides the arguments).
    nlohmann::json call_schema() const;
    // call_schema() compiled for constrained decoding; invalid_argument when the registry is empty.
    result<std::shared_ptr<const engine::grammar>> call_grammar(const engine::grammar_options& options = {}) const;

  private:
    std::vector<tool> tools_;
};

}  // namespace mnemos::tools

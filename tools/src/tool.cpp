// Tool registry and argument validation. See tools/tool.h.
#include "tools/tool.h"

#include <algorithm>

namespace mnemos::tools {

using nlohmann::json;

namespace {

bool valid_name(const std::string& n) {
    if (n.empty() || n.size() > 64) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

}  // namespace

status tool_registry::add(tool t) {
    if (!valid_name(t.name))
        return make_error(errc::invalid_argument, "tool name '" + t.name + "' must be 1..64 of [A-Za-z0-9_-]");
    if (find(t.name)) return make_error(errc::invalid_argument, "tool '" + t.name + "' is already registered");
    if (!t.handler) return make_error(errc::invalid_argument, "tool '" + t.name + "' has no handler");
    if (t.parameters.is_null()) t.parameters = json{{"type", "object"}, {"properties", json::object()}};
    if (!t.parameters.is_object() || t.parameters.value("type", json()) != json("object"))
        return make_error(errc::invalid_argument, "tool '" + t.name + "': parameters must be a schema of type object");
    auto g = engine::grammar::from_json_schema(t.parameters.dump(-1, ' ', false, json::error_handler_t::replace));
    if (!g) return make_error(g.error().code(), "tool '" + t.name + "' parameters: " + g.error().message());
    tools_.push_back(std::move(t));
    return {};
}

const tool* tool_registry::find(std::string_view name) const {
    for (const auto& t : tools_)
        if (t.name == name) return &t;
    return nullptr;
}

void tool_registry::call(std::string_view name, const json& args, tool_done done) const {
    const tool* t = find(name);
    if (!t) return done(make_error(errc::not_found, "no tool named '" + std::string(name) + "'"));
    status st = validate_json(args, t->parameters);
    if (!st.ok()) return done(make_error(errc::invalid_argument, "tool '" + t->name + "' arguments: " + st.message()));
    // The handler may throw; `done` must still be called exactly once.
    auto called = std::make_shared<bool>(false);
    auto once = [called, done](result<json> r) {
        if (*called) return;
        *called = true;
        done(std::move(r));
    };
    try {
        t->handler(args, once);
    } catch (const std::exception& e) {
        once(make_error(errc::internal, "tool '" + t->name + "' threw: " + e.what()));
    } catch (...) {
        once(make_error(errc::internal, "tool '" + t->name + "' threw"));
    }
}

namespace {

// s's local $refs ("#...") pointed at `base` + their pointer (s is about to sit at JSON pointer base). Walks the
// schema keywords only: the values of const, enum, default and examples are data. Depth: the caller's JSON was
// parsed under tools::k_max_json_depth.
void rebase_refs(json& s, const std::string& base) {
    if (s.is_array()) {
        for (auto& e : s) rebase_refs(e, base);
        return;
    }
    if (!s.is_object()) return;
    for (auto it = s.begin(); it != s.end(); ++it) {
        const std::string& k = it.key();
        if (k == "const" || k == "enum" || k == "default" || k == "examples") continue;
        json& v = it.value();
        if (k == "$ref" && v.is_string()) {
            const std::string ref = v.get<std::string>();
            if (!ref.empty() && ref[0] == '#') v = "#" + base + ref.substr(1);
            continue;
        }
        if (k == "properties" || k == "$defs" || k == "definitions" || k == "patternProperties") {
            // Maps from names to schemas: a property named "$ref" or "const" is still a schema.
            if (v.is_object())
                for (auto& sub : v) rebase_refs(sub, base);
            continue;
        }
        rebase_refs(v, base);
    }
}

}  // namespace

json tool_call_schema(const tool& t, const std::string& at) {
    json args = t.parameters;
    rebase_refs(args, at + "/properties/arguments");
    return {{"type", "object"},
            {"properties", {{"name", {{"const", t.name}}}, {"arguments", std::move(args)}}},
            {"required", {"name", "arguments"}}};
}

json tool_registry::call_schema() const {
    if (tools_.size() == 1) return tool_call_schema(tools_[0]);
    json alts = json::array();
    for (size_t i = 0; i < tools_.size(); ++i)
        alts.push_back(tool_call_schema(tools_[i], "/anyOf/" + std::to_string(i)));
    return json{{"anyOf", alts}};
}

result<std::shared_ptr<const engine::grammar>> tool_registry::call_grammar(
    const engine::grammar_options& options) const {
    if (tools_.empty()) return make_error(errc::invalid_argument, "no tools registered");
    return engine::grammar::from_json_schema(call_schema().dump(-1, ' ', false, json::error_handler_t::replace),
                                             options);
}

}  // namespace mnemos::tools

// Tool registry and argument validation. See tools/tool.h.
#include "tools/tool.h"

#include <algorithm>

namespace mnemos::tools {

using nlohmann::json;

namespace {

size_t utf8_length(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

std::string kind_of(const json& v) {
    switch (v.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::boolean:
            return "a boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
            return "an integer";
        case json::value_t::number_float:
            return "a number";
        case json::value_t::string:
            return "a string";
        case json::value_t::array:
            return "an array";
        case json::value_t::object:
            return "an object";
        default:
            return "an unknown value";
    }
}

bool is_integer(const json& v) {
    if (v.is_number_integer()) return true;
    if (!v.is_number_float()) return false;
    const double d = v.get<double>();
    return d == static_cast<double>(static_cast<int64_t>(d));
}

bool json_equal(const json& a, const json& b) {
    if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
    return a == b;
}

status check(const json& v, const json& s, const std::string& path);

status check_type(const json& v, const std::string& type, const json& s, const std::string& path) {
    const auto bad = [&](const std::string& want) {
        return make_error(errc::invalid_argument, path + ": expected " + want + ", got " + kind_of(v));
    };
    const auto get = [&](const char* k, int64_t dflt) {
        const auto it = s.find(k);
        return it != s.end() && it->is_number() ? it->get<int64_t>() : dflt;
    };
    if (type == "string") {
        if (!v.is_string()) return bad("a string");
        const size_t n = utf8_length(v.get_ref<const std::string&>());
        if (static_cast<int64_t>(n) > get("maxLength", INT64_MAX))
            return make_error(errc::invalid_argument,
                              path + ": longer than maxLength " + std::to_string(get("maxLength", 0)));
        if (static_cast<int64_t>(n) < get("minLength", 0))
            return make_error(errc::invalid_argument,
                              path + ": shorter than minLength " + std::to_string(get("minLength", 0)));
        return {};
    }
    if (type == "integer") return is_integer(v) ? status{} : bad("an integer");
    if (type == "number") return v.is_number() ? status{} : bad("a number");
    if (type == "boolean") return v.is_boolean() ? status{} : bad("a boolean");
    if (type == "null") return v.is_null() ? status{} : bad("null");
    if (type == "array") {
        if (!v.is_array()) return bad("an array");
        if (static_cast<int64_t>(v.size()) < get("minItems", 0))
            return make_error(errc::invalid_argument,
                              path + ": fewer than minItems " + std::to_string(get("minItems", 0)));
        if (static_cast<int64_t>(v.size()) > get("maxItems", INT64_MAX))
            return make_error(errc::invalid_argument,
                              path + ": more than maxItems " + std::to_string(get("maxItems", 0)));
        const auto it = s.find("items");
        if (it != s.end())
            for (size_t i = 0; i < v.size(); ++i) {
                status st = check(v[i], *it, path + "[" + std::to_string(i) + "]");
                if (!st.ok()) return st;
            }
        return {};
    }
    if (type == "object") {
        if (!v.is_object()) return bad("an object");
        const auto props = s.find("properties");
        if (props == s.end() || !props->is_object()) return {};  // any object
        for (const auto& [k, x] : v.items()) {
            const auto ps = props->find(k);
            if (ps == props->end()) return make_error(errc::invalid_argument, path + ": unknown property '" + k + "'");
            status st = check(x, *ps, path + "." + k);
            if (!st.ok()) return st;
        }
        const auto req = s.find("required");
        if (req != s.end() && req->is_array())
            for (const auto& r : *req)
                if (r.is_string() && !v.contains(r.get<std::string>()))
                    return make_error(errc::invalid_argument,
                                      path + ": missing required property '" + r.get<std::string>() + "'");
        return {};
    }
    return make_error(errc::invalid_argument, path + ": unknown type '" + type + "' in the schema");
}

status check(const json& v, const json& s, const std::string& path) {
    if (s.is_boolean()) {
        return s.get<bool>() ? status{} : make_error(errc::invalid_argument, path + ": the schema accepts nothing");
    }
    if (!s.is_object()) return make_error(errc::invalid_argument, path + ": the schema is not an object");
    if (const auto it = s.find("anyOf"); it != s.end() && it->is_array()) {
        std::string why;
        for (const auto& alt : *it) {
            status st = check(v, alt, path);
            if (st.ok()) return st;
            if (why.empty()) why = st.message();
        }
        return make_error(errc::invalid_argument, path + ": matches no alternative of anyOf (first: " + why + ")");
    }
    if (const auto it = s.find("const"); it != s.end()) {
        return json_equal(v, *it) ? status{} : make_error(errc::invalid_argument, path + ": expected " + it->dump());
    }
    if (const auto it = s.find("enum"); it != s.end() && it->is_array()) {
        for (const auto& x : *it)
            if (json_equal(v, x)) return {};
        return make_error(errc::invalid_argument, path + ": not one of " + it->dump());
    }
    const auto t = s.find("type");
    if (t != s.end() && t->is_array()) {
        status first;
        for (const auto& ty : *t) {
            if (!ty.is_string()) continue;
            status st = check_type(v, ty.get<std::string>(), s, path);
            if (st.ok()) return st;
            if (first.ok()) first = st;
        }
        return first.ok() ? make_error(errc::invalid_argument, path + ": empty type list") : first;
    }
    if (t != s.end() && t->is_string()) return check_type(v, t->get<std::string>(), s, path);
    if (s.contains("properties") || s.contains("required")) return check_type(v, "object", s, path);
    if (s.contains("items")) return check_type(v, "array", s, path);
    return {};
}

bool valid_name(const std::string& n) {
    if (n.empty() || n.size() > 64) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

}  // namespace

status validate_json(const json& value, const json& schema) { return check(value, schema, "$"); }

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

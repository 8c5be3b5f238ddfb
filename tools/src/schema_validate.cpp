// JSON Schema validation of tool arguments (validate_json in tools/tool.h): the keywords engine/grammar.h
// enforces while decoding, checked again on values that did not come from the grammar.
#include <cmath>
#include <regex>

#include "tools/src/schema_formats.h"
#include "tools/tool.h"

namespace mnemos::tools {

using nlohmann::json;

namespace {

// $ref expansions on one path at most (recursive schemas); deeper is an error, never a stack overflow.
constexpr int k_max_ref_depth = 64;

status invalid(const std::string& path, const std::string& what) {
    return make_error(errc::invalid_argument, path + ": " + what);
}

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
    return std::isfinite(d) && d == std::trunc(d);
}

bool json_equal(const json& a, const json& b) {
    if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
    return a == b;
}

int64_t int_keyword(const json& s, const char* k, int64_t dflt) {
    const auto it = s.find(k);
    return it != s.end() && it->is_number() ? it->get<int64_t>() : dflt;
}

// A count (characters, items, properties) against its lower and upper keywords.
status check_count(int64_t n, const json& s, const char* min_key, const char* max_key, const char* below,
                   const char* above, const std::string& path) {
    if (n < int_keyword(s, min_key, 0))
        return invalid(path, std::string(below) + " " + min_key + " " + std::to_string(int_keyword(s, min_key, 0)));
    if (n > int_keyword(s, max_key, INT64_MAX))
        return invalid(path, std::string(above) + " " + max_key + " " + std::to_string(int_keyword(s, max_key, 0)));
    return {};
}

class validator {
  public:
    explicit validator(const json& root) : root_(root) {}

    status check(const json& v, const json& s, const std::string& path, int depth = 0) {
        if (s.is_boolean()) return s.get<bool>() ? status{} : invalid(path, "the schema accepts nothing");
        if (!s.is_object()) return invalid(path, "the schema is not an object");
        if (const auto it = s.find("$ref"); it != s.end()) return check_ref(v, *it, path, depth);
        for (auto step : {&validator::check_combinators, &validator::check_literals, &validator::check_types,
                          &validator::check_kind_keywords}) {
            if (status st = (this->*step)(v, s, path, depth); !st.ok()) return st;
        }
        return {};
    }

  private:
    status check_ref(const json& v, const json& ref, const std::string& path, int depth) {
        if (depth >= k_max_ref_depth) return invalid(path, "$ref nested deeper than " + std::to_string(depth));
        if (!ref.is_string() || ref.get_ref<const std::string&>().rfind('#', 0) != 0)
            return invalid(path, "$ref must be a local reference \"#...\"");
        try {
            const json::json_pointer ptr(ref.get<std::string>().substr(1));
            if (!root_.contains(ptr)) return invalid(path, "$ref " + ref.get<std::string>() + " points nowhere");
            return check(v, root_.at(ptr), path, depth + 1);
        } catch (const json::exception&) {
            return invalid(path, "$ref " + ref.get<std::string>() + " is not a JSON pointer");
        }
    }

    status check_combinators(const json& v, const json& s, const std::string& path, int depth) {
        if (const auto it = s.find("allOf"); it != s.end() && it->is_array()) {
            for (const auto& part : *it)
                if (!part.is_object()) return invalid(path, "allOf holds a schema that is not an object");
            json rest = json::array();
            if (status st = check(v, merge_all_of(s, rest), path, depth); !st.ok()) return st;
            for (const auto& part : rest)
                if (status st = check(v, part, path, depth); !st.ok()) return st;
            return {};
        }
        if (const auto it = s.find("anyOf"); it != s.end() && it->is_array()) {
            std::string why;
            for (const auto& alt : *it) {
                status st = check(v, alt, path, depth);
                if (st.ok()) return check_oneof(v, s, path, depth);
                if (why.empty()) why = st.message();
            }
            return invalid(path, "matches no alternative of anyOf (first: " + why + ")");
        }
        return check_oneof(v, s, path, depth);
    }

    // The parts of allOf merged into one schema, as the grammar merges them: properties united (a key in two
    // parts must satisfy both), required united; another keyword in two parts goes to `rest` as a one-keyword
    // schema, checked on its own (it holds no properties, so no "unknown property" of its own).
    static json merge_all_of(const json& s, json& rest) {
        json merged = s;
        merged.erase("allOf");
        for (const auto& part : s["allOf"]) {
            for (const auto& [k, x] : part.items()) {
                if (k == "properties" && x.is_object()) {
                    json& props = merged["properties"];
                    for (const auto& [name, sub] : x.items())
                        props[name] = props.contains(name) ? json{{"allOf", {props[name], sub}}} : sub;
                } else if (k == "required" && x.is_array()) {
                    for (const auto& r : x) merged["required"].push_back(r);
                } else if (!merged.contains(k)) {
                    merged[k] = x;
                } else if (merged[k] != x) {
                    rest.push_back(json{{k, x}});
                }
            }
        }
        return merged;
    }

    status check_oneof(const json& v, const json& s, const std::string& path, int depth) {
        const auto it = s.find("oneOf");
        if (it == s.end() || !it->is_array()) return {};
        int matched = 0;
        std::string why;
        for (const auto& alt : *it) {
            status st = check(v, alt, path, depth);
            matched += st.ok();
            if (!st.ok() && why.empty()) why = st.message();
        }
        if (matched == 1) return {};
        if (matched == 0) return invalid(path, "matches no alternative of oneOf (first: " + why + ")");
        return invalid(path, "matches " + std::to_string(matched) + " alternatives of oneOf, not exactly one");
    }

    status check_literals(const json& v, const json& s, const std::string& path, int) {
        if (const auto it = s.find("const"); it != s.end() && !json_equal(v, *it))
            return invalid(path, "expected " + it->dump());
        if (const auto it = s.find("enum"); it != s.end() && it->is_array()) {
            for (const auto& x : *it)
                if (json_equal(v, x)) return {};
            return invalid(path, "not one of " + it->dump());
        }
        return {};
    }

    // "type" (a name or a list); without it, properties/required imply an object and items an array.
    status check_types(const json& v, const json& s, const std::string& path, int) {
        const auto t = s.find("type");
        if (t == s.end()) {
            if ((s.contains("properties") || s.contains("required")) && !v.is_object())
                return invalid(path, "expected an object, got " + kind_of(v));
            if ((s.contains("items") || s.contains("prefixItems")) && !v.is_array())
                return invalid(path, "expected an array, got " + kind_of(v));
            return {};
        }
        std::vector<std::string> names;
        if (t->is_string()) names.push_back(t->get<std::string>());
        if (t->is_array())
            for (const auto& x : *t)
                if (x.is_string()) names.push_back(x.get<std::string>());
        if (names.empty()) return invalid(path, "empty type list");
        std::string want;
        for (const auto& n : names) {
            if (n != "string" && n != "integer" && n != "number" && n != "boolean" && n != "null" && n != "array" &&
                n != "object")
                return invalid(path, "unknown type '" + n + "' in the schema");
            if (is_kind(v, n)) return {};
            want += (want.empty() ? "" : " or ") + article(n);
        }
        return invalid(path, "expected " + want + ", got " + kind_of(v));
    }

    static bool is_kind(const json& v, const std::string& n) {
        if (n == "string") return v.is_string();
        if (n == "integer") return is_integer(v);
        if (n == "number") return v.is_number();
        if (n == "boolean") return v.is_boolean();
        if (n == "null") return v.is_null();
        if (n == "array") return v.is_array();
        return v.is_object();
    }

    static std::string article(const std::string& n) {
        if (n == "null") return "null";
        if (n == "integer" || n == "array" || n == "object") return "an " + n;
        return "a " + n;
    }

    // The keywords of the value's own kind (JSON Schema applies string keywords to strings only, and so on).
    status check_kind_keywords(const json& v, const json& s, const std::string& path, int depth) {
        if (v.is_string()) return check_string(v.get_ref<const std::string&>(), s, path);
        if (v.is_number()) return check_number(v, s, path);
        if (v.is_array()) return check_array(v, s, path, depth);
        if (v.is_object()) return check_object(v, s, path, depth);
        return {};
    }

    status check_string(const std::string& text, const json& s, const std::string& path) {
        const auto n = static_cast<int64_t>(utf8_length(text));
        if (status st = check_count(n, s, "minLength", "maxLength", "shorter than", "longer than", path); !st.ok())
            return st;
        if (const auto it = s.find("pattern"); it != s.end() && it->is_string()) {
            try {
                if (!std::regex_search(text, std::regex(it->get<std::string>(), std::regex::ECMAScript)))
                    return invalid(path, "does not match the pattern " + it->dump());
            } catch (const std::regex_error&) {
                return invalid(path, "the pattern " + it->dump() + " is not a valid regular expression");
            }
        }
        if (const auto it = s.find("format");
            it != s.end() && it->is_string() && !matches_format(text, it->get_ref<const std::string&>()))
            return invalid(path, "not a valid " + it->get<std::string>());
        return {};
    }

    status check_number(const json& v, const json& s, const std::string& path) {
        const double x = v.get<double>();
        const auto bound = [&](const char* k, auto fails, const char* what) -> status {
            const auto it = s.find(k);
            if (it == s.end() || !it->is_number() || !fails(x, it->get<double>())) return {};
            return invalid(path, std::string(what) + " " + it->dump() + " (" + k + ")");
        };
        for (const status& st :
             {bound("minimum", std::less<double>(), "less than"), bound("maximum", std::greater<double>(), "more than"),
              bound("exclusiveMinimum", std::less_equal<double>(), "not more than"),
              bound("exclusiveMaximum", std::greater_equal<double>(), "not less than")})
            if (!st.ok()) return st;
        if (const auto it = s.find("multipleOf"); it != s.end() && it->is_number() && it->get<double>() > 0) {
            const double q = x / it->get<double>();
            if (std::abs(q - std::round(q)) > 1e-9 * std::max(1.0, std::abs(q)))
                return invalid(path, "not a multiple of " + it->dump());
        }
        return {};
    }

    status check_array(const json& v, const json& s, const std::string& path, int depth) {
        const auto n = static_cast<int64_t>(v.size());
        if (status st = check_count(n, s, "minItems", "maxItems", "fewer than", "more than", path); !st.ok()) return st;
        // prefixItems (draft 2020-12) or items as an array (draft 7) fix the first items; items (or
        // additionalItems beside an items array) the rest.
        const json* prefix = nullptr;
        const json* rest = nullptr;
        if (const auto it = s.find("prefixItems"); it != s.end() && it->is_array()) prefix = &*it;
        if (const auto it = s.find("items"); it != s.end()) (it->is_array() ? prefix : rest) = &*it;
        if (prefix && rest == nullptr)
            if (const auto it = s.find("additionalItems"); it != s.end()) rest = &*it;
        for (size_t i = 0; i < v.size(); ++i) {
            const json* item = prefix && i < prefix->size() ? &(*prefix)[i] : rest;
            if (!item) continue;
            if (status st = check(v[i], *item, path + "[" + std::to_string(i) + "]", depth); !st.ok()) return st;
        }
        return {};
    }

    status check_object(const json& v, const json& s, const std::string& path, int depth) {
        const auto n = static_cast<int64_t>(v.size());
        if (status st = check_count(n, s, "minProperties", "maxProperties", "fewer than", "more than", path); !st.ok())
            return st;
        const auto props = s.find("properties");
        const bool declared = props != s.end() && props->is_object();
        const auto extra = s.find("additionalProperties");
        for (const auto& [k, x] : v.items()) {
            if (declared && props->contains(k)) {
                if (status st = check(x, (*props)[k], path + "." + k, depth); !st.ok()) return st;
            } else if (declared) {
                // As the grammar writes them: with properties, only the declared keys.
                return invalid(path, "unknown property '" + k + "'");
            } else if (extra != s.end()) {
                if (status st = check(x, *extra, path + "." + k, depth); !st.ok()) return st;
            }
        }
        if (const auto req = s.find("required"); req != s.end() && req->is_array())
            for (const auto& r : *req)
                if (r.is_string() && !v.contains(r.get<std::string>()))
                    return invalid(path, "missing required property '" + r.get<std::string>() + "'");
        return {};
    }

    const json& root_;
};

}  // namespace

status validate_json(const json& value, const json& schema) { return validator(schema).check(value, schema, "$"); }

}  // namespace mnemos::tools

// allOf: two normalized schemas merged into one. See grammar_schema_normalize.h.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/src/grammar_schema_normalize.h"

namespace mnemos::engine {

void set_member(json_value& o, const std::string& key, json_value v) {
    for (auto& [k, x] : o.object)
        if (k == key) {
            x = std::move(v);
            return;
        }
    o.object.emplace_back(key, std::move(v));
}

void erase_member(json_value& o, const std::string& key) {
    o.object.erase(std::remove_if(o.object.begin(), o.object.end(), [&](const auto& m) { return m.first == key; }),
                   o.object.end());
}

bool is_annotation(const std::string& k) {
    static const char* const names[] = {"description", "title",    "examples",   "default",  "$schema",
                                        "$id",         "$comment", "deprecated", "readOnly", "writeOnly"};
    for (const char* n : names)
        if (k == n) return true;
    return false;
}

namespace {

json_value bool_schema(bool b) {
    json_value v;
    v.kind = json_value::k_bool;
    v.boolean = b;
    return v;
}

bool is_true(const json_value& s) {
    if (s.kind == json_value::k_bool) return s.boolean;
    for (const auto& [k, v] : s.object)
        if (!is_annotation(k)) return false;
    return true;
}

std::vector<std::string> type_list(const json_value& t) {
    std::vector<std::string> out;
    if (t.kind == json_value::k_string) out.push_back(t.str);
    for (const auto& x : t.array) out.push_back(x.str);
    return out;
}

// Types of a and b together ("integer" is a "number").
bool merge_types(const json_value& a, const json_value& b, json_value& out) {
    std::vector<std::string> r;
    for (const auto& x : type_list(a))
        for (const auto& y : type_list(b)) {
            if (x == y || (x == "integer" && y == "number")) r.push_back(x);
            if (x == "number" && y == "integer") r.push_back(y);
        }
    if (r.empty()) return false;
    out = json_value{};
    if (r.size() == 1) {
        out.kind = json_value::k_string;
        out.str = r[0];
        return true;
    }
    out.kind = json_value::k_array;
    for (const auto& t : r) {
        json_value s;
        s.kind = json_value::k_string;
        s.str = t;
        out.array.push_back(s);
    }
    return true;
}

bool is_lower(const std::string& k) {
    return k == "minimum" || k == "exclusiveMinimum" || k == "minLength" || k == "minItems" || k == "minProperties";
}
bool is_upper(const std::string& k) {
    return k == "maximum" || k == "exclusiveMaximum" || k == "maxLength" || k == "maxItems" || k == "maxProperties";
}

// One keyword present in both (different values). Sets never = true when nothing can match both.
status merge_keyword(const std::string& k, const json_value& x, const json_value& y, const std::string& path,
                     json_value& out, bool& never) {
    const auto unsupported = [&]() {
        return make_error(errc::unsupported, path + ": allOf with different '" + k + "' is not supported");
    };
    const bool nums = x.kind == json_value::k_number && y.kind == json_value::k_number;
    if (nums && is_lower(k)) return out = x.number >= y.number ? x : y, status{};
    if (nums && is_upper(k)) return out = x.number <= y.number ? x : y, status{};
    if (k == "type") return never = !merge_types(x, y, out), status{};
    if (k == "const") return never = true, status{};
    if (k == "required") {
        out = x;
        for (const auto& r : y.array)
            if (std::none_of(x.array.begin(), x.array.end(), [&](const json_value& q) { return q.str == r.str; }))
                out.array.push_back(r);
        return {};
    }
    if (k == "enum") {
        out = x;
        out.array.clear();
        for (const auto& v : x.array)
            for (const auto& w : y.array)
                if (v.dump() == w.dump()) out.array.push_back(v);
        never = out.array.empty();
        return {};
    }
    if (k == "multipleOf" && nums && x.number == std::floor(x.number) && y.number == std::floor(y.number) &&
        x.number < 1e6 && y.number < 1e6) {
        out = x;
        out.number = static_cast<double>(std::lcm(static_cast<int64_t>(x.number), static_cast<int64_t>(y.number)));
        out.str = std::to_string(static_cast<int64_t>(out.number));
        return {};
    }
    if (k == "properties") {
        out = x;
        for (const auto& [pk, pv] : y.object) {
            const json_value* mine = x.find(pk);
            if (!mine) {
                out.object.emplace_back(pk, pv);
                continue;
            }
            json_value m;
            if (status st = merge_schemas(*mine, pv, path + "/properties/" + pk, m); !st.ok()) return st;
            set_member(out, pk, std::move(m));
        }
        return {};
    }
    if (k == "items" || k == "additionalProperties" || k == "propertyNames")
        return merge_schemas(x, y, path + "/" + k, out);
    return unsupported();
}

// Merges each alternative of `alts` (an anyOf array) with `other`.
status distribute(const json_value& alts, const json_value& other, const std::string& path, json_value& out) {
    json_value list;
    list.kind = json_value::k_array;
    for (size_t i = 0; i < alts.array.size(); ++i) {
        json_value m;
        if (status st = merge_schemas(alts.array[i], other, path + "/anyOf/" + std::to_string(i), m); !st.ok())
            return st;
        list.array.push_back(std::move(m));
    }
    if (list.array.size() > 256)
        return make_error(errc::unsupported, path + ": allOf of unions: too many alternatives");
    out = json_value{};
    out.kind = json_value::k_object;
    out.object.emplace_back("anyOf", std::move(list));
    return {};
}

}  // namespace

status merge_schemas(const json_value& a, const json_value& b, const std::string& path, json_value& out) {
    if (is_true(a)) return out = b, status{};
    if (is_true(b)) return out = a, status{};
    if (a.kind == json_value::k_bool || b.kind == json_value::k_bool) return out = bool_schema(false), status{};
    if (const json_value* alts = a.find("anyOf")) {
        json_value rest = a;
        erase_member(rest, "anyOf");
        json_value other;
        if (status st = merge_schemas(rest, b, path, other); !st.ok()) return st;
        return distribute(*alts, other, path, out);
    }
    if (b.find("anyOf")) return merge_schemas(b, a, path, out);
    out = a;
    for (const auto& [k, y] : b.object) {
        const json_value* x = a.find(k);
        if (!x) {
            out.object.emplace_back(k, y);
            continue;
        }
        if (x->dump() == y.dump() || is_annotation(k)) continue;
        json_value m;
        bool never = false;
        if (status st = merge_keyword(k, *x, y, path, m, never); !st.ok()) return st;
        if (never) return out = bool_schema(false), status{};
        set_member(out, k, std::move(m));
    }
    return {};
}

}  // namespace mnemos::engine

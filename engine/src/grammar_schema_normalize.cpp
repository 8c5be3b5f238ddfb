// $ref expansion, allOf/oneOf/anyOf rewriting, object and array literals. See grammar_schema_normalize.h.
#include "engine/src/grammar_schema_normalize.h"

#include <map>

namespace mnemos::engine {

namespace {

constexpr size_t k_max_output_nodes = 200000;
constexpr int k_max_ref_nesting = 64;

json_value str_value(const std::string& s) {
    json_value v;
    v.kind = json_value::k_string;
    v.str = s;
    return v;
}

json_value num_value(size_t n) {
    json_value v;
    v.kind = json_value::k_number;
    v.number = static_cast<double>(n);
    v.str = std::to_string(n);
    return v;
}

json_value obj() {
    json_value v;
    v.kind = json_value::k_object;
    return v;
}

json_value arr() {
    json_value v;
    v.kind = json_value::k_array;
    return v;
}

// The schema that accepts exactly the JSON value v.
json_value literal_schema(const json_value& v) {
    json_value s = obj();
    if (v.kind == json_value::k_object) {
        json_value props = obj(), req = arr();
        for (const auto& [k, x] : v.object) {
            set_member(props, k, literal_schema(x));
            req.array.push_back(str_value(k));
        }
        s.object.emplace_back("type", str_value("object"));
        s.object.emplace_back("properties", std::move(props));
        s.object.emplace_back("required", std::move(req));
    } else if (v.kind == json_value::k_array) {
        json_value items = arr();
        for (const auto& x : v.array) items.array.push_back(literal_schema(x));
        s.object.emplace_back("type", str_value("array"));
        s.object.emplace_back("prefixItems", std::move(items));
        s.object.emplace_back("minItems", num_value(v.array.size()));
        s.object.emplace_back("maxItems", num_value(v.array.size()));
        json_value no;
        no.kind = json_value::k_bool;
        s.object.emplace_back("items", no);
    } else {
        s.object.emplace_back("const", v);
    }
    return s;
}

struct normalizer {
    const json_value& root;
    int32_t max_recursion;
    std::map<std::string, int32_t> active;  // $ref target -> expansions on the current path
    int ref_nesting = 0;
    size_t n_nodes = 0;

    status resolve(const std::string& ref, const std::string& path, const json_value*& out) {
        if (ref.empty() || ref[0] != '#')
            return make_error(errc::unsupported, path + ": $ref '" + ref + "' to another document is not supported");
        const json_value* cur = &root;
        size_t i = 1;
        while (i < ref.size()) {
            if (ref[i] != '/')
                return make_error(errc::unsupported, path + ": $ref '" + ref + "' is not a JSON pointer");
            size_t j = ref.find('/', i + 1);
            if (j == std::string::npos) j = ref.size();
            std::string tok = ref.substr(i + 1, j - i - 1);
            for (size_t p = 0; (p = tok.find('~', p)) != std::string::npos; ++p)
                tok.replace(p, 2, tok.compare(p, 2, "~1") == 0 ? "/" : "~");
            const json_value* next = nullptr;
            if (cur->kind == json_value::k_object) next = cur->find(tok);
            if (cur->kind == json_value::k_array && !tok.empty() &&
                tok.find_first_not_of("0123456789") == std::string::npos && std::stoul(tok) < cur->array.size())
                next = &cur->array[std::stoul(tok)];
            if (!next) return make_error(errc::invalid_argument, path + ": $ref '" + ref + "' points nowhere");
            cur = next;
            i = j;
        }
        out = cur;
        return {};
    }

    status ref(const json_value& s, const std::string& path, json_value& out) {
        const json_value* r = s.find("$ref");
        if (r->kind != json_value::k_string)
            return make_error(errc::invalid_argument, path + ": '$ref' must be a string");
        const json_value* target = nullptr;
        if (status st = resolve(r->str, path, target); !st.ok()) return st;
        int32_t& n = active[r->str];
        if (n >= max_recursion || ref_nesting >= k_max_ref_nesting) {
            out = json_value{};
            out.kind = json_value::k_bool;  // false: the recursion ends here
            return {};
        }
        json_value rest = s;
        erase_member(rest, "$ref");
        ++n;
        ++ref_nesting;
        json_value t, sib;
        status st = walk(*target, path + "/$ref", t);
        if (st.ok()) st = walk(rest, path, sib);
        if (st.ok()) st = merge_schemas(t, sib, path, out);
        --ref_nesting;
        --active[r->str];
        return st;
    }

    status all_of(const json_value& s, const std::string& path, json_value& out) {
        const json_value* all = s.find("allOf");
        if (all->kind != json_value::k_array || all->array.empty())
            return make_error(errc::invalid_argument, path + ": 'allOf' must be a non-empty array");
        json_value rest = s;
        erase_member(rest, "allOf");
        if (status st = walk(rest, path, out); !st.ok()) return st;
        for (size_t i = 0; i < all->array.size(); ++i) {
            const std::string p = path + "/allOf/" + std::to_string(i);
            json_value part, m;
            if (status st = walk(all->array[i], p, part); !st.ok()) return st;
            if (status st = merge_schemas(out, part, p, m); !st.ok()) return st;
            out = std::move(m);
        }
        return {};
    }

    // anyOf (or oneOf) with the node's other keywords merged into each alternative.
    status any_of(const json_value& s, const char* key, const std::string& path, json_value& out) {
        const json_value* alts = s.find(key);
        if (alts->kind != json_value::k_array || alts->array.empty())
            return make_error(errc::invalid_argument, path + ": '" + key + "' must be a non-empty array");
        json_value rest = s, list = arr();
        erase_member(rest, key);
        json_value base;
        if (status st = walk(rest, path, base); !st.ok()) return st;
        for (size_t i = 0; i < alts->array.size(); ++i) {
            const std::string p = path + "/" + key + "/" + std::to_string(i);
            json_value a, m;
            if (status st = walk(alts->array[i], p, a); !st.ok()) return st;
            if (status st = merge_schemas(base, a, p, m); !st.ok()) return st;
            list.array.push_back(std::move(m));
        }
        out = obj();
        out.object.emplace_back("anyOf", std::move(list));
        return {};
    }

    // const/enum holding objects or arrays: an anyOf of literal schemas.
    status literals(const json_value& s, const std::string& path, json_value& out) {
        json_value rest = s, list = arr();
        erase_member(rest, "const");
        erase_member(rest, "enum");
        if (const json_value* c = s.find("const")) list.array.push_back(literal_schema(*c));
        if (const json_value* e = s.find("enum")) {
            if (e->kind != json_value::k_array || e->array.empty())
                return make_error(errc::invalid_argument, path + ": 'enum' must be a non-empty array");
            for (const auto& v : e->array) list.array.push_back(literal_schema(v));
        }
        json_value u = obj();
        u.object.emplace_back(s.find("const") ? "allOf" : "anyOf", std::move(list));
        rest.object.emplace_back("allOf", arr());
        rest.object.back().second.array.push_back(std::move(u));
        return walk(rest, path, out);
    }

    static bool has_structured_literal(const json_value& s) {
        const auto structured = [](const json_value& v) {
            return v.kind == json_value::k_object || v.kind == json_value::k_array;
        };
        if (const json_value* c = s.find("const"); c && structured(*c)) return true;
        if (const json_value* e = s.find("enum"); e && e->kind == json_value::k_array)
            for (const auto& v : e->array)
                if (structured(v)) return true;
        return false;
    }

    status children(const json_value& s, const std::string& path, json_value& out);

    status walk(const json_value& s, const std::string& path, json_value& out) {
        if (++n_nodes > k_max_output_nodes)
            return make_error(errc::unsupported, path + ": the schema expands to more than " +
                                                     std::to_string(k_max_output_nodes) + " nodes");
        if (s.kind != json_value::k_object) return out = s, status{};
        if (s.find("$ref")) return ref(s, path, out);
        if (s.find("allOf")) return all_of(s, path, out);
        if (s.find("anyOf") && s.find("oneOf"))
            return make_error(errc::unsupported, path + ": 'anyOf' beside 'oneOf' is not supported");
        if (s.find("oneOf")) return any_of(s, "oneOf", path, out);
        if (s.find("anyOf")) {
            for (const auto& [k, v] : s.object)
                if (k != "anyOf" && !is_annotation(k) && k != "$defs" && k != "definitions")
                    return any_of(s, "anyOf", path, out);
        }
        if (has_structured_literal(s)) return literals(s, path, out);
        return children(s, path, out);
    }
};

status normalizer::children(const json_value& s, const std::string& path, json_value& out) {
    out = obj();
    for (const auto& [k, v] : s.object) {
        if (k == "$defs" || k == "definitions") continue;
        const std::string p = path + "/" + k;
        json_value x = v;
        const bool map = k == "properties" || k == "patternProperties";
        const bool list = k == "prefixItems" || k == "anyOf" || (k == "items" && v.kind == json_value::k_array);
        const bool one =
            k == "items" || k == "additionalProperties" || k == "propertyNames" || k == "additionalItems" || k == "not";
        if (map && v.kind == json_value::k_object) {
            for (size_t i = 0; i < v.object.size(); ++i)
                if (status st = walk(v.object[i].second, p + "/" + v.object[i].first, x.object[i].second); !st.ok())
                    return st;
        } else if (list) {
            for (size_t i = 0; i < v.array.size(); ++i)
                if (status st = walk(v.array[i], p + "/" + std::to_string(i), x.array[i]); !st.ok()) return st;
        } else if (one && v.kind == json_value::k_object) {
            if (status st = walk(v, p, x); !st.ok()) return st;
        }
        out.object.emplace_back(k, std::move(x));
    }
    return {};
}

}  // namespace

status normalize_schema(const json_value& root, int32_t max_recursion, json_value& out) {
    normalizer n{root, max_recursion, {}, 0, 0};
    return n.walk(root, "#", out);
}

}  // namespace mnemos::engine

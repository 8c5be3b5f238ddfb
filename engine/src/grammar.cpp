// JSON Schema -> byte-level pushdown automaton. See engine/grammar.h.
//
// Nodes (one per compiled schema):
//   string  a = minLength, b = maxLength (characters)
//   number  a = 1 for integer
//   literal a = trie of JSON-encoded literals (enum, const, true, false, null)
//   array   a = item node, b = minItems, c = maxItems
//   object  a = object group (alternatives, keys, value nodes)
//   map     a = value node, b = key node (a string), c = most members (an object without "properties")
//   any_of  dispatch[first byte] -> node
//   lead    a = the document's node, b = most leading spaces/newlines (the root when max_leading_whitespace > 0)
//
// Frames (grammar_frame) keep each node's position: phase, counters, the trie
// node of a literal or key, and for objects the live alternatives and the keys
// seen. A byte goes to the top frame, which consumes it, rejects it, or asks to
// retry it after pushing a child, popping itself (a number or literal ends at the
// first byte that cannot continue it), or resolving an any_of.
#include "engine/grammar.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "engine/src/grammar_internal.h"
#include "engine/src/grammar_json.h"
#include "engine/src/grammar_schema_normalize.h"
#include "engine/src/grammar_schema_scalar.h"

namespace mnemos::engine {

grammar::grammar() = default;
grammar::~grammar() = default;

// ---------------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------------

namespace {

const char* const k_known[] = {"type",
                               "properties",
                               "required",
                               "additionalProperties",
                               "items",
                               "minItems",
                               "maxItems",
                               "maxLength",
                               "minLength",
                               "enum",
                               "const",
                               "anyOf",
                               "minimum",
                               "maximum",
                               "exclusiveMinimum",
                               "exclusiveMaximum",
                               "multipleOf",
                               "pattern",
                               "format",
                               "prefixItems",
                               "additionalItems",
                               "minProperties",
                               "maxProperties",
                               "propertyNames"};

bool is_ignored(const std::string& k) { return is_annotation(k); }
// contentEncoding and contentMediaType beside a pattern: annotations (JSON Schema 2020-12) of what the pattern
// enforces (Zod's base64 and base64url strings carry both).
bool annotates_pattern(const std::string& k, const json_value& s) {
    return (k == "contentEncoding" || k == "contentMediaType") && s.find("pattern");
}
bool is_known(const std::string& k) {
    for (const char* x : k_known)
        if (k == x) return true;
    return is_ignored(k);
}

}  // namespace

struct grammar_builder {
    static constexpr int32_t k_never = -2;  // compile(): the schema accepts nothing (a cut recursion, false)
    grammar& g;
    status err;
    std::map<int32_t, int32_t> any_by_depth;
    int32_t free_string = -1;

    bool fail(errc c, const std::string& path, const std::string& what) {
        if (err.ok()) err = make_error(c, path.empty() ? what : path + ": " + what);
        return false;
    }

    int32_t add(node_kind k, int32_t a = 0, int32_t b = 0, int32_t c = 0) {
        grammar::node n;
        n.kind = k;
        n.a = a;
        n.b = b;
        n.c = c;
        g.nodes_.push_back(std::move(n));
        return static_cast<int32_t>(g.nodes_.size()) - 1;
    }

    int32_t add_trie(const std::vector<std::string>& lits) {
        grammar::trie t;
        t.nodes.emplace_back();
        t.literals = lits;
        for (size_t li = 0; li < lits.size(); ++li) {
            int32_t n = 0;
            const uint64_t bit = li < 64 ? (uint64_t(1) << li) : 0;
            t.nodes[0].keys |= bit;
            for (unsigned char c : lits[li]) {
                int32_t nx = t.child(n, c);
                if (nx < 0) {
                    nx = static_cast<int32_t>(t.nodes.size());
                    t.nodes.emplace_back();
                    t.nodes[static_cast<size_t>(n)].next.push_back({c, nx});
                }
                n = nx;
                t.nodes[static_cast<size_t>(n)].keys |= bit;
            }
            t.nodes[static_cast<size_t>(n)].terminal = static_cast<int32_t>(li);
        }
        g.tries_.push_back(std::move(t));
        return static_cast<int32_t>(g.tries_.size()) - 1;
    }

    int32_t string_node(int32_t min_len, int32_t max_len) { return add(node_kind::string, min_len, max_len); }

    int32_t any_node(int32_t depth) {
        auto it = any_by_depth.find(depth);
        if (it != any_by_depth.end()) return it->second;
        const int32_t id = add(node_kind::any_of);
        any_by_depth[depth] = id;
        std::vector<int32_t> d(256, -1);
        const int32_t s = string_node(0, g.opt_.max_string_chars);
        const int32_t num = add(node_kind::number, 0);
        const int32_t lit = add(node_kind::literal, add_trie({"true", "false", "null"}));
        d['"'] = s;
        d['-'] = num;
        for (int c = '0'; c <= '9'; ++c) d[static_cast<size_t>(c)] = num;
        d['t'] = d['f'] = d['n'] = lit;
        if (depth < g.opt_.max_any_depth) {
            const int32_t inner = any_node(depth + 1);
            if (free_string < 0) free_string = string_node(0, g.opt_.max_string_chars);
            d['{'] = add(node_kind::map, inner, free_string, g.opt_.max_any_items);
            d['['] = add(node_kind::array, inner, 0, g.opt_.max_any_items);
        }
        g.nodes_[static_cast<size_t>(id)].dispatch = std::move(d);
        return id;
    }

    bool get_int(const json_value& s, const char* key, const std::string& path, int64_t& out) {
        const json_value* v = s.find(key);
        if (!v) return true;
        if (v->kind != json_value::k_number || v->number < 0 || v->number != std::floor(v->number) || v->number > 1e9)
            return fail(errc::invalid_argument, path, std::string("'") + key + "' must be a non-negative integer");
        out = static_cast<int64_t>(v->number);
        return true;
    }

    // The literals (JSON text) of an enum/const schema; false when it has none.
    bool literals_of(const json_value& s, std::vector<std::string>& out) {
        if (const json_value* c = s.find("const")) {
            out.push_back(c->dump());
            return true;
        }
        if (const json_value* e = s.find("enum")) {
            for (const auto& v : e->array) out.push_back(v.dump());
            return true;
        }
        return false;
    }

    bool is_literal_only(const json_value& s) {
        if (s.kind != json_value::k_object) return false;
        if (!s.find("enum") && !s.find("const")) return false;
        for (const auto& [k, v] : s.object)
            if (k != "enum" && k != "const" && k != "type" && !is_ignored(k)) return false;
        return true;
    }

    // Checks keywords and their value kinds.
    bool check(const json_value& s, const std::string& path) {
        if (s.kind == json_value::k_bool) return true;
        if (s.kind != json_value::k_object) return fail(errc::invalid_argument, path, "a schema must be an object");
        for (const auto& [k, v] : s.object) {
            if (!is_known(k) && !annotates_pattern(k, s))
                return fail(errc::unsupported, path, "keyword '" + k + "' is not supported");
            if (k == "enum" && (v.kind != json_value::k_array || v.array.empty()))
                return fail(errc::invalid_argument, path, "'enum' must be a non-empty array");
            if (k == "enum" || k == "const") {
                const auto check_lit = [&](const json_value& x) {
                    return x.kind != json_value::k_object && x.kind != json_value::k_array;
                };
                if (k == "const" && !check_lit(v))
                    return fail(errc::unsupported, path, "'const' of an object or array is not supported");
                if (k == "enum")
                    for (const auto& x : v.array)
                        if (!check_lit(x))
                            return fail(errc::unsupported, path, "'enum' of objects or arrays is not supported");
            }
            if (k == "anyOf" && (v.kind != json_value::k_array || v.array.empty()))
                return fail(errc::invalid_argument, path, "'anyOf' must be a non-empty array");
            if (k == "properties" && v.kind != json_value::k_object)
                return fail(errc::invalid_argument, path, "'properties' must be an object");
            if (k == "required") {
                if (v.kind != json_value::k_array)
                    return fail(errc::invalid_argument, path, "'required' must be an array");
                for (const auto& x : v.array)
                    if (x.kind != json_value::k_string)
                        return fail(errc::invalid_argument, path, "'required' must hold strings");
            }
            if ((k == "additionalProperties" || k == "propertyNames" || k == "additionalItems") &&
                v.kind != json_value::k_bool && v.kind != json_value::k_object)
                return fail(errc::invalid_argument, path, "'" + k + "' must be a schema");
            if (k == "prefixItems" && v.kind != json_value::k_array)
                return fail(errc::invalid_argument, path, "'prefixItems' must be an array");
            if (k == "type") {
                const auto ok_type = [](const json_value& t) {
                    static const char* types[] = {"object", "array", "string", "number", "integer", "boolean", "null"};
                    if (t.kind != json_value::k_string) return false;
                    for (const char* x : types)
                        if (t.str == x) return true;
                    return false;
                };
                if (v.kind == json_value::k_array) {
                    for (const auto& t : v.array)
                        if (!ok_type(t)) return fail(errc::unsupported, path, "unknown type " + t.dump());
                } else if (!ok_type(v)) {
                    return fail(errc::unsupported, path, "unknown type " + v.dump());
                }
            }
        }
        return true;
    }

    struct alt_ref {
        const json_value* schema;
        std::string type;  // resolved kind: object/array/string/number/integer/boolean/null/literal/any
        std::string path;
    };

    // Flattens anyOf and type lists into single-kind alternatives.
    bool flatten(const json_value& s, const std::string& path, std::vector<alt_ref>& out,
                 std::vector<std::unique_ptr<json_value>>& keep) {
        if (!check(s, path)) return false;
        if (s.kind == json_value::k_bool) {
            out.push_back({&s, s.boolean ? "any" : "never", path});
            return true;
        }
        if (const json_value* any = s.find("anyOf")) {
            for (const auto& [k, v] : s.object)
                if (k != "anyOf" && !is_ignored(k))
                    return fail(errc::unsupported, path, "keyword '" + k + "' beside 'anyOf' is not supported");
            for (size_t i = 0; i < any->array.size(); ++i)
                if (!flatten(any->array[i], path + "/anyOf/" + std::to_string(i), out, keep)) return false;
            return true;
        }
        if (s.find("enum") || s.find("const")) {
            out.push_back({&s, "literal", path});
            return true;
        }
        const json_value* t = s.find("type");
        if (t && t->kind == json_value::k_array) {
            for (const auto& ty : t->array) {
                auto copy = std::make_unique<json_value>(s);
                for (auto& [k, v] : copy->object)
                    if (k == "type") v = ty;
                keep.push_back(std::move(copy));
                out.push_back({keep.back().get(), ty.str, path});
            }
            return true;
        }
        if (t) {
            out.push_back({&s, t->str, path});
        } else if (s.find("properties") || s.find("required") || s.find("additionalProperties") ||
                   s.find("minProperties") || s.find("maxProperties") || s.find("propertyNames")) {
            out.push_back({&s, "object", path});
        } else if (s.find("items") || s.find("minItems") || s.find("maxItems") || s.find("prefixItems")) {
            out.push_back({&s, "array", path});
        } else if (s.find("maxLength") || s.find("minLength") || string_needs_dfa(s)) {
            out.push_back({&s, "string", path});
        } else if (number_needs_dfa(s)) {
            out.push_back({&s, "number", path});
        } else {
            out.push_back({&s, "any", path});
        }
        return true;
    }

    // The alternatives of a schema by kind; literals (booleans, null, enum/const values) sorted and unique.
    struct alt_groups {
        std::vector<const alt_ref*> objects, arrays, strings, numbers;
        std::vector<std::string> lits;
        bool integer_only = true;  // every number alternative is an integer
    };

    alt_groups group_alternatives(const std::vector<alt_ref>& alts) {
        alt_groups gr;
        for (const auto& a : alts) {
            if (a.type == "object")
                gr.objects.push_back(&a);
            else if (a.type == "array")
                gr.arrays.push_back(&a);
            else if (a.type == "string")
                gr.strings.push_back(&a);
            else if (a.type == "number" || a.type == "integer") {
                gr.numbers.push_back(&a);
                if (a.type == "number") gr.integer_only = false;
            } else if (a.type == "boolean") {
                gr.lits.push_back("true");
                gr.lits.push_back("false");
            } else if (a.type == "null") {
                gr.lits.push_back("null");
            } else if (a.type == "literal") {
                literals_of(*a.schema, gr.lits);
            }
        }
        std::sort(gr.lits.begin(), gr.lits.end());
        gr.lits.erase(std::unique(gr.lits.begin(), gr.lits.end()), gr.lits.end());
        return gr;
    }

    // Which node each first byte of the value leads to (an any_of node's dispatch), and the nodes used.
    struct dispatch_table {
        std::vector<int32_t> d = std::vector<int32_t>(256, -1);
        std::vector<int32_t> targets;
        void set(const std::string& bytes, int32_t n) {
            for (char c : bytes) d[static_cast<unsigned char>(c)] = n;
            targets.push_back(n);
        }
    };
    static constexpr const char* k_number_starts = "-0123456789";

    // Objects (merged) and arrays (one schema). False on an error (already reported).
    bool compile_containers(const alt_groups& gr, const std::string& path, int32_t depth, dispatch_table& t) {
        if (!gr.objects.empty()) {
            const int32_t n = compile_objects(gr.objects, depth);
            if (n == -1) return false;
            if (n >= 0) t.set("{", n);
        }
        if (gr.arrays.empty()) return true;
        for (size_t i = 1; i < gr.arrays.size(); ++i)
            if (gr.arrays[i]->schema->dump() != gr.arrays[0]->schema->dump()) {
                fail(errc::unsupported, path, "anyOf with several different array schemas is not supported");
                return false;
            }
        const int32_t n = compile_array(*gr.arrays[0]->schema, gr.arrays[0]->path, depth);
        if (n == -1) return false;
        if (n >= 0) t.set("[", n);
        return true;
    }

    // Numbers with bounds and strings with pattern/format: one automaton each, literals of their kind included
    // (their groups are emptied). False on an error.
    bool compile_scalar_automata(alt_groups& gr, const std::string& path, dispatch_table& t) {
        if (!gr.numbers.empty() && std::any_of(gr.numbers.begin(), gr.numbers.end(),
                                               [](const alt_ref* a) { return number_needs_dfa(*a->schema); })) {
            const int32_t n = number_automaton(gr.numbers, gr.lits);
            if (n < 0) return false;
            t.set(k_number_starts, n);
            gr.numbers.clear();
        }
        if (!gr.strings.empty() && std::any_of(gr.strings.begin(), gr.strings.end(),
                                               [](const alt_ref* a) { return string_needs_dfa(*a->schema); })) {
            const int32_t n = string_automaton(gr.strings, gr.lits, path);
            if (n < 0) return false;
            t.set("\"", n);
            gr.strings.clear();
        }
        return true;
    }

    // Free strings (length bounds only), free numbers and the literals neither covers. False on an error.
    bool compile_free_scalars(const alt_groups& gr, const std::string& path, dispatch_table& t) {
        int64_t str_max = -1, str_min = -1;
        bool str_unbounded = false;
        for (const auto* a : gr.strings) {
            int64_t mx = -1, mn = 0;
            if (!get_int(*a->schema, "maxLength", a->path, mx) || !get_int(*a->schema, "minLength", a->path, mn))
                return false;
            if (mx < 0) str_unbounded = true;
            str_max = std::max(str_max, mx);
            str_min = str_min < 0 ? mn : std::min(str_min, mn);
        }
        const int64_t cap = g.opt_.max_string_chars;
        const std::string number_starts = k_number_starts;
        std::vector<std::string> rest;  // literals not covered by a free string or number alternative
        for (const auto& l : gr.lits) {
            const bool is_str = !l.empty() && l[0] == '"';
            const bool is_num = !l.empty() && number_starts.find(l[0]) != std::string::npos;
            if (is_str && !gr.strings.empty()) {
                if (gr.strings.size() > 1 || str_min > 0 ||
                    (!str_unbounded && str_max < static_cast<int64_t>(l.size()))) {
                    fail(errc::unsupported, path, "anyOf mixing a bounded string with a string enum is not supported");
                    return false;
                }
                continue;  // the free string accepts it
            }
            if (is_num && !gr.numbers.empty()) {
                if (gr.integer_only && l.find_first_of(".eE") != std::string::npos) {
                    fail(errc::unsupported, path, "anyOf mixing integer with a non-integer enum is not supported");
                    return false;
                }
                continue;
            }
            rest.push_back(l);
        }
        if (!gr.strings.empty()) {
            if (gr.strings.size() > 1 && str_min > 0) {
                fail(errc::unsupported, path, "anyOf of several strings with minLength is not supported");
                return false;
            }
            const int64_t mx = str_unbounded ? cap : std::min(str_max, cap);
            if (str_min > mx) {
                fail(errc::invalid_argument, path, "minLength is above maxLength");
                return false;
            }
            t.set("\"", string_node(static_cast<int32_t>(str_min), static_cast<int32_t>(mx)));
        }
        if (!gr.numbers.empty()) t.set(k_number_starts, add(node_kind::number, gr.integer_only ? 1 : 0));
        return rest.empty() || add_literals(rest, path, t);
    }

    // One trie node for the literals, dispatched by their first bytes. False when a byte is taken.
    bool add_literals(const std::vector<std::string>& rest, const std::string& path, dispatch_table& t) {
        const int32_t n = add(node_kind::literal, add_trie(rest));
        t.targets.push_back(n);
        for (const auto& l : rest) {
            const auto c = static_cast<unsigned char>(l[0]);
            if (t.d[c] >= 0 && t.d[c] != n) {
                fail(errc::internal, path, "literal overlaps another alternative");
                return false;
            }
            t.d[c] = n;
        }
        return true;
    }

    int32_t compile(const json_value& s, const std::string& path, int32_t depth) {
        if (depth > grammar_state::k_max_depth - 2) {
            fail(errc::unsupported, path,
                 "schema nested deeper than " + std::to_string(grammar_state::k_max_depth - 2));
            return -1;
        }
        std::vector<alt_ref> alts;
        std::vector<std::unique_ptr<json_value>> keep;
        if (!flatten(s, path, alts, keep)) return -1;
        for (const auto& a : alts)
            if (a.type == "any") return any_node(depth);
        if (std::all_of(alts.begin(), alts.end(), [](const alt_ref& a) { return a.type == "never"; })) return k_never;
        alt_groups gr = group_alternatives(alts);
        dispatch_table t;
        if (!compile_containers(gr, path, depth, t) || !compile_scalar_automata(gr, path, t) ||
            !compile_free_scalars(gr, path, t))
            return -1;
        if (t.targets.empty()) return k_never;
        if (t.targets.size() == 1) return t.targets[0];
        const int32_t id = add(node_kind::any_of);
        g.nodes_[static_cast<size_t>(id)].dispatch = std::move(t.d);
        return id;
    }

    int32_t add_dfa(const raw_dfa& d, bool quoted, int32_t min_len, int32_t max_len) {
        g.dfas_.push_back(dfa_finalize(quoted ? dfa_quote(d) : d, quoted));
        return add(node_kind::dfa, static_cast<int32_t>(g.dfas_.size()) - 1, min_len, max_len);
    }

    // Number alternatives with bounds or multipleOf (and the numeric literals, taken out of lits): one automaton.
    int32_t number_automaton(const std::vector<const alt_ref*>& numbers, std::vector<std::string>& lits) {
        std::vector<scalar_alt> alts;
        for (const auto* a : numbers) alts.push_back({a->schema, a->path, a->type == "integer"});
        std::vector<std::string> nums, others;
        for (const auto& l : lits) (l[0] == '-' || (l[0] >= '0' && l[0] <= '9') ? nums : others).push_back(l);
        raw_dfa d;
        if (status st = number_dfa(alts, nums, g.opt_, d); !st.ok()) return fail(st.code(), "", st.message()), -1;
        lits = std::move(others);
        return add_dfa(d, false, 0, 0);
    }

    // String alternatives with pattern or format (and the string literals, taken out of lits): one automaton.
    // The alternatives must share their length bounds.
    int32_t string_automaton(const std::vector<const alt_ref*>& strings, std::vector<std::string>& lits,
                             const std::string& path) {
        std::vector<scalar_alt> alts;
        int64_t mn = 0, mx = -1;
        for (size_t i = 0; i < strings.size(); ++i) {
            const auto* a = strings[i];
            int64_t lo = 0, hi = -1;
            if (!get_int(*a->schema, "minLength", a->path, lo) || !get_int(*a->schema, "maxLength", a->path, hi))
                return -1;
            if (i > 0 && (lo != mn || hi != mx))
                return fail(errc::unsupported, path,
                            "anyOf of strings with a pattern or format and different "
                            "minLength/maxLength is not supported"),
                       -1;
            mn = lo, mx = hi;
            alts.push_back({a->schema, a->path, false});
        }
        std::vector<std::string> strs, others;
        for (const auto& l : lits) {
            json_value v;
            std::string e;
            if (l[0] == '"' && json_value::parse(l, v, e)) {
                strs.push_back(v.str);
                continue;
            }
            others.push_back(l);
        }
        raw_dfa d;
        if (status st = string_dfa(alts, strs, d); !st.ok()) return fail(st.code(), "", st.message()), -1;
        lits = std::move(others);
        const int64_t cap = g.opt_.max_string_chars;
        mx = mx < 0 ? cap : std::min(mx, cap);
        const int32_t n = add_dfa(d, true, static_cast<int32_t>(mn), static_cast<int32_t>(mx));
        const byte_dfa& bd = g.dfas_.back();
        if (bd.min_chars[size_t(bd.start)] > mx || bd.max_chars[size_t(bd.start)] < mn)
            return fail(errc::unsupported, path, "no string matching the pattern/format fits minLength/maxLength"), -1;
        return n;
    }

    // items (or a prefixItems tuple and items for the rest; draft 7: items as an array, additionalItems).
    int32_t compile_array(const json_value& s, const std::string& path, int32_t depth) {
        int64_t mn = 0, mx = -1;
        if (!get_int(s, "minItems", path, mn) || !get_int(s, "maxItems", path, mx)) return -1;
        const json_value* prefix = s.find("prefixItems");
        const json_value* rest = s.find("items");
        std::string rest_path = path + "/items";
        if (rest && rest->kind == json_value::k_array) {
            prefix = rest;
            rest = s.find("additionalItems");
            rest_path = path + "/additionalItems";
        }
        std::vector<int32_t> pre;
        int64_t limit = -1;  // most items the item schemas allow (a cut recursion, false); -1: no limit
        for (size_t i = 0; prefix && i < prefix->array.size() && limit < 0; ++i) {
            const int32_t n = compile(prefix->array[i], path + "/prefixItems/" + std::to_string(i), depth + 1);
            if (n == -1) return -1;
            if (n == k_never) limit = static_cast<int64_t>(i);
            if (n >= 0) pre.push_back(n);
        }
        int32_t item = -1;
        if (limit < 0) {
            item = rest ? compile(*rest, rest_path, depth + 1) : any_node(1);
            if (item == -1) return -1;
            if (item == k_never) item = -1, limit = static_cast<int64_t>(pre.size());
        }
        const int64_t cap = g.opt_.max_array_items;
        mx = mx < 0 ? std::max(cap, mn) : mx;
        if (limit >= 0) mx = std::min(mx, limit);
        if (mn > mx) {
            if (limit >= 0) return k_never;
            return fail(errc::invalid_argument, path, "minItems is above maxItems"), -1;
        }
        if (mx > 32000) mx = 32000;
        const int32_t id = add(node_kind::array, item, static_cast<int32_t>(mn), static_cast<int32_t>(mx));
        g.nodes_[static_cast<size_t>(id)].prefix = std::move(pre);
        return id;
    }

    int32_t compile_objects(const std::vector<const alt_ref*>& objs, int32_t depth) {
        for (const auto* o : objs) {
            if (!is_map(*o->schema)) continue;
            if (o->schema->find("required")) {
                fail(errc::unsupported, o->path, "'required' without 'properties' is not supported");
                return -1;
            }
            if (objs.size() == 1) return compile_map(*o->schema, o->path, depth);
            if (o->schema->find("additionalProperties") || o->schema->find("propertyNames") ||
                o->schema->find("minProperties") || o->schema->find("maxProperties"))
                return fail(errc::unsupported, o->path, "a constrained map beside other object alternatives"), -1;
            return any_map(depth);  // any object: accepts whatever the other alternatives would
        }
        if (objs.size() > 32) {
            fail(errc::unsupported, objs[0]->path, "more than 32 object alternatives");
            return -1;
        }
        grammar::obj_group grp;
        std::vector<std::vector<std::pair<const json_value*, std::string>>> per_key;  // [key][alt] (schema, path)
        const auto key_index = [&](const std::string& k) -> int32_t {
            for (size_t i = 0; i < grp.keys.size(); ++i)
                if (grp.keys[i] == k) return static_cast<int32_t>(i);
            grp.keys.push_back(k);
            per_key.emplace_back(objs.size(), std::pair<const json_value*, std::string>{nullptr, {}});
            return static_cast<int32_t>(grp.keys.size()) - 1;
        };
        for (size_t ai = 0; ai < objs.size(); ++ai) {
            const json_value& s = *objs[ai]->schema;
            grammar::obj_group::alt alt;
            int64_t mn = 0, mx = 64;
            if (!get_int(s, "minProperties", objs[ai]->path, mn) || !get_int(s, "maxProperties", objs[ai]->path, mx))
                return -1;
            alt.min_props = static_cast<int32_t>(std::min<int64_t>(mn, 65));
            alt.max_props = static_cast<int32_t>(std::min<int64_t>(mx, 64));
            static const json_value no_properties = [] {
                json_value v;
                v.kind = json_value::k_object;
                return v;
            }();
            const json_value* props = s.find("properties");
            for (const auto& [k, v] : (props ? props : &no_properties)->object) {
                const int32_t ki = key_index(k);
                if (ki >= 64) {
                    fail(errc::unsupported, objs[ai]->path, "more than 64 properties");
                    return -1;
                }
                alt.has |= uint64_t(1) << ki;
                per_key[static_cast<size_t>(ki)][ai] = {&v, objs[ai]->path + "/properties/" + k};
            }
            if (const json_value* req = s.find("required")) {
                for (const auto& r : req->array) {
                    int32_t ki = -1;
                    for (size_t i = 0; i < grp.keys.size(); ++i)
                        if (grp.keys[i] == r.str && (alt.has >> i & 1)) ki = static_cast<int32_t>(i);
                    if (ki < 0) {
                        fail(errc::invalid_argument, objs[ai]->path + "/required",
                             "required property '" + r.str + "' is not in 'properties'");
                        return -1;
                    }
                    alt.required |= uint64_t(1) << ki;
                }
            }
            grp.alts.push_back(alt);
        }
        std::vector<uint8_t> dead(objs.size(), 0);  // alternatives that require a key that accepts nothing
        // Values: one shared schema per key, or enum/const values that tell the alternatives apart.
        for (size_t ki = 0; ki < grp.keys.size(); ++ki) {
            const auto& col = per_key[ki];
            const json_value* first = nullptr;
            std::string first_path;
            bool same = true, all_lit = true;
            for (const auto& [sch, p] : col) {
                if (!sch) continue;
                if (!first) {
                    first = sch;
                    first_path = p;
                } else if (sch->dump() != first->dump()) {
                    same = false;
                }
                if (!is_literal_only(*sch)) all_lit = false;
            }
            grp.value_per_alt.emplace_back();
            if (same) {
                const int32_t v = compile(*first, first_path, depth + 1);
                if (v == -1) return -1;
                if (v == k_never)
                    for (size_t ai = 0; ai < col.size(); ++ai) drop_key(grp, ki, ai, dead);
                grp.value.push_back(v >= 0 ? v : -1);
                grp.accept.emplace_back();
                continue;
            }
            if (!all_lit) {
                std::vector<int32_t> per(col.size(), -1);
                std::vector<std::pair<std::string, int32_t>> done;  // schema text -> node
                for (size_t ai = 0; ai < col.size(); ++ai) {
                    if (!col[ai].first) continue;
                    const std::string text = col[ai].first->dump();
                    for (const auto& [t, n] : done)
                        if (t == text) per[ai] = n;
                    if (per[ai] == -1) {
                        per[ai] = compile(*col[ai].first, col[ai].second, depth + 1);
                        if (per[ai] == -1) return -1;
                        done.emplace_back(text, per[ai]);
                    }
                }
                for (size_t ai = 0; ai < col.size(); ++ai)
                    if (per[ai] == k_never) drop_key(grp, ki, ai, dead), per[ai] = -1;
                grp.value.push_back(-1);
                grp.value_per_alt.back() = std::move(per);
                grp.per_alt_keys |= uint64_t(1) << ki;
                grp.accept.emplace_back();
                continue;
            }
            std::vector<std::string> all;
            std::vector<std::vector<std::string>> each(col.size());
            for (size_t ai = 0; ai < col.size(); ++ai) {
                if (!col[ai].first) continue;
                literals_of(*col[ai].first, each[ai]);
                all.insert(all.end(), each[ai].begin(), each[ai].end());
            }
            std::sort(all.begin(), all.end());
            all.erase(std::unique(all.begin(), all.end()), all.end());
            if (all.size() > 64) {
                fail(errc::unsupported, first_path, "more than 64 enum values telling anyOf objects apart");
                return -1;
            }
            std::vector<uint64_t> acc(col.size(), 0);
            for (size_t ai = 0; ai < col.size(); ++ai)
                for (const auto& l : each[ai])
                    acc[ai] |= uint64_t(1) << (std::lower_bound(all.begin(), all.end(), l) - all.begin());
            grp.value.push_back(add(node_kind::literal, add_trie(all)));
            grp.accept.push_back(std::move(acc));
        }
        std::vector<std::string> enc;
        for (const auto& k : grp.keys) enc.push_back(encode_json_string(k));
        grp.key_trie = add_trie(enc);
        for (size_t ai = 0; ai < grp.alts.size(); ++ai) {
            const auto& a = grp.alts[ai];
            if (!dead[ai] && a.min_props <= std::min(a.max_props, __builtin_popcountll(a.has)) &&
                __builtin_popcountll(a.required) <= a.max_props)
                grp.init_live |= uint32_t(1) << ai;
        }
        if (grp.init_live == 0) return k_never;
        g.objects_.push_back(std::move(grp));
        return add(node_kind::object, static_cast<int32_t>(g.objects_.size()) - 1);
    }

    // A key whose value accepts nothing: left out of alternative ai, which dies if it requires the key.
    static void drop_key(grammar::obj_group& grp, size_t ki, size_t ai, std::vector<uint8_t>& dead) {
        const uint64_t bit = uint64_t(1) << ki;
        if (!(grp.alts[ai].has & bit)) return;
        grp.alts[ai].has &= ~bit;
        if (grp.alts[ai].required & bit) dead[ai] = 1;
    }

    // An object without properties is a map unless additionalProperties is false.
    static bool is_map(const json_value& s) {
        if (s.find("properties")) return false;
        const json_value* ap = s.find("additionalProperties");
        return !(ap && ap->kind == json_value::k_bool && !ap->boolean);
    }

    // additionalProperties (values), propertyNames (keys: a string schema), minProperties, maxProperties.
    int32_t compile_map(const json_value& s, const std::string& path, int32_t depth) {
        int64_t mn = 0, mx = g.opt_.max_any_items;
        if (!get_int(s, "minProperties", path, mn) || !get_int(s, "maxProperties", path, mx)) return -1;
        mx = std::min<int64_t>(std::max<int64_t>(mx < 0 ? g.opt_.max_any_items : mx, mn), 32000);
        if (mn > mx) return fail(errc::invalid_argument, path, "minProperties is above maxProperties"), -1;
        const json_value* ap = s.find("additionalProperties");
        int32_t value = ap ? compile(*ap, path + "/additionalProperties", depth + 1) : any_node(std::max(depth, 1));
        if (value == -1) return -1;
        if (value == k_never) {
            if (mn > 0) return k_never;
            value = any_node(std::max(depth, 1)), mx = 0;
        }
        int32_t key = -1;
        if (const json_value* pn = s.find("propertyNames")) {
            key = compile(*pn, path + "/propertyNames", depth + 1);
            if (key == -1) return -1;
            const auto kind = key >= 0 ? g.nodes_[static_cast<size_t>(key)].kind : node_kind::any_of;
            if (kind != node_kind::string &&
                !(kind == node_kind::dfa && g.dfas_[size_t(g.nodes_[size_t(key)].a)].quoted))
                return fail(errc::unsupported, path + "/propertyNames", "'propertyNames' must be a string schema"), -1;
        } else {
            if (free_string < 0) free_string = string_node(0, g.opt_.max_string_chars);
            key = free_string;
        }
        const int32_t id = add(node_kind::map, value, key, static_cast<int32_t>(mx));
        g.nodes_[static_cast<size_t>(id)].d = static_cast<int32_t>(mn);
        return id;
    }

    int32_t any_map(int32_t depth) {
        if (free_string < 0) free_string = string_node(0, g.opt_.max_string_chars);
        return add(node_kind::map, any_node(std::max(depth, 1)), free_string, g.opt_.max_any_items);
    }
};

result<std::shared_ptr<const grammar>> grammar::from_json_schema(std::string_view schema_json,
                                                                 const grammar_options& options) {
    json_value doc;
    std::string perr;
    if (!json_value::parse(schema_json, doc, perr))
        return make_error(errc::invalid_argument, "JSON schema is not valid JSON: " + perr);
    grammar_options o = options;
    o.max_string_chars = std::clamp(o.max_string_chars, 0, 32000);
    o.max_array_items = std::clamp(o.max_array_items, 0, 32000);
    o.max_any_items = std::clamp(o.max_any_items, 0, 32000);
    o.max_any_depth = std::clamp(o.max_any_depth, 0, grammar_state::k_max_depth - 2);
    o.max_int_digits = std::clamp(o.max_int_digits, 1, 250);
    o.max_frac_digits = std::clamp(o.max_frac_digits, 1, 250);
    o.max_exp_digits = std::clamp(o.max_exp_digits, 1, 250);
    std::shared_ptr<grammar> g(new grammar());
    g->opt_ = o;
    json_value norm;
    if (status st = normalize_schema(doc, std::clamp(o.max_recursion, 0, 64), norm); !st.ok()) return st;
    grammar_builder b{*g, {}, {}, -1};
    const int32_t root = b.compile(norm, "#", 0);
    if (root == grammar_builder::k_never)
        return make_error(errc::unsupported, "#: the schema accepts nothing (or its recursion does not end within " +
                                                 std::to_string(o.max_recursion) + " levels)");
    if (root < 0) return b.err.ok() ? make_error(errc::internal, "grammar compilation failed") : b.err;
    g->root_ = root;
    if (o.max_leading_whitespace > 0) g->root_ = b.add(node_kind::lead, root, std::min(o.max_leading_whitespace, 1000));
    return std::shared_ptr<const grammar>(std::move(g));
}
}  // namespace mnemos::engine

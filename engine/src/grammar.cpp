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

#include "engine/src/grammar_json.h"
#include "engine/tokenizer.h"

namespace mnemos::engine {

enum class node_kind : uint8_t { string, number, literal, array, object, map, any_of, lead };

struct grammar::node {
    node_kind kind = node_kind::string;
    int32_t a = 0, b = 0, c = 0;
    std::vector<int32_t> dispatch;  // any_of: [256]
};

struct grammar::trie {
    struct tnode {
        std::vector<std::pair<uint8_t, int32_t>> next;
        int32_t terminal = -1;  // literal index ending here
        uint64_t keys = 0;      // literals (< 64) in this subtree
    };
    std::vector<tnode> nodes;  // [0] root
    std::vector<std::string> literals;

    int32_t child(int32_t n, uint8_t b) const {
        for (const auto& [c, i] : nodes[static_cast<size_t>(n)].next)
            if (c == b) return i;
        return -1;
    }
};

struct grammar::obj_group {
    struct alt {
        uint64_t has = 0;       // keys it declares
        uint64_t required = 0;  // keys it requires
    };
    std::vector<std::string> keys;
    int32_t key_trie = 0;
    std::vector<alt> alts;
    std::vector<int32_t> value;  // [key] value node, shared by the alternatives; -1: see value_per_alt
    // [key][alt] value node when the alternatives' schemas for a key differ (not by enum/const only): the key
    // is allowed only once the live alternatives agree on it (an earlier discriminating key decided).
    std::vector<std::vector<int32_t>> value_per_alt;
    uint64_t per_alt_keys = 0;  // keys with value_per_alt
    // [key][alt]: which literals (bit per literal, at most 64) of a discriminating key's union-literal value
    // each alternative accepts; empty when the alternatives share the key's schema.
    std::vector<std::vector<uint64_t>> accept;
};

grammar::grammar() = default;
grammar::~grammar() = default;

// ---------------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------------

namespace {

const char* const k_ignored[] = {"description", "title", "default", "examples", "format", "$schema", "$id", "$comment"};
const char* const k_known[] = {"type",      "properties", "required", "additionalProperties",
                               "items",     "minItems",   "maxItems", "maxLength",
                               "minLength", "enum",       "const",    "anyOf"};

bool is_ignored(const std::string& k) {
    for (const char* x : k_ignored)
        if (k == x) return true;
    return false;
}
bool is_known(const std::string& k) {
    for (const char* x : k_known)
        if (k == x) return true;
    return is_ignored(k);
}

}  // namespace

struct grammar_builder {
    grammar& g;
    status err;
    std::map<int32_t, int32_t> any_by_depth;
    int32_t free_string = -1;

    bool fail(errc c, const std::string& path, const std::string& what) {
        if (err.ok()) err = make_error(c, (path.empty() ? std::string("#") : path) + ": " + what);
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
        if (s.kind == json_value::k_bool) {
            if (!s.boolean) return fail(errc::unsupported, path, "the schema 'false' accepts nothing");
            return true;
        }
        if (s.kind != json_value::k_object) return fail(errc::invalid_argument, path, "a schema must be an object");
        for (const auto& [k, v] : s.object) {
            if (!is_known(k)) return fail(errc::unsupported, path, "keyword '" + k + "' is not supported");
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
            if (k == "additionalProperties" && !(v.kind == json_value::k_bool && !v.boolean))
                return fail(errc::unsupported, path,
                            "keyword 'additionalProperties' other than false is not supported");
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
            out.push_back({&s, "any", path});
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
        } else if (s.find("properties") || s.find("required")) {
            out.push_back({&s, "object", path});
        } else if (s.find("items") || s.find("minItems") || s.find("maxItems")) {
            out.push_back({&s, "array", path});
        } else if (s.find("maxLength") || s.find("minLength")) {
            out.push_back({&s, "string", path});
        } else {
            out.push_back({&s, "any", path});
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

        std::vector<const alt_ref*> objects, arrays, strings, numbers;
        std::vector<std::string> lits;
        bool integer_only = true;
        for (const auto& a : alts) {
            if (a.type == "object")
                objects.push_back(&a);
            else if (a.type == "array")
                arrays.push_back(&a);
            else if (a.type == "string")
                strings.push_back(&a);
            else if (a.type == "number" || a.type == "integer") {
                numbers.push_back(&a);
                if (a.type == "number") integer_only = false;
            } else if (a.type == "boolean") {
                lits.push_back("true");
                lits.push_back("false");
            } else if (a.type == "null") {
                lits.push_back("null");
            } else if (a.type == "literal") {
                literals_of(*a.schema, lits);
            }
        }
        std::sort(lits.begin(), lits.end());
        lits.erase(std::unique(lits.begin(), lits.end()), lits.end());

        std::vector<int32_t> d(256, -1);
        std::vector<int32_t> targets;
        const auto set_targets = [&](const std::string& bytes, int32_t n) {
            for (char c : bytes) d[static_cast<unsigned char>(c)] = n;
            targets.push_back(n);
        };
        const std::string number_starts = "-0123456789";

        if (!objects.empty()) {
            const int32_t n = compile_objects(objects, depth);
            if (n < 0) return -1;
            set_targets("{", n);
        }
        if (!arrays.empty()) {
            for (size_t i = 1; i < arrays.size(); ++i)
                if (arrays[i]->schema->dump() != arrays[0]->schema->dump()) {
                    fail(errc::unsupported, path, "anyOf with several different array schemas is not supported");
                    return -1;
                }
            const int32_t n = compile_array(*arrays[0]->schema, arrays[0]->path, depth);
            if (n < 0) return -1;
            set_targets("[", n);
        }
        // Literals not covered by a free string or number alternative.
        std::vector<std::string> rest;
        int64_t str_max = -1, str_min = -1;
        bool str_unbounded = false;
        for (const auto* a : strings) {
            int64_t mx = -1, mn = 0;
            if (!get_int(*a->schema, "maxLength", a->path, mx) || !get_int(*a->schema, "minLength", a->path, mn))
                return -1;
            if (mx < 0) str_unbounded = true;
            str_max = std::max(str_max, mx);
            str_min = str_min < 0 ? mn : std::min(str_min, mn);
        }
        const int64_t cap = g.opt_.max_string_chars;
        for (const auto& l : lits) {
            const bool is_str = !l.empty() && l[0] == '"';
            const bool is_num = !l.empty() && number_starts.find(l[0]) != std::string::npos;
            if (is_str && !strings.empty()) {
                if (strings.size() > 1 || str_min > 0 || (!str_unbounded && str_max < static_cast<int64_t>(l.size()))) {
                    fail(errc::unsupported, path, "anyOf mixing a bounded string with a string enum is not supported");
                    return -1;
                }
                continue;  // the free string accepts it
            }
            if (is_num && !numbers.empty()) {
                if (integer_only && l.find_first_of(".eE") != std::string::npos) {
                    fail(errc::unsupported, path, "anyOf mixing integer with a non-integer enum is not supported");
                    return -1;
                }
                continue;
            }
            rest.push_back(l);
        }
        if (!strings.empty()) {
            if (strings.size() > 1 && str_min > 0) {
                fail(errc::unsupported, path, "anyOf of several strings with minLength is not supported");
                return -1;
            }
            const int64_t mx = str_unbounded ? cap : std::min(str_max, cap);
            if (str_min > mx) {
                fail(errc::invalid_argument, path, "minLength is above maxLength");
                return -1;
            }
            set_targets("\"", string_node(static_cast<int32_t>(str_min), static_cast<int32_t>(mx)));
        }
        if (!numbers.empty()) set_targets(number_starts, add(node_kind::number, integer_only ? 1 : 0));
        if (!rest.empty()) {
            const int32_t n = add(node_kind::literal, add_trie(rest));
            targets.push_back(n);
            for (const auto& l : rest) {
                const auto c = static_cast<unsigned char>(l[0]);
                if (d[c] >= 0 && d[c] != n) {
                    fail(errc::internal, path, "literal overlaps another alternative");
                    return -1;
                }
                d[c] = n;
            }
        }
        if (targets.empty()) {
            fail(errc::unsupported, path, "the schema accepts nothing");
            return -1;
        }
        if (targets.size() == 1) return targets[0];
        const int32_t id = add(node_kind::any_of);
        g.nodes_[static_cast<size_t>(id)].dispatch = std::move(d);
        return id;
    }

    int32_t compile_array(const json_value& s, const std::string& path, int32_t depth) {
        int64_t mn = 0, mx = -1;
        if (!get_int(s, "minItems", path, mn) || !get_int(s, "maxItems", path, mx)) return -1;
        const int64_t cap = g.opt_.max_array_items;
        mx = mx < 0 ? std::max(cap, mn) : mx;
        if (mn > mx) {
            fail(errc::invalid_argument, path, "minItems is above maxItems");
            return -1;
        }
        if (mx > 32000) mx = 32000;
        const json_value* items = s.find("items");
        int32_t item;
        if (items) {
            if (items->kind == json_value::k_array) {
                fail(errc::unsupported, path + "/items", "tuple 'items' (an array of schemas) is not supported");
                return -1;
            }
            item = compile(*items, path + "/items", depth + 1);
        } else {
            item = any_node(1);
        }
        if (item < 0) return -1;
        return add(node_kind::array, item, static_cast<int32_t>(mn), static_cast<int32_t>(mx));
    }

    int32_t compile_objects(const std::vector<const alt_ref*>& objs, int32_t depth) {
        for (const auto* o : objs) {
            if (o->schema->find("properties")) continue;
            if (o->schema->find("required")) {
                fail(errc::unsupported, o->path, "'required' without 'properties' is not supported");
                return -1;
            }
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
            for (const auto& [k, v] : s.find("properties")->object) {
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
                if (v < 0) return -1;
                grp.value.push_back(v);
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
                    if (per[ai] < 0) {
                        per[ai] = compile(*col[ai].first, col[ai].second, depth + 1);
                        if (per[ai] < 0) return -1;
                        done.emplace_back(text, per[ai]);
                    }
                }
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
        g.objects_.push_back(std::move(grp));
        return add(node_kind::object, static_cast<int32_t>(g.objects_.size()) - 1);
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
    grammar_builder b{*g, {}, {}, -1};
    const int32_t root = b.compile(doc, "#", 0);
    if (root < 0) return b.err.ok() ? make_error(errc::internal, "grammar compilation failed") : b.err;
    g->root_ = root;
    if (o.max_leading_whitespace > 0) g->root_ = b.add(node_kind::lead, root, std::min(o.max_leading_whitespace, 1000));
    return std::shared_ptr<const grammar>(std::move(g));
}

// ---------------------------------------------------------------------------------------------------
// The automaton
// ---------------------------------------------------------------------------------------------------

grammar_state grammar::start() const {
    grammar_state s;
    s.g_ = this;
    s.depth_ = 1;
    s.f_[0] = grammar_frame{};
    s.f_[0].node = root_;
    return s;
}

grammar_state& grammar_state::operator=(const grammar_state& o) {
    g_ = o.g_;
    depth_ = o.depth_;
    std::memcpy(f_.data(), o.f_.data(), sizeof(grammar_frame) * static_cast<size_t>(depth_));
    return *this;
}

struct grammar_ops {
    enum res { accepted, rejected, retry };

    static bool push(grammar_state& st, int32_t node) {
        if (st.depth_ >= grammar_state::k_max_depth) return false;
        st.f_[static_cast<size_t>(st.depth_)] = grammar_frame{};
        st.f_[static_cast<size_t>(st.depth_)].node = node;
        st.depth_++;
        return true;
    }

    // Pops the top frame; `lit` is the literal it matched (or -1), for an object's discriminator.
    static void pop(grammar_state& st, int32_t lit) {
        st.depth_--;
        if (st.depth_ == 0 || lit < 0) return;
        grammar_frame& p = st.f_[static_cast<size_t>(st.depth_ - 1)];
        const grammar::node& pn = st.g_->nodes_[static_cast<size_t>(p.node)];
        if (pn.kind != node_kind::object || p.key < 0) return;
        const auto& grp = st.g_->objects_[static_cast<size_t>(pn.a)];
        const auto& acc = grp.accept[static_cast<size_t>(p.key)];
        if (acc.empty()) return;
        for (size_t ai = 0; ai < acc.size(); ++ai)
            if (!(acc[ai] >> lit & 1)) p.live &= ~(uint32_t(1) << ai);
    }

    // Literals a literal frame may still produce: all, unless it is the value of a key that tells object
    // alternatives apart, where only the live alternatives' literals are allowed.
    static uint64_t allowed_literals(const grammar_state& st) {
        if (st.depth_ < 2) return ~uint64_t(0);
        const grammar_frame& p = st.f_[static_cast<size_t>(st.depth_ - 2)];
        const grammar::node& pn = st.g_->nodes_[static_cast<size_t>(p.node)];
        if (pn.kind != node_kind::object || p.key < 0) return ~uint64_t(0);
        const auto& acc = st.g_->objects_[static_cast<size_t>(pn.a)].accept[static_cast<size_t>(p.key)];
        if (acc.empty()) return ~uint64_t(0);
        uint64_t m = 0;
        for (size_t ai = 0; ai < acc.size(); ++ai)
            if (p.live >> ai & 1) m |= acc[ai];
        return m;
    }

    // The value node of key k for the live alternatives; -1 when they do not agree yet.
    static int32_t value_node(const grammar::obj_group& grp, const grammar_frame& f, int32_t k) {
        const auto& per = grp.value_per_alt[static_cast<size_t>(k)];
        if (per.empty()) return grp.value[static_cast<size_t>(k)];
        int32_t n = -1;
        for (size_t ai = 0; ai < grp.alts.size(); ++ai) {
            if (!(f.live >> ai & 1) || per[ai] < 0) continue;
            if (n >= 0 && per[ai] != n) return -1;
            n = per[ai];
        }
        return n;
    }

    static uint64_t allowed_keys(const grammar::obj_group& grp, const grammar_frame& f) {
        uint64_t m = 0;
        for (size_t ai = 0; ai < grp.alts.size(); ++ai)
            if (f.live >> ai & 1) m |= grp.alts[ai].has;
        m &= ~f.seen;
        uint64_t agreed = m;
        for (uint64_t amb = m & grp.per_alt_keys; amb; amb &= amb - 1) {
            const int32_t k = __builtin_ctzll(amb);
            if (value_node(grp, f, k) < 0) agreed &= ~(uint64_t(1) << k);
        }
        // Undecided keys wait for a key that decides, unless there is none: then they are allowed and the
        // first live alternative's schema is taken (see push_value).
        return (agreed != 0 || closable(grp, f)) ? agreed : m;
    }

    // Pushes the value of the current key; where the live alternatives disagree on its schema, keeps only
    // those that agree with the first one.
    static bool push_value(grammar_state& st, grammar_frame& f, const grammar::obj_group& grp) {
        int32_t n = value_node(grp, f, f.key);
        if (n < 0) {
            const auto& per = grp.value_per_alt[static_cast<size_t>(f.key)];
            for (size_t ai = 0; ai < grp.alts.size() && n < 0; ++ai)
                if ((f.live >> ai & 1) && per[ai] >= 0) n = per[ai];
            for (size_t ai = 0; ai < grp.alts.size(); ++ai)
                if (per[ai] != n) f.live &= ~(uint32_t(1) << ai);
        }
        return push(st, n);
    }
    static bool closable(const grammar::obj_group& grp, const grammar_frame& f) {
        for (size_t ai = 0; ai < grp.alts.size(); ++ai)
            if ((f.live >> ai & 1) && (grp.alts[ai].required & ~f.seen) == 0) return true;
        return false;
    }

    static bool is_hex(uint8_t b) { return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F'); }

    static res string_step(grammar_state& st, grammar_frame& f, const grammar::node& n, uint8_t b) {
        if (f.phase == 0) {
            if (b != '"') return rejected;
            f.phase = 1;
            return accepted;
        }
        switch (f.sub) {
            case 0:
                if (b == '"') {
                    if (f.count < n.a) return rejected;
                    pop(st, -1);
                    return accepted;
                }
                if (b < 0x20 || f.count >= n.b) return rejected;
                if (b == '\\') {
                    f.sub = 1;
                } else if (b >= 0x80) {
                    uint8_t need, lo = 0x80, hi = 0xBF;
                    if (b >= 0xC2 && b <= 0xDF)
                        need = 1;
                    else if (b == 0xE0)
                        need = 2, lo = 0xA0;
                    else if (b == 0xED)
                        need = 2, hi = 0x9F;
                    else if (b >= 0xE1 && b <= 0xEF)
                        need = 2;
                    else if (b == 0xF0)
                        need = 3, lo = 0x90;
                    else if (b >= 0xF1 && b <= 0xF3)
                        need = 3;
                    else if (b == 0xF4)
                        need = 3, hi = 0x8F;
                    else
                        return rejected;
                    f.sub = static_cast<uint8_t>(20 + need);
                    f.lo = lo;
                    f.hi = hi;
                }
                f.count++;
                return accepted;
            case 1:
                if (b == 'u') {
                    f.sub = 10;
                    return accepted;
                }
                if (b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' || b == 'r' || b == 't') {
                    f.sub = 0;
                    return accepted;
                }
                return rejected;
            case 10:
                if (!is_hex(b)) return rejected;
                f.lo = (b == 'd' || b == 'D') ? 1 : 0;  // a surrogate is next unless the digit is 0-7
                f.sub = 11;
                return accepted;
            case 11:
                if (!is_hex(b)) return rejected;
                if (f.lo == 1 && !(b >= '0' && b <= '7')) return rejected;
                f.sub = 12;
                return accepted;
            case 12:
                if (!is_hex(b)) return rejected;
                f.sub = 13;
                return accepted;
            case 13:
                if (!is_hex(b)) return rejected;
                f.sub = 0;
                return accepted;
            default:  // 21..23: UTF-8 continuation bytes left
                if (b < f.lo || b > f.hi) return rejected;
                f.lo = 0x80;
                f.hi = 0xBF;
                f.sub = static_cast<uint8_t>(f.sub - 1);
                if (f.sub == 20) f.sub = 0;
                return accepted;
        }
    }

    static bool number_accepting(uint8_t phase) { return phase == 2 || phase == 3 || phase == 5 || phase == 8; }

    static res number_step(grammar_state& st, grammar_frame& f, const grammar::node& n, uint8_t b) {
        const grammar_options& o = st.g_->opt_;
        const bool digit = b >= '0' && b <= '9';
        const bool integer = n.a != 0;
        const auto end = [&]() {
            if (!number_accepting(f.phase)) return rejected;
            pop(st, -1);
            return retry;
        };
        switch (f.phase) {
            case 0:
                if (b == '-') return f.phase = 1, accepted;
                [[fallthrough]];
            case 1:
                if (b == '0') return f.phase = 3, accepted;
                if (digit) return f.phase = 2, f.sub = 1, accepted;
                return rejected;
            case 2:
                if (digit) {
                    if (f.sub >= o.max_int_digits) return rejected;
                    f.sub++;
                    return accepted;
                }
                [[fallthrough]];
            case 3:
                if (!integer && b == '.') return f.phase = 4, f.sub = 0, accepted;
                if (!integer && (b == 'e' || b == 'E')) return f.phase = 6, f.sub = 0, accepted;
                return end();
            case 4:
                if (digit) return f.phase = 5, f.sub = 1, accepted;
                return rejected;
            case 5:
                if (digit) {
                    if (f.sub >= o.max_frac_digits) return rejected;
                    f.sub++;
                    return accepted;
                }
                if (b == 'e' || b == 'E') return f.phase = 6, f.sub = 0, accepted;
                return end();
            case 6:
                if (b == '+' || b == '-') return f.phase = 7, accepted;
                [[fallthrough]];
            case 7:
                if (digit) return f.phase = 8, f.sub = 1, accepted;
                return rejected;
            case 8:
                if (digit) {
                    if (f.sub >= o.max_exp_digits) return rejected;
                    f.sub++;
                    return accepted;
                }
                return end();
        }
        return rejected;
    }

    static res literal_step(grammar_state& st, grammar_frame& f, const grammar::node& n, uint8_t b) {
        const grammar::trie& t = st.g_->tries_[static_cast<size_t>(n.a)];
        const int32_t c = t.child(f.pos, b);
        if (c < 0) {
            const int32_t term = t.nodes[static_cast<size_t>(f.pos)].terminal;
            if (term < 0 || (term < 64 && !(allowed_literals(st) >> term & 1))) return rejected;
            pop(st, term);
            return retry;
        }
        if (t.literals.size() <= 64 && (t.nodes[static_cast<size_t>(c)].keys & allowed_literals(st)) == 0)
            return rejected;
        f.pos = c;
        const auto& cn = t.nodes[static_cast<size_t>(c)];
        if (cn.terminal >= 0 && cn.next.empty()) pop(st, cn.terminal);
        return accepted;
    }

    static res array_step(grammar_state& st, grammar_frame& f, const grammar::node& n, uint8_t b) {
        switch (f.phase) {
            case 0:
                if (b != '[') return rejected;
                f.phase = 1;
                return accepted;
            case 1:
                if (b == ']') {
                    if (n.b > 0) return rejected;
                    pop(st, -1);
                    return accepted;
                }
                break;
            case 2:
                if (b == ',' && f.count < n.c) return f.phase = 3, accepted;
                if (b == ']' && f.count >= n.b) {
                    pop(st, -1);
                    return accepted;
                }
                return rejected;
            case 3:
                if (b == ' ') return f.phase = 4, accepted;
                break;
            default:
                break;
        }
        if (f.count >= n.c) return rejected;
        f.count++;
        f.phase = 2;
        return push(st, n.a) ? retry : rejected;
    }

    static res object_step(grammar_state& st, grammar_frame& f, const grammar::node& n, uint8_t b) {
        const grammar::obj_group& grp = st.g_->objects_[static_cast<size_t>(n.a)];
        switch (f.phase) {
            case 0:
                if (b != '{') return rejected;
                f.phase = 1;
                f.live = grp.alts.size() >= 32 ? ~uint32_t(0) : (uint32_t(1) << grp.alts.size()) - 1;
                f.seen = 0;
                f.key = -1;
                return accepted;
            case 1:  // after '{'
            case 5:  // after ','
                if (b == '}' && f.phase == 1 && closable(grp, f)) {
                    pop(st, -1);
                    return accepted;
                }
                if (b == ' ' && f.phase == 5 && f.sub == 0) return f.sub = 1, accepted;
                if (b != '"') return rejected;
                f.phase = 2;
                f.pos = 0;
                [[fallthrough]];
            case 2: {  // in a key
                const grammar::trie& t = st.g_->tries_[static_cast<size_t>(grp.key_trie)];
                const int32_t c = t.child(f.pos, b);
                if (c < 0 || (t.nodes[static_cast<size_t>(c)].keys & allowed_keys(grp, f)) == 0) return rejected;
                f.pos = c;
                const int32_t term = t.nodes[static_cast<size_t>(c)].terminal;
                if (term >= 0) {
                    f.key = static_cast<int16_t>(term);
                    f.seen |= uint64_t(1) << term;
                    for (size_t ai = 0; ai < grp.alts.size(); ++ai)
                        if (!(grp.alts[ai].has >> term & 1)) f.live &= ~(uint32_t(1) << ai);
                    f.phase = 3;
                }
                return accepted;
            }
            case 3:
                if (b != ':') return rejected;
                f.phase = 4;
                f.sub = 0;
                return accepted;
            case 4:
                if (b == ' ' && f.sub == 0) return f.sub = 1, accepted;
                f.phase = 6;
                return push_value(st, f, grp) ? retry : rejected;
            case 6:
                if (b == ',' && allowed_keys(grp, f) != 0) {
                    f.phase = 5;
                    f.sub = 0;
                    f.key = -1;
                    return accepted;
                }
                if (b == '}' && closable(grp, f)) {
                    pop(st, -1);
                    return accepted;
                }
                return rejected;
        }
        return rejected;
    }

    static res map_step(grammar_state& st, grammar_frame& f, const grammar::node& n, uint8_t b) {
        switch (f.phase) {
            case 0:
                if (b != '{') return rejected;
                f.phase = 1;
                return accepted;
            case 1:
            case 5:
                if (b == '}' && f.phase == 1) {
                    pop(st, -1);
                    return accepted;
                }
                if (b == ' ' && f.phase == 5 && f.sub == 0) return f.sub = 1, accepted;
                if (b != '"' || f.count >= n.c) return rejected;
                f.count++;
                f.phase = 3;
                return push(st, n.b) ? retry : rejected;
            case 3:
                if (b != ':') return rejected;
                f.phase = 4;
                f.sub = 0;
                return accepted;
            case 4:
                if (b == ' ' && f.sub == 0) return f.sub = 1, accepted;
                f.phase = 6;
                return push(st, n.a) ? retry : rejected;
            case 6:
                if (b == ',' && f.count < n.c) return f.phase = 5, f.sub = 0, accepted;
                if (b == '}') {
                    pop(st, -1);
                    return accepted;
                }
                return rejected;
        }
        return rejected;
    }

    static res step(grammar_state& st, uint8_t b) {
        grammar_frame& f = st.f_[static_cast<size_t>(st.depth_ - 1)];
        const grammar::node& n = st.g_->nodes_[static_cast<size_t>(f.node)];
        switch (n.kind) {
            case node_kind::string:
                return string_step(st, f, n, b);
            case node_kind::number:
                return number_step(st, f, n, b);
            case node_kind::literal:
                return literal_step(st, f, n, b);
            case node_kind::array:
                return array_step(st, f, n, b);
            case node_kind::object:
                return object_step(st, f, n, b);
            case node_kind::map:
                return map_step(st, f, n, b);
            case node_kind::lead:
                if ((b == ' ' || b == '\n') && f.count < n.b) {
                    f.count++;
                    return accepted;
                }
                f = grammar_frame{};
                f.node = n.a;
                return retry;
            case node_kind::any_of: {
                const int32_t t = n.dispatch[b];
                if (t < 0) return rejected;
                f = grammar_frame{};
                f.node = t;
                return retry;
            }
        }
        return rejected;
    }

    // The top frame can end without another byte (a number or literal at an end).
    static bool can_end(const grammar_state& st) {
        const grammar_frame& f = st.f_[static_cast<size_t>(st.depth_ - 1)];
        const grammar::node& n = st.g_->nodes_[static_cast<size_t>(f.node)];
        if (n.kind == node_kind::number) return number_accepting(f.phase);
        if (n.kind == node_kind::literal)
            return st.g_->tries_[static_cast<size_t>(n.a)].nodes[static_cast<size_t>(f.pos)].terminal >= 0;
        return false;
    }
};

bool grammar_state::accept_byte(uint8_t b) {
    if (!g_) return false;
    for (;;) {
        if (depth_ == 0) {
            g_ = nullptr;
            return false;
        }
        switch (grammar_ops::step(*this, b)) {
            case grammar_ops::accepted:
                return true;
            case grammar_ops::rejected:
                g_ = nullptr;
                return false;
            case grammar_ops::retry:
                break;
        }
    }
}

bool grammar_state::accept_bytes(std::string_view bytes) {
    for (char c : bytes)
        if (!accept_byte(static_cast<uint8_t>(c))) return false;
    return g_ != nullptr;
}

int32_t grammar_state::string_room() const {
    if (!g_ || depth_ == 0) return -1;
    const grammar_frame& f = f_[static_cast<size_t>(depth_ - 1)];
    const grammar::node& n = g_->nodes_[static_cast<size_t>(f.node)];
    if (n.kind != node_kind::string || f.phase != 1 || f.sub != 0) return -1;
    return n.b - f.count;
}

bool grammar_state::is_complete() const {
    if (!g_) return false;
    if (depth_ == 0) return true;
    return depth_ == 1 && grammar_ops::can_end(*this);
}

bool grammar_state::can_continue() const {
    if (!g_ || depth_ == 0) return false;
    for (int b = 0; b < 256; ++b) {
        grammar_state s = *this;
        if (s.accept_byte(static_cast<uint8_t>(b))) return true;
    }
    return false;
}

// ---------------------------------------------------------------------------------------------------
// Token masks
// ---------------------------------------------------------------------------------------------------

namespace {

// Preorder trie over ids sorted by their pieces.
template <class Node>
void build_trie(const std::vector<std::string>& pieces, std::vector<token_id> ids, std::vector<Node>& nodes,
                std::vector<token_id>& toks, size_t& max_len) {
    std::sort(ids.begin(), ids.end(),
              [&](token_id a, token_id b) { return pieces[static_cast<size_t>(a)] < pieces[static_cast<size_t>(b)]; });
    toks.reserve(ids.size());
    // ids[lo, hi) share their first `d` bytes.
    const auto build = [&](auto&& self, size_t lo, size_t hi, size_t d) -> void {
        size_t i = lo;
        while (i < hi && pieces[static_cast<size_t>(ids[i])].size() == d) ++i;  // end at the parent
        while (i < hi) {
            const uint8_t c = static_cast<uint8_t>(pieces[static_cast<size_t>(ids[i])][d]);
            size_t j = i;
            while (j < hi && static_cast<uint8_t>(pieces[static_cast<size_t>(ids[j])][d]) == c) ++j;
            const size_t idx = nodes.size();
            nodes.push_back({0, static_cast<uint32_t>(toks.size()), 0, static_cast<uint16_t>(d + 1), c});
            size_t k = i;
            while (k < j && pieces[static_cast<size_t>(ids[k])].size() == d + 1) toks.push_back(ids[k++]);
            nodes[idx].tok_end = static_cast<uint32_t>(toks.size());
            max_len = std::max(max_len, d + 1);
            self(self, i, j, d + 1);
            nodes[idx].skip = static_cast<uint32_t>(nodes.size());
            i = j;
        }
    };
    build(build, 0, ids.size(), 0);
}

}  // namespace

token_mask_builder::token_mask_builder(const tokenizer& tok) : n_vocab_(tok.n_vocab()) {
    pieces_.resize(static_cast<size_t>(n_vocab_));
    std::vector<token_id> ids;
    for (token_id i = 0; i < n_vocab_; ++i) {
        if (tok.is_eog(i)) {
            eog_.push_back(i);
            continue;
        }
        pieces_[static_cast<size_t>(i)] = tok.token_to_piece(i, /*render_special=*/false);
        if (!pieces_[static_cast<size_t>(i)].empty()) ids.push_back(i);
    }
    size_t max_len = 0;
    build_trie(pieces_, ids, nodes_, toks_, max_len);

    // Plain string text, classified by the string automaton itself.
    grammar_options o;
    o.max_string_chars = 32000;
    auto sg = grammar::from_json_schema(R"({"type":"string"})", o);
    const size_t words = (static_cast<size_t>(n_vocab_) + 63) / 64;
    plain_upto_.assign(k_max_plain_chars + 1, std::vector<uint64_t>(words, 0));
    std::vector<token_id> rest;
    grammar_state open = (*sg)->start();
    open.accept_byte('"');
    const int32_t room0 = open.string_room();
    for (token_id id : ids) {
        grammar_state s = open;
        const int32_t room = s.accept_bytes(pieces_[static_cast<size_t>(id)]) ? s.string_room() : -1;
        const int32_t n_chars = room >= 0 ? room0 - room : -1;
        if (n_chars < 1 || n_chars > k_max_plain_chars) {
            rest.push_back(id);
            continue;
        }
        for (int32_t k = n_chars; k <= k_max_plain_chars; ++k)
            plain_upto_[static_cast<size_t>(k)][static_cast<size_t>(id) / 64] |= uint64_t(1) << (id % 64);
    }
    build_trie(pieces_, rest, rest_nodes_, rest_toks_, max_len);
    scratch_.resize(max_len + 1);
}

void token_mask_builder::walk(const std::vector<trie_node>& nodes, const std::vector<token_id>& toks,
                              std::vector<uint64_t>& mask) {
    const size_t n = nodes.size();
    size_t i = 0;
    while (i < n) {
        const trie_node& tn = nodes[i];
        grammar_state& s = scratch_[tn.depth];
        s = scratch_[tn.depth - 1];
        if (!s.accept_byte(tn.byte)) {
            i = tn.skip;
            continue;
        }
        for (uint32_t k = tn.tok_begin; k < tn.tok_end; ++k) {
            const token_id t = toks[k];
            mask[static_cast<size_t>(t) / 64] |= uint64_t(1) << (t % 64);
        }
        ++i;
    }
}

void token_mask_builder::fill(const grammar_state& state, std::vector<uint64_t>& mask) {
    mask.assign((static_cast<size_t>(n_vocab_) + 63) / 64, 0);
    if (!state.ok()) return;
    if (state.is_complete())
        for (token_id t : eog_) mask[static_cast<size_t>(t) / 64] |= uint64_t(1) << (t % 64);
    if (!state.can_continue()) return;
    scratch_[0] = state;
    const int32_t room = state.string_room();
    if (room < 0) return walk(nodes_, toks_, mask);
    const auto& plain = plain_upto_[static_cast<size_t>(std::min(room, k_max_plain_chars))];
    for (size_t w = 0; w < mask.size(); ++w) mask[w] |= plain[w];
    walk(rest_nodes_, rest_toks_, mask);
}

}  // namespace mnemos::engine

// Pattern -> NFA (Thompson) -> DFA, with anchors, search semantics and leading lookaheads.
// See grammar_regex.h.
#include "engine/src/grammar_regex.h"

#include "engine/src/grammar_regex_ast.h"

namespace mnemos::engine {

namespace {

constexpr size_t k_max_nfa_states = 200000;

using byte_ranges = std::vector<std::pair<uint8_t, uint8_t>>;

int utf8_len(uint32_t c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }

std::string utf8(uint32_t c) {
    std::string o;
    if (c < 0x80) {
        o += static_cast<char>(c);
    } else if (c < 0x800) {
        o += static_cast<char>(0xC0 | (c >> 6));
        o += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        o += static_cast<char>(0xE0 | (c >> 12));
        o += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        o += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        o += static_cast<char>(0xF0 | (c >> 18));
        o += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        o += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        o += static_cast<char>(0x80 | (c & 0x3F));
    }
    return o;
}

// The UTF-8 byte-range sequences of the scalar values [lo, hi] (lo >= 0x80), split so that each sequence
// is a product of byte ranges.
void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<byte_ranges>& out) {
    std::vector<std::pair<uint32_t, uint32_t>> stack = {{lo, hi}};
    while (!stack.empty()) {
        auto [s, e] = stack.back();
        stack.pop_back();
        bool split = false;
        for (uint32_t edge : {0x7Fu, 0x7FFu, 0xFFFFu})
            if (s <= edge && e > edge) {
                stack.push_back({edge + 1, e});
                stack.push_back({s, edge});
                split = true;
                break;
            }
        for (int k = 1; !split && k < utf8_len(s); ++k) {
            const uint32_t m = (uint32_t(1) << (6 * k)) - 1;
            if ((s & ~m) == (e & ~m)) continue;
            if ((s & m) != 0) {
                stack.push_back({(s | m) + 1, e});
                stack.push_back({s, s | m});
                split = true;
            } else if ((e & m) != m) {
                stack.push_back({e & ~m, e});
                stack.push_back({s, (e & ~m) - 1});
                split = true;
            }
        }
        if (split) continue;
        const std::string a = utf8(s), b = utf8(e);
        byte_ranges seq;
        for (size_t i = 0; i < a.size(); ++i) seq.emplace_back(uint8_t(a[i]), uint8_t(b[i]));
        out.push_back(std::move(seq));
    }
}

// How a character is written inside a JSON string (one canonical form).
std::string json_encoding(uint32_t c) {
    static const char* hex = "0123456789abcdef";
    switch (c) {
        case '"':
            return "\\\"";
        case '\\':
            return "\\\\";
        case '\b':
            return "\\b";
        case '\f':
            return "\\f";
        case '\n':
            return "\\n";
        case '\r':
            return "\\r";
        case '\t':
            return "\\t";
        default:
            if (c < 0x20) return std::string("\\u00") + hex[c >> 4] + hex[c & 15];
            return utf8(c);
    }
}

struct emitter {
    byte_nfa& n;
    regex_mode mode;
    status err;

    void chain(int32_t s, const byte_ranges& seq, int32_t t) {
        for (size_t i = 0; i < seq.size(); ++i) {
            const int32_t to = i + 1 == seq.size() ? t : n.add_state(true);
            n.add_edge(s, seq[i].first, seq[i].second, to);
            s = to;
        }
    }

    void chars(int32_t s, const char_set& cs, int32_t t) {
        for (auto [lo, hi] : cs.ranges) {
            for (uint32_t c = lo; c <= hi && c < 0x80; ++c) {
                const std::string e = mode == regex_mode::raw ? utf8(c) : json_encoding(c);
                byte_ranges seq;
                for (char b : e) seq.emplace_back(uint8_t(b), uint8_t(b));
                if (seq.size() == 1 && !n.edges[size_t(s)].empty()) {
                    auto& last = n.edges[size_t(s)].back();  // extend a run of single bytes
                    if (last.to == t && last.hi + 1 == seq[0].first) {
                        last.hi = seq[0].first;
                        continue;
                    }
                }
                chain(s, seq, t);
            }
            if (hi < 0x80) continue;
            std::vector<byte_ranges> seqs;
            utf8_sequences(std::max<uint32_t>(lo, 0x80), hi, seqs);
            for (const auto& seq : seqs) chain(s, seq, t);
        }
    }

    // Appends `r` after state s; returns the end state (-1 on error).
    int32_t emit(const regex_node& r, int32_t s) {
        if (n.size() > k_max_nfa_states) {
            if (err.ok()) err = make_error(errc::unsupported, "a pattern this large is not supported");
            return -1;
        }
        switch (r.kind) {
            case regex_node::set: {
                const int32_t t = n.add_state();
                chars(s, r.chars, t);
                return t;
            }
            case regex_node::cat:
                for (const auto& k : r.kids)
                    if ((s = emit(k, s)) < 0) return -1;
                return s;
            case regex_node::alt: {
                const int32_t t = n.add_state();
                for (const auto& k : r.kids) {
                    const int32_t a = n.add_state();
                    n.add_eps(s, a);
                    const int32_t e = emit(k, a);
                    if (e < 0) return -1;
                    n.add_eps(e, t);
                }
                return t;
            }
            case regex_node::rep:
                return repeat(r, s);
            case regex_node::bol:
            case regex_node::eol:
                if (err.ok()) err = make_error(errc::unsupported, "an anchor inside the pattern is not supported");
                return -1;
            case regex_node::look_ahead:
            case regex_node::look_not:
                if (err.ok())
                    err = make_error(errc::unsupported,
                                     "a lookahead other than right after a leading '^' is not supported");
                return -1;
        }
        return -1;
    }

    int32_t repeat(const regex_node& r, int32_t s) {
        for (int32_t i = 0; i < r.min; ++i)
            if ((s = emit(r.kids[0], s)) < 0) return -1;
        if (r.max < 0) {
            const int32_t a = n.add_state();
            n.add_eps(s, a);
            const int32_t e = emit(r.kids[0], a);
            if (e < 0) return -1;
            n.add_eps(e, a);
            return a;
        }
        const int32_t t = n.add_state();
        n.add_eps(s, t);
        for (int32_t i = r.min; i < r.max; ++i) {
            if ((s = emit(r.kids[0], s)) < 0) return -1;
            n.add_eps(s, t);
        }
        return t;
    }
};

// DFA of (any*)? body (any*)? where the flags say which side is open.
status body_dfa(const regex_node& body, regex_mode mode, bool open_start, bool open_end, raw_dfa& out) {
    byte_nfa n;
    emitter em{n, mode, {}};
    regex_node any_star;
    any_star.kind = regex_node::rep;
    any_star.kids.emplace_back();
    any_star.kids[0].kind = regex_node::set;
    any_star.kids[0].chars = char_set::any();
    const int32_t s0 = n.add_state();
    int32_t s = s0;
    if (open_start) s = em.emit(any_star, s);
    if (s >= 0) s = em.emit(body, s);
    if (s >= 0 && open_end) s = em.emit(any_star, s);
    if (s < 0) return em.err;
    if (!nfa_to_dfa(n, s0, s, k_max_regex_states, out))
        return make_error(errc::unsupported, "a pattern needing more than " + std::to_string(k_max_regex_states) +
                                                 " states is not supported");
    return {};
}

status product(raw_dfa& acc, const raw_dfa& other, dfa_op op) {
    raw_dfa out;
    if (!dfa_product(acc, other, op, k_max_regex_states, out))
        return make_error(errc::unsupported, "a pattern needing more than " + std::to_string(k_max_regex_states) +
                                                 " states is not supported");
    acc = std::move(out);
    dfa_prune(acc);
    return {};
}

// A leading lookahead's DFA: the union over its alternatives of what the rest of the string starts with, or, for an
// alternative that ends with '$' (Zod's hostname: "^(?=.{1,253}\\.?$)..."), of what the whole rest is.
status lookahead_dfa(const regex_node& look, regex_mode mode, raw_dfa& out) {
    const regex_node& body = look.kids[0];
    std::vector<const regex_node*> alts;
    if (body.kind == regex_node::alt)
        for (const auto& k : body.kids) alts.push_back(&k);
    else
        alts.push_back(&body);
    bool first = true;
    for (const regex_node* a : alts) {
        regex_node rest = *a;
        bool closed = rest.kind == regex_node::eol;
        if (closed) rest = regex_node{};  // (?=$): the empty rest
        if (rest.kind == regex_node::cat && !rest.kids.empty() && rest.kids.back().kind == regex_node::eol) {
            rest.kids.pop_back();
            closed = true;
        }
        raw_dfa d;
        if (status st = body_dfa(rest, mode, false, !closed, d); !st.ok()) return st;
        if (first) {
            out = std::move(d);
            first = false;
        } else if (status st = product(out, d, dfa_op::unite); !st.ok()) {
            return st;
        }
    }
    return {};
}

// One top-level alternative: [^ lookaheads...] body [$].
status alternative_dfa(const regex_node& seq, regex_mode mode, raw_dfa& out) {
    std::vector<const regex_node*> items;
    for (const auto& k : seq.kids) items.push_back(&k);
    const bool bol = !items.empty() && items.front()->kind == regex_node::bol;
    if (bol) items.erase(items.begin());
    std::vector<const regex_node*> looks;
    while (bol && !items.empty() &&
           (items.front()->kind == regex_node::look_ahead || items.front()->kind == regex_node::look_not)) {
        looks.push_back(items.front());
        items.erase(items.begin());
    }
    const bool eol = !items.empty() && items.back()->kind == regex_node::eol;
    if (eol) items.pop_back();
    regex_node body;
    body.kind = regex_node::cat;
    for (const auto* it : items) body.kids.push_back(*it);
    if (status st = body_dfa(body, mode, !bol, !eol, out); !st.ok()) return st;
    for (const auto* l : looks) {
        raw_dfa ld;
        if (status st = lookahead_dfa(*l, mode, ld); !st.ok()) return st;
        if (status st = product(out, ld, l->kind == regex_node::look_ahead ? dfa_op::intersect : dfa_op::difference);
            !st.ok())
            return st;
    }
    return {};
}

}  // namespace

status compile_regex(std::string_view pattern, regex_mode mode, raw_dfa& out) {
    regex_node root;
    if (status st = parse_regex(pattern, root); !st.ok()) return st;
    bool first = true;
    for (const auto& alt : root.kids) {
        raw_dfa d;
        if (status st = alternative_dfa(alt, mode, d); !st.ok()) return st;
        if (first) {
            out = std::move(d);
            first = false;
        } else if (status st = product(out, d, dfa_op::unite); !st.ok()) {
            return st;
        }
    }
    if (!dfa_prune(out)) return make_error(errc::invalid_argument, "the pattern matches no string");
    return {};
}

}  // namespace mnemos::engine

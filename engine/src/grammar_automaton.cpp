// The grammar's pushdown automaton: one step per byte. See engine/grammar.h and grammar_internal.h.
#include <cstring>

#include "engine/src/grammar_internal.h"

namespace mnemos::engine {

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
        const int32_t n_seen = __builtin_popcountll(f.seen);
        for (size_t ai = 0; ai < grp.alts.size(); ++ai)
            if ((f.live >> ai & 1) && n_seen < grp.alts[ai].max_props) m |= grp.alts[ai].has;
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
        const int32_t n_seen = __builtin_popcountll(f.seen);
        for (size_t ai = 0; ai < grp.alts.size(); ++ai) {
            const auto& a = grp.alts[ai];
            if ((f.live >> ai & 1) && (a.required & ~f.seen) == 0 && n_seen >= a.min_props && n_seen <= a.max_props)
                return true;
        }
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
        const int32_t item = f.count < static_cast<int32_t>(n.prefix.size()) ? n.prefix[size_t(f.count)] : n.a;
        if (item < 0) return rejected;
        f.count++;
        f.phase = 2;
        return push(st, item) ? retry : rejected;
    }

    static res object_step(grammar_state& st, grammar_frame& f, const grammar::node& n, uint8_t b) {
        const grammar::obj_group& grp = st.g_->objects_[static_cast<size_t>(n.a)];
        switch (f.phase) {
            case 0:
                if (b != '{') return rejected;
                f.phase = 1;
                f.live = grp.init_live;
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
                if (b == '}' && f.phase == 1 && n.d == 0) {
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
                if (b == '}' && f.count >= n.d) {
                    pop(st, -1);
                    return accepted;
                }
                return rejected;
        }
        return rejected;
    }

    // A byte automaton: a pattern/format string (quoted, characters counted against minLength/maxLength so
    // that acceptance stays reachable) or a bounded number (raw, ends at the first byte it cannot take).
    static res dfa_step(grammar_state& st, grammar_frame& f, const grammar::node& n, uint8_t b) {
        const byte_dfa& d = st.g_->dfas_[static_cast<size_t>(n.a)];
        if (f.phase == 0) f.phase = 1, f.pos = d.start, f.count = 0;
        const int32_t t = d.step(f.pos, b);
        if (t < 0) {
            if (d.quoted || !d.accept[static_cast<size_t>(f.pos)]) return rejected;
            pop(st, -1);
            return retry;
        }
        if (d.quoted) {
            const int32_t c = f.count + (d.counts[static_cast<size_t>(f.pos)] && b != '"' ? 1 : 0);
            const int32_t lo = d.min_chars[static_cast<size_t>(t)], hi = d.max_chars[static_cast<size_t>(t)];
            if (c + lo > n.c || (hi != byte_dfa::k_unbounded && c + hi < n.b)) return rejected;
            f.count = static_cast<int16_t>(c);
        }
        f.pos = t;
        if (d.final_only[static_cast<size_t>(t)]) pop(st, -1);
        return accepted;
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
            case node_kind::dfa:
                return dfa_step(st, f, n, b);
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
        if (n.kind == node_kind::dfa) {
            const byte_dfa& d = st.g_->dfas_[static_cast<size_t>(n.a)];
            return !d.quoted && f.phase == 1 && d.accept[static_cast<size_t>(f.pos)];
        }
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
}  // namespace mnemos::engine

// Pattern parser (ECMAScript subset) and character sets. See grammar_regex.h for the subset.
#include <algorithm>
#include <cctype>

#include "engine/src/grammar_regex_ast.h"

namespace mnemos::engine {

void char_set::normalize() {
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<uint32_t, uint32_t>> out;
    for (const auto& r : ranges) {
        if (!out.empty() && r.first <= out.back().second + 1)
            out.back().second = std::max(out.back().second, r.second);
        else
            out.push_back(r);
    }
    ranges = std::move(out);
}

char_set char_set::negated() const {
    char_set s = *this;
    s.add(0xD800, 0xDFFF);  // surrogates are never characters
    s.normalize();
    char_set o;
    uint32_t next = 0;
    for (const auto& [lo, hi] : s.ranges) {
        if (lo > next) o.add(next, lo - 1);
        next = hi + 1;
    }
    if (next <= 0x10FFFF) o.add(next, 0x10FFFF);
    return o;
}

char_set char_set::digit() {
    char_set s;
    s.add('0', '9');
    return s;
}
char_set char_set::word() {
    char_set s;
    s.add('0', '9');
    s.add('A', 'Z');
    s.add('_', '_');
    s.add('a', 'z');
    return s;
}
char_set char_set::space() {
    char_set s;
    for (auto [lo, hi] : {std::pair<uint32_t, uint32_t>{0x09, 0x0D},
                          {0x20, 0x20},
                          {0xA0, 0xA0},
                          {0x1680, 0x1680},
                          {0x2000, 0x200A},
                          {0x2028, 0x2029},
                          {0x202F, 0x202F},
                          {0x205F, 0x205F},
                          {0x3000, 0x3000},
                          {0xFEFF, 0xFEFF}})
        s.add(lo, hi);
    return s;
}
char_set char_set::dot() {
    char_set s;
    for (uint32_t c : {0x0Au, 0x0Du, 0x2028u, 0x2029u}) s.add(c, c);
    return s.negated();
}
char_set char_set::any() { return char_set{}.negated(); }

namespace {

constexpr size_t k_max_pattern_bytes = 4096;
constexpr int k_max_group_depth = 32;
constexpr int32_t k_max_repeat = 1000;

struct parser {
    std::string_view p;
    size_t i = 0;
    status err;

    bool fail(errc c, const std::string& what) {
        if (err.ok()) err = make_error(c, what + " (at offset " + std::to_string(i) + ")");
        return false;
    }
    bool unsupported(const std::string& what) { return fail(errc::unsupported, what + " is not supported"); }
    bool more() const { return i < p.size(); }
    char peek() const { return p[i]; }

    // One UTF-8 character of the pattern.
    bool utf8(uint32_t& cp) {
        const auto b = static_cast<unsigned char>(p[i++]);
        int n = b < 0x80 ? 0 : b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : b >= 0xC0 ? 1 : -1;
        if (n < 0) return fail(errc::invalid_argument, "invalid UTF-8 in pattern");
        cp = n == 0 ? b : (b & (0x3F >> n));
        for (; n > 0; --n) {
            if (!more() || (static_cast<unsigned char>(p[i]) & 0xC0) != 0x80)
                return fail(errc::invalid_argument, "invalid UTF-8 in pattern");
            cp = (cp << 6) | (static_cast<unsigned char>(p[i++]) & 0x3F);
        }
        return true;
    }

    bool hex(int n, uint32_t& v) {
        v = 0;
        for (int k = 0; k < n; ++k, ++i) {
            if (!more() || !std::isxdigit(static_cast<unsigned char>(peek())))
                return fail(errc::invalid_argument, "bad hexadecimal escape");
            const char c = peek();
            v = v * 16 + static_cast<uint32_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        return true;
    }

    // An escape after '\' (in_class: \b is a backspace). Sets `out` to the characters it stands for.
    bool escape(bool in_class, char_set& out) {
        if (!more()) return fail(errc::invalid_argument, "pattern ends with '\\'");
        const char c = p[i++];
        uint32_t v = 0;
        switch (c) {
            case 'd':
                return out = char_set::digit(), true;
            case 'D':
                return out = char_set::digit().negated(), true;
            case 'w':
                return out = char_set::word(), true;
            case 'W':
                return out = char_set::word().negated(), true;
            case 's':
                return out = char_set::space(), true;
            case 'S':
                return out = char_set::space().negated(), true;
            case 'n':
                v = '\n';
                break;
            case 'r':
                v = '\r';
                break;
            case 't':
                v = '\t';
                break;
            case 'f':
                v = '\f';
                break;
            case 'v':
                v = '\v';
                break;
            case '0':
                v = 0;
                break;
            case 'x':
                if (!hex(2, v)) return false;
                break;
            case 'u':
                if (!hex(4, v)) return false;
                if (v >= 0xD800 && v < 0xDC00 && p.substr(i, 2) == "\\u") {
                    i += 2;
                    uint32_t lo = 0;
                    if (!hex(4, lo)) return false;
                    if (lo < 0xDC00 || lo > 0xDFFF) return fail(errc::invalid_argument, "bad surrogate pair");
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (v >= 0xD800 && v <= 0xDFFF) return unsupported("a lone surrogate escape");
                break;
            case 'b':
                if (!in_class) return unsupported("word boundary '\\b'");
                v = '\b';
                break;
            case 'B':
                return unsupported("word boundary '\\B'");
            case 'c':
                return unsupported("control escape '\\c'");
            case 'p':
            case 'P':
                return unsupported("Unicode property escape '\\" + std::string(1, c) + "'");
            case 'k':
                return unsupported("named backreference '\\k'");
            default:
                if (c >= '1' && c <= '9') return unsupported("backreference '\\" + std::string(1, c) + "'");
                if (std::isalnum(static_cast<unsigned char>(c)))
                    return fail(errc::invalid_argument, "unknown escape '\\" + std::string(1, c) + "'");
                --i;
                if (!utf8(v)) return false;
        }
        out = char_set{};
        out.add(v, v);
        return true;
    }

    bool class_atom(char_set& out, bool& single, uint32_t& cp) {
        single = false;
        if (peek() == '\\') {
            ++i;
            if (!escape(true, out)) return false;
            single = out.ranges.size() == 1 && out.ranges[0].first == out.ranges[0].second;
            cp = single ? out.ranges[0].first : 0;
            return true;
        }
        if (!utf8(cp)) return false;
        out = char_set{};
        out.add(cp, cp);
        single = true;
        return true;
    }

    bool char_class(char_set& out) {
        ++i;  // '['
        const bool neg = more() && peek() == '^';
        if (neg) ++i;
        char_set s;
        while (true) {
            if (!more()) return fail(errc::invalid_argument, "unterminated '['");
            if (peek() == ']') break;
            char_set a;
            bool single = false;
            uint32_t lo = 0;
            if (!class_atom(a, single, lo)) return false;
            if (single && more() && peek() == '-' && i + 1 < p.size() && p[i + 1] != ']') {
                ++i;
                char_set b;
                bool single_b = false;
                uint32_t hi = 0;
                if (!class_atom(b, single_b, hi)) return false;
                if (!single_b) return unsupported("a class escape as a range bound");
                if (hi < lo) return fail(errc::invalid_argument, "range out of order in character class");
                s.add(lo, hi);
                continue;
            }
            s.add(a);
        }
        ++i;  // ']'
        s.normalize();
        out = neg ? s.negated() : s;
        return true;
    }

    // {m}, {m,}, {m,n}; returns false without consuming when it is not a quantifier (then '{' is literal).
    bool braces(int32_t& mn, int32_t& mx) {
        size_t j = i + 1;
        const auto num = [&](int32_t& v) {
            const size_t b = j;
            int64_t x = 0;
            while (j < p.size() && std::isdigit(static_cast<unsigned char>(p[j])) && x <= k_max_repeat)
                x = x * 10 + (p[j++] - '0');
            v = static_cast<int32_t>(std::min<int64_t>(x, k_max_repeat + 1));
            return j > b;
        };
        if (!num(mn)) return false;
        mx = mn;
        if (j < p.size() && p[j] == ',') {
            ++j;
            if (!num(mx)) mx = -1;
        }
        if (j >= p.size() || p[j] != '}') return false;
        i = j + 1;
        return true;
    }

    bool quantifier(regex_node& atom) {
        if (!more()) return true;
        int32_t mn = 0, mx = -1;
        const char c = peek();
        if (c == '*') {
            ++i;
        } else if (c == '+') {
            mn = 1, ++i;
        } else if (c == '?') {
            mx = 1, ++i;
        } else if (c != '{' || !braces(mn, mx)) {
            return true;
        }
        if (mn > k_max_repeat || mx > k_max_repeat)
            return unsupported("a repeat count above " + std::to_string(k_max_repeat));
        if (mx >= 0 && mx < mn) return fail(errc::invalid_argument, "numbers out of order in {} quantifier");
        if (atom.kind == regex_node::bol || atom.kind == regex_node::eol || atom.kind == regex_node::look_ahead ||
            atom.kind == regex_node::look_not)
            return fail(errc::invalid_argument, "nothing to repeat");
        if (more() && peek() == '?') ++i;  // lazy: same language
        if (more() && (peek() == '*' || peek() == '+' || peek() == '?'))
            return fail(errc::invalid_argument, "nothing to repeat");
        regex_node r;
        r.kind = regex_node::rep;
        r.min = mn;
        r.max = mx;
        r.kids.push_back(std::move(atom));
        atom = std::move(r);
        return true;
    }

    bool group(regex_node& out, int depth) {
        ++i;  // '('
        regex_node::kind_t kind = regex_node::cat;
        if (p.substr(i, 2) == "?:") {
            i += 2;
        } else if (p.substr(i, 2) == "?=" || p.substr(i, 2) == "?!") {
            kind = p[i + 1] == '=' ? regex_node::look_ahead : regex_node::look_not;
            i += 2;
        } else if (p.substr(i, 3) == "?<=" || p.substr(i, 3) == "?<!") {
            return unsupported("lookbehind '(" + std::string(p.substr(i, 3)) + "'");
        } else if (p.substr(i, 2) == "?<") {
            const size_t close = p.find('>', i);
            if (close == std::string_view::npos) return fail(errc::invalid_argument, "unterminated group name");
            i = close + 1;
        } else if (more() && peek() == '?') {
            return unsupported("group modifier '(?" + std::string(p.substr(i + 1, 1)) + "'");
        }
        regex_node inner;
        if (!alternation(inner, depth + 1)) return false;
        if (!more() || peek() != ')') return fail(errc::invalid_argument, "missing ')'");
        ++i;
        if (kind == regex_node::cat) {
            out = std::move(inner);
        } else {
            out.kind = kind;
            out.kids.push_back(std::move(inner));
        }
        return true;
    }

    bool atom(regex_node& out, int depth) {
        const char c = peek();
        out = regex_node{};
        if (c == '(') return group(out, depth);
        out.kind = regex_node::set;
        if (c == '[') return char_class(out.chars);
        if (c == '\\') return ++i, escape(false, out.chars);
        if (c == '.') return ++i, out.chars = char_set::dot(), true;
        if (c == '^') return ++i, out.kind = regex_node::bol, true;
        if (c == '$') return ++i, out.kind = regex_node::eol, true;
        if (c == '*' || c == '+' || c == '?') return fail(errc::invalid_argument, "nothing to repeat");
        if (c == ')') return fail(errc::invalid_argument, "unmatched ')'");
        uint32_t cp = 0;
        if (!utf8(cp)) return false;
        out.chars.add(cp, cp);
        return true;
    }

    bool sequence(regex_node& out, int depth) {
        out = regex_node{};
        out.kind = regex_node::cat;
        while (more() && peek() != '|' && peek() != ')') {
            regex_node a;
            if (!atom(a, depth) || !quantifier(a)) return false;
            out.kids.push_back(std::move(a));
        }
        return true;
    }

    bool alternation(regex_node& out, int depth) {
        if (depth > k_max_group_depth)
            return unsupported("groups nested deeper than " + std::to_string(k_max_group_depth));
        out = regex_node{};
        out.kind = regex_node::alt;
        while (true) {
            regex_node s;
            if (!sequence(s, depth)) return false;
            out.kids.push_back(std::move(s));
            if (!more() || peek() != '|') return true;
            ++i;
        }
    }
};

}  // namespace

status parse_regex(std::string_view pattern, regex_node& out) {
    if (pattern.size() > k_max_pattern_bytes)
        return make_error(errc::unsupported,
                          "a pattern longer than " + std::to_string(k_max_pattern_bytes) + " bytes is not supported");
    parser ps{pattern, 0, {}};
    if (!ps.alternation(out, 0)) return ps.err;
    if (ps.more()) {
        ps.fail(errc::invalid_argument, "unmatched ')'");
        return ps.err;
    }
    return {};
}

}  // namespace mnemos::engine

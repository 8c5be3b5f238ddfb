// Bounded numbers and integers as byte automata. See grammar_schema_scalar.h.
#include <cmath>
#include <limits>
#include <string_view>

#include "engine/src/grammar_regex.h"
#include "engine/src/grammar_schema_scalar.h"

namespace mnemos::engine {

namespace {

constexpr int k_max_bound_digits = 18;
constexpr int64_t k_max_multiple = 1000000;
const double k_inf = std::numeric_limits<double>::infinity();

std::string join(const std::vector<std::string>& parts) {
    std::string o;
    for (const auto& p : parts) o += (o.empty() ? "" : "|") + p;
    return o;
}

std::string digits_rx(size_t n) { return n == 0 ? "" : n == 1 ? "\\d" : "\\d{" + std::to_string(n) + "}"; }

// Decimal strings of equal length with lo <= x <= hi (the classic range-to-regex split).
std::string same_len(const std::string& lo, const std::string& hi) {
    if (lo == hi) return lo;
    if (lo.size() == 1) return std::string("[") + lo[0] + "-" + hi[0] + "]";
    if (lo[0] == hi[0]) return lo.substr(0, 1) + "(?:" + same_len(lo.substr(1), hi.substr(1)) + ")";
    const size_t r = lo.size() - 1;
    char a = lo[0], b = hi[0];
    std::vector<std::string> parts;
    if (lo.find_first_not_of('0', 1) != std::string::npos) {
        parts.push_back(lo.substr(0, 1) + "(?:" + same_len(lo.substr(1), std::string(r, '9')) + ")");
        ++a;
    }
    if (hi.find_first_not_of('9', 1) != std::string::npos) {
        parts.push_back(hi.substr(0, 1) + "(?:" + same_len(std::string(r, '0'), hi.substr(1)) + ")");
        --b;
    }
    if (a <= b) parts.push_back(std::string("[") + a + "-" + b + "]" + digits_rx(r));
    return join(parts);
}

uint64_t pow10(int n) {
    uint64_t v = 1;
    while (n-- > 0) v *= 10;
    return v;
}

// Non-negative integers a..b written without leading zeros.
std::string range_rx(uint64_t a, uint64_t b) {
    std::vector<std::string> parts;
    for (int len = 1; len <= k_max_bound_digits; ++len) {
        const uint64_t lo = std::max(a, len == 1 ? 0 : pow10(len - 1)), hi = std::min(b, pow10(len) - 1);
        if (lo <= hi) parts.push_back("(?:" + same_len(std::to_string(lo), std::to_string(hi)) + ")");
    }
    return join(parts);
}

struct bounds {
    double lo = -k_inf, hi = k_inf;
    bool lo_excl = false, hi_excl = false;
};

status read_bounds(const json_value& s, const std::string& path, bounds& b) {
    bool draft4_lo = false, draft4_hi = false;
    for (std::string_view k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
        const json_value* v = s.find(k);
        if (!v) continue;
        const bool is_min = k == "minimum" || k == "exclusiveMinimum", excl = k[0] == 'e';
        if (excl && v->kind == json_value::k_bool) {  // draft 4: a flag on minimum/maximum
            (is_min ? draft4_lo : draft4_hi) |= v->boolean;
            continue;
        }
        if (v->kind != json_value::k_number)
            return schema_error(errc::invalid_argument, path, "'" + std::string(k) + "' must be a number");
        if (is_min && (v->number > b.lo || (v->number == b.lo && excl))) b.lo = v->number, b.lo_excl = excl;
        if (!is_min && (v->number < b.hi || (v->number == b.hi && excl))) b.hi = v->number, b.hi_excl = excl;
    }
    b.lo_excl |= draft4_lo;
    b.hi_excl |= draft4_hi;
    return {};
}

std::string int_rx(const bounds& b, uint64_t cap, const std::string& path, status& err) {
    const double big = static_cast<double>(pow10(k_max_bound_digits) - 1);
    double lo = b.lo_excl ? std::floor(b.lo) + 1 : std::ceil(b.lo);
    double hi = b.hi_excl ? std::ceil(b.hi) - 1 : std::floor(b.hi);
    lo = std::isinf(lo) ? -static_cast<double>(cap) : std::max(lo, -big);
    hi = std::isinf(hi) ? static_cast<double>(cap) : std::min(hi, big);
    if (lo > hi) {
        err = schema_error(errc::invalid_argument, path, "no integer lies within 'minimum'/'maximum'");
        return {};
    }
    const auto ilo = static_cast<int64_t>(lo), ihi = static_cast<int64_t>(hi);
    std::vector<std::string> parts;
    if (ihi >= 0) parts.push_back(range_rx(static_cast<uint64_t>(std::max<int64_t>(ilo, 0)), uint64_t(ihi)));
    if (ilo < 0) parts.push_back("-(?:" + range_rx(uint64_t(std::max<int64_t>(-ihi, 1)), uint64_t(-ilo)) + ")");
    return join(parts);
}

// Magnitudes m (no sign) between p >= 0 and q (may be infinite).
std::string magnitude_rx(double p, bool pe, double q, bool qe, uint64_t cap, int n_frac) {
    const std::string f = std::to_string(n_frac);
    const std::string any_frac = "(?:\\.\\d{1," + f + "})?", zero_frac = "(?:\\.0{1," + f + "})?";
    std::vector<std::string> nz;
    for (int k = 0; k < n_frac; ++k)
        nz.push_back("0{" + std::to_string(k) + "}[1-9]\\d{0," + std::to_string(n_frac - 1 - k) + "}");
    const double dcap = static_cast<double>(cap);
    if (p > dcap) return {};
    const bool p_int = p == std::floor(p);
    const double i0 = p_int ? (pe ? p + 1 : p) : std::ceil(p);
    const bool top = q <= dcap;
    const double b = top ? std::floor(q) : dcap, i1 = top ? b - 1 : dcap;
    std::vector<std::string> parts;
    if (i0 <= i1) parts.push_back("(?:" + range_rx(uint64_t(i0), uint64_t(i1)) + ")" + any_frac);
    if (top && b >= 0 && (b > p || (b == p && !pe)) && (b < q || !qe))
        parts.push_back(std::to_string(uint64_t(b)) + zero_frac);
    if (p_int && pe && p + 1 <= q) parts.push_back(std::to_string(uint64_t(p)) + "\\.(?:" + join(nz) + ")");
    return join(parts);
}

std::string number_rx(const bounds& b, uint64_t cap, int n_frac) {
    std::vector<std::string> parts;
    if (b.hi > 0 || (b.hi == 0 && !b.hi_excl)) {
        const bool lo_pos = b.lo >= 0;
        const std::string m = magnitude_rx(lo_pos ? b.lo : 0, lo_pos && b.lo_excl, b.hi, b.hi_excl, cap, n_frac);
        if (!m.empty()) parts.push_back(m);
    }
    if (b.lo < 0) {
        const bool hi_neg = b.hi < 0;
        const std::string m =
            magnitude_rx(hi_neg ? -b.hi : 0, hi_neg ? b.hi_excl : true, -b.lo, b.lo_excl, cap, n_frac);
        if (!m.empty()) parts.push_back("-(?:" + m + ")");
    }
    return join(parts);
}

// Accepts [-]digits whose value is a multiple of m.
raw_dfa multiple_dfa(int64_t m) {
    raw_dfa d;
    const auto n = static_cast<size_t>(m) + 2;
    std::array<int32_t, 256> none;
    none.fill(-1);
    d.next.assign(n, none);
    d.accept.assign(n, 0);
    d.boundary.assign(n, 1);
    d.next[0]['-'] = 1;
    for (size_t s = 0; s < n; ++s)
        for (int c = 0; c < 10; ++c) {
            const int64_t r = s < 2 ? 0 : static_cast<int64_t>(s) - 2;
            d.next[s][size_t('0' + c)] = static_cast<int32_t>(2 + (r * 10 + c) % m);
        }
    d.accept[2] = 1;
    return d;
}

status alt_dfa(const scalar_alt& a, const grammar_options& o, raw_dfa& out) {
    const json_value& s = *a.schema;
    bounds b;
    if (status st = read_bounds(s, a.path, b); !st.ok()) return st;
    const int n_int = std::min(o.max_int_digits, k_max_bound_digits);
    const uint64_t cap = pow10(n_int) - 1;
    const int n_frac = std::min(o.max_frac_digits, k_max_bound_digits);
    int64_t mult = 0;
    if (const json_value* m = s.find("multipleOf")) {
        if (m->kind != json_value::k_number || m->number <= 0)
            return schema_error(errc::invalid_argument, a.path, "'multipleOf' must be a positive number");
        if (m->number != std::floor(m->number) || m->number > static_cast<double>(k_max_multiple))
            return schema_error(
                errc::unsupported, a.path,
                "keyword 'multipleOf' is supported only with an integer up to " + std::to_string(k_max_multiple));
        mult = static_cast<int64_t>(m->number);
    }
    const bool integer = a.integer || mult > 0;
    status err;
    std::string rx;
    if (integer) {
        rx = int_rx(b, cap, a.path, err);
        if (!err.ok()) return err;
    } else {
        rx = number_rx(b, cap, n_frac);
    }
    if (rx.empty())
        return schema_error(errc::unsupported, a.path,
                            "no number the grammar can write lies within 'minimum'/'maximum'");
    if (status st = compile_regex("^(?:" + rx + ")$", regex_mode::raw, out); !st.ok())
        return schema_error(st.code(), a.path, st.message());
    if (mult > 1) {
        raw_dfa prod;
        if (!dfa_product(out, multiple_dfa(mult), dfa_op::intersect, k_max_regex_states, prod))
            return schema_error(
                errc::unsupported, a.path,
                "keyword 'multipleOf' " + std::to_string(mult) + " with these bounds needs too many automaton states");
        if (!dfa_prune(prod))
            return schema_error(errc::unsupported, a.path, "no multiple of 'multipleOf' lies within the bounds");
        out = std::move(prod);
    }
    return {};
}

std::string free_number_rx(bool integer, const grammar_options& o) {
    std::string rx = "-?(?:0|[1-9]\\d{0," + std::to_string(o.max_int_digits - 1) + "})";
    if (!integer)
        rx += "(?:\\.\\d{1," + std::to_string(o.max_frac_digits) + "})?(?:[eE][+-]?\\d{1," +
              std::to_string(o.max_exp_digits) + "})?";
    return rx;
}

}  // namespace

bool number_needs_dfa(const json_value& s) {
    for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})
        if (s.find(k)) return true;
    return false;
}

status number_dfa(const std::vector<scalar_alt>& alts, const std::vector<std::string>& literals,
                  const grammar_options& o, raw_dfa& out) {
    std::vector<std::string> simple;
    for (const auto& l : literals) {
        std::string e;
        for (char c : l) e += (c == '.' || c == '+') ? std::string("\\") + c : std::string(1, c);
        simple.push_back(e);
    }
    dfa_fold any{dfa_op::unite, k_max_regex_states, "the number alternatives"};
    for (const auto& a : alts) {
        raw_dfa d;
        if (!number_needs_dfa(*a.schema)) {
            simple.push_back(free_number_rx(a.integer, o));
            continue;
        }
        if (status st = alt_dfa(a, o, d); !st.ok()) return st;
        if (status st = any.add(std::move(d)); !st.ok()) return st;
    }
    if (!simple.empty()) {
        raw_dfa d;
        if (status st = compile_regex("^(?:" + join(simple) + ")$", regex_mode::raw, d); !st.ok()) return st;
        if (status st = any.add(std::move(d)); !st.ok()) return st;
    }
    out = std::move(any.acc);
    dfa_prune(out);
    return {};
}

}  // namespace mnemos::engine

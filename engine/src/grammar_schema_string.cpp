// Strings with pattern and format as automata over JSON-encoded string content. See grammar_schema_scalar.h.
#include <cctype>
#include <string_view>

#include "engine/src/grammar_regex.h"
#include "engine/src/grammar_schema_scalar.h"

namespace mnemos::engine {

namespace {

#define MNEMOS_DATE                                                                                           \
    "(?:\\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\\d|2[0-8])|\\d{4}-(?:0[13-9]|1[0-2])-(?:29|30)|"                 \
    "\\d{4}-(?:0[13578]|1[02])-31|(?:\\d\\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)" \
    "-02-29)"
#define MNEMOS_TIME "(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,9})?(?:[Zz]|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)"
#define MNEMOS_PCHAR "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
#define MNEMOS_OCTET "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)"

// Formats as patterns. Exact: date (Gregorian, leap years), uuid, ipv4. Conservative (a valid subset):
// time and date-time (no leap second 60), email (dot-atom local part of [A-Za-z0-9_+-], host names of
// letters, digits and inner hyphens, a top-level domain of 2+ letters), uri (scheme ":" and then either
// "//" reg-name authority and an absolute path, or a path; query and fragment; no IPv6 literal host).
struct format_pattern {
    const char* name;
    const char* pattern;
};
const format_pattern k_formats[] = {
    {"date", "^" MNEMOS_DATE "$"},
    {"time", "^" MNEMOS_TIME "$"},
    {"date-time", "^" MNEMOS_DATE "[Tt]" MNEMOS_TIME "$"},
    {"uuid", "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"},
    {"email", "^[A-Za-z0-9_+-]+(?:\\.[A-Za-z0-9_+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\\.)+[A-Za-z]{2,}$"},
    {"ipv4", "^(?:" MNEMOS_OCTET "\\.){3}" MNEMOS_OCTET "$"},
    {"uri",
     "^[A-Za-z][A-Za-z0-9+.-]*:(?://(?:(?:[A-Za-z0-9._~!$&'()*+,;=:-]|%[0-9A-Fa-f]{2})*@)?"
     "(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*(?::\\d*)?(?:/" MNEMOS_PCHAR "*)*|/|/?" MNEMOS_PCHAR
     "+(?:/" MNEMOS_PCHAR "*)*)?(?:\\?(?:" MNEMOS_PCHAR "|[/?])*)?(?:#(?:" MNEMOS_PCHAR "|[/?])*)?$"},
};

// A pattern that matches exactly the string s.
std::string literal_rx(const std::string& s) {
    static const char* hex = "0123456789abcdef";
    std::string o = "^";
    for (unsigned char c : s) {
        if (c >= 0x80 || std::isalnum(c))
            o += static_cast<char>(c);
        else
            o += std::string("\\x") + hex[c >> 4] + hex[c & 15];
    }
    return o + "$";
}

status alt_dfa(const scalar_alt& a, raw_dfa& out) {
    const json_value& s = *a.schema;
    dfa_fold both{dfa_op::intersect, k_max_regex_states, "pattern and format together"};
    if (const json_value* f = s.find("format")) {
        if (f->kind != json_value::k_string)
            return schema_error(errc::invalid_argument, a.path, "'format' must be a string");
        const char* pat = nullptr;
        for (const auto& fp : k_formats)
            if (f->str == fp.name) pat = fp.pattern;
        // Another format beside a pattern is read as an annotation: the pattern says the shape (Zod writes both,
        // e.g. "format": "starts_with", "cuid", "hostname", "e164" with the pattern that checks it).
        if (!pat && !s.find("pattern"))
            return schema_error(
                errc::unsupported, a.path + "/format",
                "format '" + f->str +
                    "' is not supported (date, time, date-time, uuid, email, ipv4, uri are; another format is "
                    "accepted beside a 'pattern' that enforces it)");
        if (pat) {
            raw_dfa d;
            if (status st = compile_regex(pat, regex_mode::json_string, d); !st.ok())
                return schema_error(errc::internal, a.path + "/format", st.message());
            if (status st = both.add(std::move(d)); !st.ok()) return schema_error(st.code(), a.path, st.message());
        }
    }
    if (const json_value* p = s.find("pattern")) {
        if (p->kind != json_value::k_string)
            return schema_error(errc::invalid_argument, a.path, "'pattern' must be a string");
        raw_dfa d;
        if (status st = compile_regex(p->str, regex_mode::json_string, d); !st.ok())
            return schema_error(st.code(), a.path + "/pattern",
                                "pattern " + encode_json_string(p->str) + ": " + st.message());
        if (status st = both.add(std::move(d)); !st.ok()) return schema_error(st.code(), a.path, st.message());
    }
    if (!both.have) return compile_regex("", regex_mode::json_string, out);
    out = std::move(both.acc);
    if (!dfa_prune(out))
        return schema_error(errc::invalid_argument, a.path, "pattern and format together match no string");
    return {};
}

}  // namespace

bool string_needs_dfa(const json_value& s) { return s.find("pattern") || s.find("format"); }

status string_dfa(const std::vector<scalar_alt>& alts, const std::vector<std::string>& literals, raw_dfa& out) {
    dfa_fold any{dfa_op::unite, k_max_regex_states, "the string alternatives"};
    for (const auto& a : alts) {
        raw_dfa d;
        if (status st = alt_dfa(a, d); !st.ok()) return st;
        if (status st = any.add(std::move(d)); !st.ok()) return st;
    }
    for (const auto& l : literals) {
        raw_dfa d;
        if (status st = compile_regex(literal_rx(l), regex_mode::json_string, d); !st.ok()) return st;
        if (status st = any.add(std::move(d)); !st.ok()) return st;
    }
    out = std::move(any.acc);
    dfa_prune(out);
    return {};
}

}  // namespace mnemos::engine

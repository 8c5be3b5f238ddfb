#pragma once
// The parsed form of a pattern (grammar_regex_parse.cpp) that grammar_regex.cpp turns into automata.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/status.h"

namespace mnemos::engine {

// A set of Unicode scalar values as sorted, disjoint, non-adjacent ranges [lo, hi].
struct char_set {
    std::vector<std::pair<uint32_t, uint32_t>> ranges;

    void add(uint32_t lo, uint32_t hi) { ranges.emplace_back(lo, hi); }
    void add(const char_set& o) { ranges.insert(ranges.end(), o.ranges.begin(), o.ranges.end()); }
    void normalize();
    // Every scalar value (U+0000..U+10FFFF, surrogates excluded) not in the set. Normalizes first.
    char_set negated() const;

    static char_set digit();  // \d
    static char_set word();   // \w
    static char_set space();  // \s (ECMAScript WhiteSpace and LineTerminator)
    static char_set dot();    // . (all but line terminators)
    static char_set any();    // [\s\S]
};

struct regex_node {
    enum kind_t { set, cat, alt, rep, bol, eol, look_ahead, look_not };
    kind_t kind = cat;
    char_set chars;                // set
    std::vector<regex_node> kids;  // cat, alt: the parts; rep, look_*: one
    int32_t min = 0, max = -1;     // rep: bounds, max -1 = unbounded
};

// Parses a pattern; errors name the unsupported feature and its byte offset.
status parse_regex(std::string_view pattern, regex_node& out);

}  // namespace mnemos::engine

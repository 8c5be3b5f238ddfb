#pragma once
// A regex-to-automaton compiler for JSON Schema `pattern` (the usual ECMAScript subset) and for the
// grammar's own number and format patterns.
//
// Supported: literals (UTF-8), escapes (\n \r \t \f \v \0 \xHH \uHHHH, identity escapes of punctuation),
// classes [a-z] [^...] with \d \w \s \D \W \S inside or outside, '.', groups ( ) (?: ) (?<name> ),
// alternation |, quantifiers * + ? {m} {m,} {m,n} (lazy '?' suffixes accepted: same language), anchors
// ^ at the start and $ at the end of a top-level alternative, and lookaheads (?= ) (?! ) right after a
// leading ^. A pattern is a search (JSON Schema semantics): an alternative without ^ may have any text
// before it, without $ any text after it. \s is ECMAScript's white space (ASCII and Unicode spaces).
// Errors name the unsupported feature: backreferences, lookbehind, lookaheads elsewhere, word
// boundaries \b \B, Unicode property escapes \p, \c control escapes, anchors inside the pattern.
#include <string>
#include <string_view>

#include "engine/src/grammar_dfa.h"
#include "engine/status.h"

namespace mnemos::engine {

enum class regex_mode {
    json_string,  // characters matched in their JSON-encoded form (string content, no quotes)
    raw,          // characters matched as their UTF-8 bytes (numbers)
};

// Most DFA states of one compiled pattern (each step of a product is bounded too).
constexpr size_t k_max_regex_states = 4096;

// Compiles `pattern` into a pruned DFA. Errors: unsupported (a feature outside the subset, or more than
// k_max_regex_states states), invalid_argument (a malformed pattern, or one that matches nothing).
status compile_regex(std::string_view pattern, regex_mode mode, raw_dfa& out);

}  // namespace mnemos::engine

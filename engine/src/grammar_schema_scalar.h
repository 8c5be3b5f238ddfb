#pragma once
// Numbers with bounds or multipleOf, and strings with pattern or format, compiled to byte automata.
//
// Integers: minimum, maximum, exclusiveMinimum, exclusiveMaximum (also draft-4 boolean exclusive*) are
// exact: the range becomes digit-by-digit alternatives. A missing bound is the digit cap
// (grammar_options::max_int_digits digits); given bounds may reach 18 digits. multipleOf (a positive
// integer) intersects the range with a remainder automaton (unsupported when the product needs more
// than k_max_regex_states states).
// Numbers: written without an exponent when bounded. Integer-valued bounds are exact (up to the fraction
// digit cap); beside a non-integer bound the integer part next to it is allowed only with a zero
// fraction (conservative: some valid numbers are never produced, none invalid).
// Strings: pattern (grammar_regex.h) and format (date, time, date-time, uuid, email, ipv4, uri as
// patterns; see grammar_schema_scalar.cpp) intersected.
#include <string>
#include <vector>

#include "engine/grammar.h"
#include "engine/src/grammar_dfa.h"
#include "engine/src/grammar_json.h"

namespace mnemos::engine {

// An error in the schema at `path` ("path: what").
inline status schema_error(errc c, const std::string& path, const std::string& what) {
    return make_error(c, path + ": " + what);
}

struct scalar_alt {
    const json_value* schema;
    std::string path;
    bool integer = false;  // numbers: "type":"integer"
};

// The schema has keywords only the number automaton enforces (bounds, multipleOf).
bool number_needs_dfa(const json_value& s);
// The schema has pattern or format.
bool string_needs_dfa(const json_value& s);

// One raw automaton for the union of number alternatives and numeric literals (JSON text). Errors name
// the keyword and its path.
status number_dfa(const std::vector<scalar_alt>& alts, const std::vector<std::string>& literals,
                  const grammar_options& o, raw_dfa& out);

// One string-content automaton (no quotes) for the union of string alternatives and string literals
// (decoded values). Length bounds are not part of it (the grammar counts characters).
status string_dfa(const std::vector<scalar_alt>& alts, const std::vector<std::string>& literals, raw_dfa& out);

}  // namespace mnemos::engine

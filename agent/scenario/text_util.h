#pragma once
// Small helpers the scenario reader, checks, generator and scoring share:
// ASCII case folding, JSON pointer tokens, ids, calendar dates and template
// placeholders. Internals of agent/scenario, public for its tests.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mnemos::agent::scenario_text {

std::string lower_ascii(std::string_view s);
// ASCII case-insensitive substring test.
bool contains_ci(std::string_view haystack, std::string_view needle);

// JSON pointer escaping of one reference token (RFC 6901): "~" -> "~0", "/" -> "~1".
std::string pointer_token(std::string_view key);

// An id: [a-z0-9][a-z0-9_.-]*.
bool valid_id(std::string_view s);

// Civil date arithmetic (H. Hinnant's days_from_civil / civil_from_days): days since 1970-01-01.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d);
// Parses YYYY-MM-DD into days since 1970-01-01; false when not a real date (2025-02-30).
bool parse_date(std::string_view s, int64_t& days);

// Placeholder names in a template ("{weather}" -> "weather"), appended to out; false on an unbalanced brace.
bool placeholders(std::string_view t, std::vector<std::string>& out);

}  // namespace mnemos::agent::scenario_text

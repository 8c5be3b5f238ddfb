#pragma once
// The string formats of JSON Schema that tool arguments are checked against (schema_validate.cpp).
#include <string>

namespace mnemos::tools {

// True when text is a valid `format` (date, time, date-time, uuid, email, ipv4, uri; RFC 3339 for the dates
// and times); any other format is an annotation and accepts every string.
bool matches_format(const std::string& text, const std::string& format);

}  // namespace mnemos::tools

#pragma once
// Limits on untrusted JSON text (STYLE rule 14). nlohmann's parser is
// iterative, but copying, dumping and comparing a parsed value recurse once per
// nesting level, so JSON from a client, a config file, a scenario file or a
// model is measured here, without recursion, before it is parsed.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace mnemos::tools {

// The deepest nesting of arrays and objects accepted in untrusted JSON text ("1" is depth 0, "[1]" depth 1).
inline constexpr size_t k_max_json_depth = 64;

// True when `text` nests arrays/objects deeper than max_depth, counting brackets outside strings (escapes
// honoured). One linear pass, no recursion, no allocation; malformed text is measured as far as it goes (the
// parser rejects it afterwards).
bool json_too_deep(std::string_view text, size_t max_depth = k_max_json_depth);

// "JSON nested deeper than 64 levels": the message for json_too_deep.
std::string json_depth_message(size_t max_depth = k_max_json_depth);

// json::parse(text, nullptr, false), except that text nested deeper than max_depth is not parsed either: both
// give a discarded value. For text whose failure needs no reason of its own (model output, stored events).
nlohmann::json parse_json_bounded(std::string_view text, size_t max_depth = k_max_json_depth);

}  // namespace mnemos::tools

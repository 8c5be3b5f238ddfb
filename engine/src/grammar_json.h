#pragma once
// A tiny JSON reader for schemas (engine/ has no JSON dependency): a DOM with
// objects kept in source order, and a compact canonical writer.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mnemos::engine {

// JSON string literal (with quotes) for UTF-8 text: escapes '"', '\\' and control characters.
std::string encode_json_string(const std::string& s);

struct json_value {
    enum kind_t { k_null, k_bool, k_number, k_string, k_array, k_object };
    kind_t kind = k_null;
    bool boolean = false;
    double number = 0;
    std::string str;  // string value; number: its source text
    std::vector<json_value> array;
    std::vector<std::pair<std::string, json_value>> object;

    // Defined out of line, where json_value is complete: Clang (14) with libstdc++ otherwise checks
    // std::pair<std::string, json_value> for destructibility while json_value is still incomplete.
    json_value();
    json_value(const json_value&);
    json_value(json_value&&) noexcept;
    json_value& operator=(const json_value&);
    json_value& operator=(json_value&&) noexcept;
    ~json_value();

    // The member named key (the last one when repeated), or nullptr (also when not an object).
    const json_value* find(std::string_view key) const;
    // Compact JSON; numbers as written in the source.
    std::string dump() const;
    // Parses a whole document (whitespace around it allowed). On failure returns false and sets err
    // ("at byte N: ..."); nesting deeper than 128 is an error.
    static bool parse(std::string_view text, json_value& out, std::string& err);
};

}  // namespace mnemos::engine

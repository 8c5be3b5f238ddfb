#pragma once
// Internals of probe matching's normalisation (agent/scenario/text_normalize.h): the passes over decoded text
// that rewrite dates and times, and the scanning helpers they share.
#include <string>
#include <string_view>

namespace mnemos::agent::scenario_text::normalize_detail {

using u32 = std::u32string;

inline bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }
inline bool is_letter(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// The number of 1..max_digits digits at i (advancing i), or -1.
inline int read_number(const u32& s, size_t& i, size_t max_digits) {
    size_t j = i;
    int v = 0;
    while (j < s.size() && is_digit(s[j]) && j - i < max_digits) v = v * 10 + static_cast<int>(s[j++] - '0');
    if (j == i || (j < s.size() && is_digit(s[j]))) return -1;
    i = j;
    return v;
}

inline bool starts_with(const u32& s, size_t i, std::u32string_view w) { return s.compare(i, w.size(), w) == 0; }
inline size_t skip_spaces(const u32& s, size_t i) {
    while (i < s.size() && s[i] == ' ') ++i;
    return i;
}

inline void append_ascii(u32& out, const std::string& a) {
    for (char c : a) out += static_cast<char32_t>(c);
}

// Dates to "Y-M-D" / "M-D", on folded text whose Chinese numerals are digits.
u32 rewrite_dates(const u32& s);
// Times to "H:MM" plus "am"/"pm" when known, after rewrite_dates.
u32 rewrite_times(const u32& s);

}  // namespace mnemos::agent::scenario_text::normalize_detail

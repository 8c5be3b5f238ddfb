// Normalising text for probe matching (agent/scenario/text_normalize.h). Works on code points: decode, fold
// width and case, then three passes that rewrite numbers, dates and times, then encode.
#include "agent/scenario/text_normalize.h"

#include <array>
#include <optional>

#include "agent/scenario/src/text_normalize_clock.h"

namespace mnemos::agent::scenario_text {

namespace {

using normalize_detail::is_digit;
using normalize_detail::u32;

// An invalid byte b decodes to 0xDC00 + b (a lone surrogate, never valid input) and encodes back to b.
constexpr char32_t k_raw_byte = 0xDC00;

u32 decode(std::string_view s) {
    u32 out;
    for (size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        int n = b < 0x80 ? 0 : (b >> 5) == 0x6 ? 1 : (b >> 4) == 0xE ? 2 : (b >> 3) == 0x1E ? 3 : -1;
        char32_t c = n == 0 ? b : n == 1 ? (b & 0x1F) : n == 2 ? (b & 0x0F) : (b & 0x07);
        bool ok = n >= 0 && i + static_cast<size_t>(n) < s.size() + (n == 0 ? 1 : 0);
        for (int k = 1; ok && k <= n; ++k) {
            const auto cb = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
            ok = (cb & 0xC0) == 0x80;
            c = (c << 6) | (cb & 0x3F);
        }
        if (!ok) {
            out += k_raw_byte + b;
            ++i;
            continue;
        }
        out += c;
        i += static_cast<size_t>(n) + 1;
    }
    return out;
}

std::string encode(const u32& s) {
    std::string out;
    for (char32_t c : s) {
        if (c >= k_raw_byte && c < k_raw_byte + 0x100) {
            out += static_cast<char>(c - k_raw_byte);
        } else if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xC0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xE0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        }
    }
    return out;
}

bool is_space(char32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x3000 || c == 0xA0; }

// Full-width ASCII to ASCII, then lower case where the mapping is a fixed offset or pairs.
char32_t fold(char32_t c) {
    if (c >= 0xFF01 && c <= 0xFF5E) c = c - 0xFF01 + 0x21;
    if (c >= 'A' && c <= 'Z') return c + 0x20;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;  // Latin-1
    if (c >= 0x100 && c <= 0x17F) {                            // Latin Extended-A: pairs, with two shifts
        if (c == 0x178) return 0xFF;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c % 2 == 1 ? c + 1 : c;
        if (c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) return c % 2 == 0 ? c + 1 : c;
        return c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 0x20;  // Greek
    if (c >= 0x410 && c <= 0x42F) return c + 0x20;                // Cyrillic
    if (c >= 0x400 && c <= 0x40F) return c + 0x50;
    return c;
}

// ---------------------------------------------------------------------------
// Chinese numerals
// ---------------------------------------------------------------------------

int cn_digit(char32_t c) {
    switch (c) {
        case U'零':
        case U'〇':
            return 0;
        case U'一':
            return 1;
        case U'二':
        case U'两':
            return 2;
        case U'三':
            return 3;
        case U'四':
            return 4;
        case U'五':
            return 5;
        case U'六':
            return 6;
        case U'七':
            return 7;
        case U'八':
            return 8;
        case U'九':
            return 9;
        default:
            return -1;
    }
}
bool is_cn_numeral(char32_t c) { return c == U'十' || cn_digit(c) >= 0; }
// What a number counts when it stands before one of these: hours, minutes, quarters, days, months, years.
bool is_cn_unit(char32_t c) {
    return c == U'点' || c == U'时' || c == U'分' || c == U'刻' || c == U'日' || c == U'号' || c == U'月' || c == U'年';
}

// The digits of a run of Chinese numerals: 十, 十X, X十, X十Y (10..99), one digit, or digit by digit
// (二〇二五); nullopt for anything else.
std::optional<std::string> cn_number(const u32& run) {
    const size_t ten = run.find(U'十');
    if (ten == u32::npos) {
        std::string d;
        for (char32_t c : run) d += static_cast<char>('0' + cn_digit(c));
        return d;
    }
    if (run.find(U'十', ten + 1) != u32::npos || ten > 1 || run.size() - ten > 2) return std::nullopt;
    const int tens = ten == 0 ? 1 : cn_digit(run[0]);
    const int units = ten + 1 < run.size() ? cn_digit(run[ten + 1]) : 0;
    if (tens <= 0 || units < 0) return std::nullopt;
    return std::to_string(tens * 10 + units);
}

// Runs of numerals followed by a unit, or following 点/时 (the minutes of "九点四十"), become digits.
u32 chinese_numerals(const u32& s) {
    u32 out;
    for (size_t i = 0; i < s.size();) {
        if (!is_cn_numeral(s[i])) {
            out += s[i++];
            continue;
        }
        size_t j = i;
        while (j < s.size() && is_cn_numeral(s[j])) ++j;
        const u32 run = s.substr(i, j - i);
        const bool before_unit = j < s.size() && is_cn_unit(s[j]);
        const bool after_hour = i > 0 && (s[i - 1] == U'点' || s[i - 1] == U'时');
        auto digits = (before_unit || after_hour) ? cn_number(run) : std::nullopt;
        if (digits)
            for (char c : *digits) out += static_cast<char32_t>(c);
        else
            out += run;
        i = j;
    }
    return out;
}

// ---------------------------------------------------------------------------
// Numbers, dates and times over the folded text
// ---------------------------------------------------------------------------

}  // namespace

std::string normalize_for_match(std::string_view text) {
    u32 folded;
    for (char32_t c : decode(text)) {
        c = fold(c);
        if (is_space(c)) {
            if (!folded.empty() && folded.back() == ' ') continue;
            c = ' ';
        }
        folded += c;
    }
    return encode(normalize_detail::rewrite_times(normalize_detail::rewrite_dates(chinese_numerals(folded))));
}

bool contains_normalized(std::string_view haystack, std::string_view needle) {
    if (needle.empty()) return true;
    const bool digit_first = is_digit(static_cast<unsigned char>(needle.front()));
    const bool digit_last = is_digit(static_cast<unsigned char>(needle.back()));
    for (size_t at = haystack.find(needle); at != std::string_view::npos; at = haystack.find(needle, at + 1)) {
        const size_t end = at + needle.size();
        if (digit_first && at > 0 && is_digit(static_cast<unsigned char>(haystack[at - 1]))) continue;
        if (digit_last && end < haystack.size() && is_digit(static_cast<unsigned char>(haystack[end]))) continue;
        return true;
    }
    return false;
}

}  // namespace mnemos::agent::scenario_text

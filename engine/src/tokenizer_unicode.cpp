// Unicode helpers declared in engine/src/unicode.h (the tables live in unicode_data.cpp).
#include <algorithm>
#include <array>

#include "engine/src/unicode.h"

namespace mnemos::engine::unicode {

namespace {

uint16_t lookup_flags(uint32_t cp) {
    const flag_range* end = k_flag_ranges + k_n_flag_ranges;
    const flag_range* it =
        std::upper_bound(k_flag_ranges, end, cp, [](uint32_t v, const flag_range& r) { return v < r.first; });
    if (it == k_flag_ranges) return 0;
    --it;
    return cp <= it->last ? it->flags : 0;
}

// Flags of the first 64K code points, filled once (most text lives there).
struct bmp_table {
    std::array<uint16_t, 0x10000> flags{};
    bmp_table() {
        for (uint32_t cp = 0; cp < 0x10000; ++cp) flags[cp] = lookup_flags(cp);
    }
};

const bmp_table& bmp() {
    static const bmp_table t;
    return t;
}

struct byte_map {
    std::array<uint32_t, 256> to_cpt{};
    byte_map() {
        // bytes_to_unicode(): printable Latin-1 bytes map to themselves, the rest to U+0100 upward in order.
        uint32_t next = 256;
        for (uint32_t b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            to_cpt[b] = printable ? b : next++;
        }
    }
};

const byte_map& bytes() {
    static const byte_map m;
    return m;
}

}  // namespace

uint16_t flags(uint32_t cp) {
    if (cp < 0x10000) return bmp().flags[cp];
    if (cp > 0x10FFFF) return 0;
    return lookup_flags(cp);
}

bool is_deepseek_letter(uint32_t cp) {
    const cpt_range* end = k_deepseek_letter_ranges + k_n_deepseek_letter_ranges;
    const cpt_range* it =
        std::upper_bound(k_deepseek_letter_ranges, end, cp, [](uint32_t v, const cpt_range& r) { return v < r.first; });
    if (it == k_deepseek_letter_ranges) return false;
    --it;
    return cp <= it->last;
}

size_t valid_utf8_len(std::string_view s, size_t pos) {
    const auto at = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
    const uint8_t b0 = at(pos);
    if (b0 < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if ((b0 & 0xE0) == 0xC0) {
        n = 2;
        cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
        n = 3;
        cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
        n = 4;
        cp = b0 & 0x07;
    } else {
        return 0;
    }
    if (pos + n > s.size()) return 0;
    for (size_t i = 1; i < n; ++i) {
        const uint8_t b = at(pos + i);
        if ((b & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr uint32_t k_min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < k_min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

uint32_t next_cpt(std::string_view s, size_t& pos) {
    const size_t n = valid_utf8_len(s, pos);
    const uint8_t b0 = static_cast<uint8_t>(s[pos]);
    if (n == 0) {
        ++pos;
        return k_raw_byte_base + b0;
    }
    if (n == 1) {
        ++pos;
        return b0;
    }
    uint32_t cp = b0 & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<uint8_t>(s[pos + i]) & 0x3F);
    pos += n;
    return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (is_raw_byte(cp)) {
        out += static_cast<char>(cp - k_raw_byte_base);
    } else if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

uint32_t byte_to_cpt(uint8_t b) { return bytes().to_cpt[b]; }

int cpt_to_byte(uint32_t cp) {
    if (cp >= 0x21 && cp <= 0xFF && cp != 0xAD && !(cp >= 0x7F && cp <= 0xA0)) return static_cast<int>(cp);
    if (cp >= 256 && cp < 256 + 68) {
        // The 68 non-printable bytes in increasing order.
        static const std::array<int, 68> k_table = [] {
            std::array<int, 68> t{};
            for (int b = 0; b < 256; ++b) {
                const uint32_t c = byte_to_cpt(static_cast<uint8_t>(b));
                if (c >= 256) t[c - 256] = b;
            }
            return t;
        }();
        return k_table[cp - 256];
    }
    return -1;
}

}  // namespace mnemos::engine::unicode

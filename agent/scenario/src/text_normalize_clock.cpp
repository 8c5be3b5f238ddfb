// Dates and times for probe matching (agent/scenario/src/text_normalize_clock.h).
#include "agent/scenario/src/text_normalize_clock.h"

#include <array>
#include <utility>

namespace mnemos::agent::scenario_text::normalize_detail {

namespace {

constexpr std::array<std::u32string_view, 12> k_months = {U"january",   U"february", U"march",    U"april",
                                                          U"may",       U"june",     U"july",     U"august",
                                                          U"september", U"october",  U"november", U"december"};

// An English month name (or its first three letters, or "sept") at i, as 1..12, advancing i; 0 when none.
int read_month(const u32& s, size_t& i) {
    if (i > 0 && is_letter(s[i - 1])) return 0;
    for (size_t m = 0; m < k_months.size(); ++m) {
        for (size_t len : {k_months[m].size(), size_t{4}, size_t{3}}) {
            if (len > k_months[m].size() || (len == 4 && m != 8)) continue;
            if (!starts_with(s, i, k_months[m].substr(0, len))) continue;
            size_t j = i + len;
            if (j < s.size() && s[j] == '.') ++j;
            if (j < s.size() && is_letter(s[j])) continue;
            i = j;
            return static_cast<int>(m) + 1;
        }
    }
    return 0;
}

// A day of the month at i ("3", "3rd", "03"), advancing i; -1 when none.
int read_day(const u32& s, size_t& i) {
    size_t j = i;
    const int d = read_number(s, j, 2);
    if (d < 1 || d > 31) return -1;
    for (std::u32string_view suf : {U"st", U"nd", U"rd", U"th"})
        if (starts_with(s, j, suf)) {
            j += 2;
            break;
        }
    if (j < s.size() && is_letter(s[j])) return -1;
    i = j;
    return d;
}

// ", 2025" / " 2025" after a date, advancing i; -1 when none.
int read_year_after(const u32& s, size_t& i) {
    size_t j = i;
    if (j < s.size() && s[j] == ',') ++j;
    j = skip_spaces(s, j);
    const int y = read_number(s, j, 4);
    if (y < 1000) return -1;
    i = j;
    return y;
}

std::string date_text(int y, int m, int d) {
    return (y > 0 ? std::to_string(y) + "-" : std::string()) + std::to_string(m) + "-" + std::to_string(d);
}

// One date at i, advancing i; "" when none starts there.
std::string read_date(const u32& s, size_t& i) {
    size_t j = i;
    if (int m = read_month(s, j); m > 0) {  // March 3rd[, 2025]
        j = skip_spaces(s, j);
        const int d = read_day(s, j);
        if (d < 0) return {};
        const int y = read_year_after(s, j);
        i = j;
        return date_text(y, m, d);
    }
    if (i > 0 && is_digit(s[i - 1])) return {};
    if (int y = read_number(s, j, 4); y >= 1000 && j < s.size() && (s[j] == '-' || s[j] == '/' || s[j] == U'年')) {
        const char32_t sep = s[j++];  // 2025-03-03, 2025/3/3, 2025年3月3日
        const int m = read_number(s, j, 2);
        if (m < 1 || m > 12 || j >= s.size() || s[j] != (sep == U'年' ? U'月' : sep)) return {};
        ++j;
        const int d = read_number(s, j, 2);
        if (d < 1 || d > 31) return {};
        if (sep == U'年' && j < s.size() && (s[j] == U'日' || s[j] == U'号')) ++j;
        i = j;
        return date_text(y, m, d);
    }
    j = i;
    if (int m = read_number(s, j, 2); m >= 1 && m <= 12 && j < s.size() && s[j] == U'月') {  // 3月3日
        ++j;
        const int d = read_number(s, j, 2);
        if (d < 1 || d > 31 || j >= s.size() || (s[j] != U'日' && s[j] != U'号')) return {};
        i = j + 1;
        return date_text(0, m, d);
    }
    j = i;
    if (int d = read_day(s, j); d > 0) {  // 3 March[ 2025], 3rd of March
        j = skip_spaces(s, j);
        if (starts_with(s, j, U"of ")) j += 3;
        const int m = read_month(s, j);
        // "9 may have": the verb, not the month.
        if (m == 0 || (m == 5 && j + 1 < s.size() && s[j] == ' ' && is_letter(s[j + 1]))) return {};
        const int y = read_year_after(s, j);
        i = j;
        return date_text(y, m, d);
    }
    return {};
}

}  // namespace

u32 rewrite_dates(const u32& s) {
    u32 out;
    for (size_t i = 0; i < s.size();) {
        size_t j = i;
        if (std::string d = read_date(s, j); !d.empty()) {
            append_ascii(out, d);
            i = j;
        } else {
            out += s[i++];
        }
    }
    return out;
}

namespace {

enum class period { none, am, pm };

// "am", "a.m.", "pm", "p.m." at i (not followed by a letter), advancing i.
period read_period(const u32& s, size_t& i) {
    for (auto [w, p] : {std::pair{std::u32string_view(U"a.m."), period::am},
                        {U"p.m.", period::pm},
                        {U"am", period::am},
                        {U"pm", period::pm}}) {
        if (!starts_with(s, i, w)) continue;
        const size_t j = i + w.size();
        if (j < s.size() && is_letter(s[j])) continue;
        i = j;
        return p;
    }
    return period::none;
}

// A Chinese part of the day that ends right before `end` ("晚上9点"): its period and where it starts.
period period_word_before(const u32& out, size_t& start) {
    static const std::array<std::pair<std::u32string_view, period>, 11> words = {{{U"凌晨", period::am},
                                                                                  {U"早上", period::am},
                                                                                  {U"早晨", period::am},
                                                                                  {U"上午", period::am},
                                                                                  {U"中午", period::pm},
                                                                                  {U"下午", period::pm},
                                                                                  {U"傍晚", period::pm},
                                                                                  {U"晚上", period::pm},
                                                                                  {U"夜里", period::pm},
                                                                                  {U"深夜", period::pm},
                                                                                  {U"晚", period::pm}}};
    size_t end = out.size();
    while (end > 0 && out[end - 1] == ' ') --end;
    for (const auto& [w, p] : words)
        if (end >= w.size() && out.compare(end - w.size(), w.size(), w) == 0) {
            start = end - w.size();
            return p;
        }
    return period::none;
}

struct clock_time {
    int hour = -1;
    int minute = 0;
    period when = period::none;
};

// The minutes after "点"/"时": "40", "05分", "半", "3刻"; 0 when none (advancing i past what was read).
int read_cn_minutes(const u32& s, size_t& i) {
    if (i < s.size() && s[i] == U'钟') return ++i, 0;
    if (i < s.size() && s[i] == U'半') return ++i, 30;
    size_t j = i;
    const int v = read_number(s, j, 2);
    if (v < 0) return 0;
    if (j < s.size() && s[j] == U'刻' && v >= 1 && v <= 3) return i = j + 1, 15 * v;
    if (v > 59) return 0;
    if (j < s.size() && s[j] == U'分') ++j;
    i = j;
    return v;
}

// A time at i (s[i] a digit that does not follow one), advancing i; hour -1 when none starts there.
clock_time read_time(const u32& s, size_t& i) {
    clock_time t;
    size_t j = i;
    const int h = read_number(s, j, 2);
    if (h < 0 || h > 24) return t;
    const size_t digits_end = j;
    if (j + 2 < s.size() && s[j] == ':' && is_digit(s[j + 1])) {  // 9:05, 21:00
        size_t k = j + 1;
        const int m = read_number(s, k, 2);
        if (m < 0 || m > 59 || k - j != 3) return t;
        t = {h, m, period::none};
        j = k;
    } else if (j < s.size() && (s[j] == U'点' || s[j] == U'时')) {  // 9点, 9点40分, 9点半
        ++j;
        t = {h, read_cn_minutes(s, j), period::none};
    } else {
        t.hour = h;  // 9 pm, 9 o'clock: only with what follows
    }
    const size_t after = skip_spaces(s, j);
    size_t k = after;
    if (t.when = read_period(s, k); t.when != period::none) {
        j = k;
    } else if (starts_with(s, after, U"o'clock") || starts_with(s, after, U"o’clock")) {
        j = after + 7;
    } else if (j == digits_end) {
        return clock_time{};  // a bare number
    }
    if (t.hour > 12 && t.when != period::none) return clock_time{};  // "21 pm"
    i = j;
    return t;
}

std::string time_text(clock_time t) {
    int h = t.hour % 24;
    if (t.when == period::am && h == 12) h = 0;
    if (t.when == period::pm && h < 12) h += 12;
    const bool known = t.when != period::none || h == 0 || h > 12;
    const int shown = known ? (h % 12 == 0 ? 12 : h % 12) : h;
    std::string m = std::to_string(t.minute);
    if (m.size() < 2) m = "0" + m;
    return std::to_string(shown) + ":" + m + (known ? (h < 12 ? "am" : "pm") : "");
}

}  // namespace

u32 rewrite_times(const u32& s) {
    u32 out;
    for (size_t i = 0; i < s.size();) {
        if (!is_digit(s[i]) || (i > 0 && (is_digit(s[i - 1]) || s[i - 1] == ':' || s[i - 1] == '-'))) {
            out += s[i++];
            continue;
        }
        size_t j = i;
        clock_time t = read_time(s, j);
        if (t.hour < 0) {
            out += s[i++];
            continue;
        }
        size_t word = 0;
        if (const period p = period_word_before(out, word); p != period::none && t.when == period::none) {
            t.when = p;
            out.erase(word);
        }
        append_ascii(out, time_text(t));
        i = j;
    }
    return out;
}

}  // namespace mnemos::agent::scenario_text::normalize_detail

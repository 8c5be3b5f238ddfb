// Scenario text helpers (agent/scenario/text_util.h).
#include "agent/scenario/text_util.h"

namespace mnemos::agent::scenario_text {

std::string lower_ascii(std::string_view s) {
    std::string r(s);
    for (char& c : r) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return r;
}

bool contains_ci(std::string_view haystack, std::string_view needle) {
    return lower_ascii(haystack).find(lower_ascii(needle)) != std::string::npos;
}

std::string pointer_token(std::string_view key) {
    std::string r;
    for (char c : key) {
        if (c == '~')
            r += "~0";
        else if (c == '/')
            r += "~1";
        else
            r += c;
    }
    return r;
}

bool valid_id(std::string_view s) {
    if (s.empty()) return false;
    auto ok_first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!ok_first(s[0])) return false;
    for (char c : s) {
        if (!ok_first(c) && c != '_' && c != '-' && c != '.') return false;
    }
    return true;
}

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = static_cast<int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
}

bool parse_date(std::string_view s, int64_t& days) {
    if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
    auto num = [&](size_t pos, size_t n, int64_t& out) {
        out = 0;
        for (size_t i = pos; i < pos + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    int64_t y = 0, m = 0, d = 0;
    if (!num(0, 4, y) || !num(5, 2, m) || !num(8, 2, d)) return false;
    if (m < 1 || m > 12 || d < 1 || d > 31) return false;
    days = days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
    int64_t y2 = 0;
    unsigned m2 = 0, d2 = 0;
    civil_from_days(days, y2, m2, d2);
    return y2 == y && m2 == m && d2 == d;  // rejects 2025-02-30
}

bool placeholders(std::string_view t, std::vector<std::string>& out) {
    for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] == '{') {
            const size_t j = t.find('}', i + 1);
            if (j == std::string_view::npos) return false;
            out.emplace_back(t.substr(i + 1, j - i - 1));
            i = j;
        } else if (t[i] == '}') {
            return false;
        }
    }
    return true;
}

}  // namespace mnemos::agent::scenario_text

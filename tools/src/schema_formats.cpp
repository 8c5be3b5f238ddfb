// JSON Schema string formats (schema_formats.h).
#include "tools/src/schema_formats.h"

#include <regex>

namespace mnemos::tools {

namespace {

bool leap_year(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// YYYY-MM-DD, a day that exists in the Gregorian calendar.
bool valid_date(const std::string& t) {
    static const std::regex shape(R"(^(\d{4})-(\d{2})-(\d{2})$)");
    std::smatch m;
    if (!std::regex_match(t, m, shape)) return false;
    const int y = std::stoi(m[1]), mo = std::stoi(m[2]), d = std::stoi(m[3]);
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1) return false;
    return d <= days[mo - 1] + (mo == 2 && leap_year(y));
}

// hh:mm:ss[.frac](Z|±hh:mm), a leap second allowed.
bool valid_time(const std::string& t) {
    static const std::regex shape(
        R"(^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$)");
    return std::regex_match(t, shape);
}

bool valid_ipv4(const std::string& t) {
    static const std::regex shape(R"(^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$)");
    return std::regex_match(t, shape);
}

}  // namespace

bool matches_format(const std::string& text, const std::string& format) {
    if (format == "date") return valid_date(text);
    if (format == "time") return valid_time(text);
    if (format == "date-time") {
        const auto sep = text.find_first_of("Tt");
        return sep == 10 && valid_date(text.substr(0, sep)) && valid_time(text.substr(sep + 1));
    }
    if (format == "uuid") {
        static const std::regex shape(
            R"(^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$)");
        return std::regex_match(text, shape);
    }
    if (format == "email") {
        static const std::regex shape(R"(^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$)");
        return std::regex_match(text, shape);
    }
    if (format == "ipv4") return valid_ipv4(text);
    if (format == "uri") {
        static const std::regex shape(R"(^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]*$)");
        return std::regex_match(text, shape);
    }
    return true;
}

}  // namespace mnemos::tools

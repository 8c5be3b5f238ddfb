// Depth of JSON text without recursion (tools/json_limits.h).
#include "tools/json_limits.h"

namespace mnemos::tools {

bool json_too_deep(std::string_view text, size_t max_depth) {
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\')
                ++i;  // the escaped character cannot end the string
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) return true;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return false;
}

std::string json_depth_message(size_t max_depth) {
    return "JSON nested deeper than " + std::to_string(max_depth) + " levels";
}

nlohmann::json parse_json_bounded(std::string_view text, size_t max_depth) {
    if (json_too_deep(text, max_depth)) return nlohmann::json(nlohmann::json::value_t::discarded);
    return nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
}

}  // namespace mnemos::tools

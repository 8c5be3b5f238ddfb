// tools/json_limits.h on arbitrary text. Byte 0 picks the depth limit (0..71, 64 = the default),
// the rest is the text. Checked, besides "no crash":
//   - parse_json_bounded never returns a value nested deeper than the limit;
//   - valid JSON is reported as too deep exactly when it is nested deeper than the limit, and within
//     the limit parse_json_bounded gives the same value as nlohmann's parser.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>
#include <vector>

#include "tools/json_limits.h"

using json = nlohmann::json;

namespace {

// Nesting depth of a parsed value, without recursion ("1" is 0, "[1]" is 1).
size_t depth_of(const json& root) {
    size_t deepest = 0;
    std::vector<std::pair<const json*, size_t>> todo = {{&root, 0}};
    while (!todo.empty()) {
        const auto [v, d] = todo.back();
        todo.pop_back();
        if (!v->is_structured()) continue;
        deepest = std::max(deepest, d + 1);
        for (const json& child : *v) todo.push_back({&child, d + 1});
    }
    return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const size_t max_depth = data[0] % 72;
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    const bool too_deep = mnemos::tools::json_too_deep(text, max_depth);
    const json bounded = mnemos::tools::parse_json_bounded(text, max_depth);
    if (too_deep && !bounded.is_discarded()) std::abort();
    if (!bounded.is_discarded() && depth_of(bounded) > max_depth) std::abort();
    if (!too_deep) {
        // Within the limit by the scanner: the plain parser may recurse no deeper either.
        const json plain = json::parse(text.begin(), text.end(), nullptr, false);
        if (plain.is_discarded() != bounded.is_discarded()) std::abort();
        if (!plain.is_discarded() && plain != bounded) std::abort();
    } else if (text.find('\0') == std::string_view::npos) {
        // Too deep by the scanner: valid JSON must really be that deep (inputs are a few KB, so the
        // parser's recursion stays small here). Not with a NUL byte: nlohmann's parser takes it as the
        // end of the input, the scanner counts on (refusing more than needed, never less).
        const json plain = json::parse(text.begin(), text.end(), nullptr, false);
        if (!plain.is_discarded() && depth_of(plain) <= max_depth) std::abort();
    }
    volatile bool keep = mnemos::tools::json_depth_message(max_depth).empty();
    (void)keep;
    return 0;
}

// Tool-call parsers (tools/tool_call_parser.h): arbitrary model text -> parse_tool_calls. Checked,
// besides "no crash": it never throws; without a format there are no calls; every call has a name
// and object arguments that can be dumped and copied (nesting is bounded, so neither overflows the
// stack).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "tools/tool_call_parser.h"

using namespace mnemos;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        auto r = tools::parse_tool_calls(text);
        if (!r) {
            if (r.error().message().empty()) std::abort();
            return 0;
        }
        const tools::parsed_output& out = r.value();
        if (out.format == tools::tool_call_format::none && !out.calls.empty()) std::abort();
        if (out.format != tools::tool_call_format::none && out.calls.empty()) std::abort();
        if (tools::tool_call_format_name(out.format) == nullptr) std::abort();
        for (const tools::tool_call& c : out.calls) {
            if (!c.arguments.is_object()) std::abort();
            const nlohmann::json copy = c.arguments;
            if (copy != c.arguments) std::abort();
            volatile size_t n =
                c.arguments.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size() + c.name.size();
            (void)n;
        }
        if (out.content.size() > text.size()) std::abort();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_tool_calls: parse_tool_calls threw: %s\n", e.what());
        std::abort();
    }
    return 0;
}

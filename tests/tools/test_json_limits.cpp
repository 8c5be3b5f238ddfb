// tools/json_limits.h: the depth of JSON text, measured without recursion before it is parsed.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "tools/json_limits.h"
#include "tools/tool_call_parser.h"

using json = nlohmann::json;
using namespace mnemos;

TEST_CASE("json limits: the depth scanner counts brackets outside strings only", "[tools][limits]") {
    CHECK_FALSE(tools::json_too_deep("1", 0));
    CHECK(tools::json_too_deep("[]", 0));
    CHECK_FALSE(tools::json_too_deep("[[1],{\"a\":[2]}]", 3));
    CHECK(tools::json_too_deep("[[1],{\"a\":[[2]]}]", 3));
    CHECK_FALSE(tools::json_too_deep("[\"[[[[[[\"]", 1));    // brackets in a string
    CHECK_FALSE(tools::json_too_deep("[\"\\\"[[[[\"]", 1));  // an escaped quote does not end it
    CHECK_FALSE(tools::json_too_deep("[\"\\\\\"]", 1));      // an escaped backslash does not escape "
    CHECK(tools::json_too_deep("[\"\\\\\",[[]]]", 2));       // ... so what follows is counted
    CHECK(tools::json_too_deep(std::string(100000, '[') + std::string(100000, ']')));
    CHECK_FALSE(tools::json_too_deep(std::string(64, '[') + std::string(64, ']')));
    CHECK(tools::json_too_deep(std::string(65, '[') + std::string(65, ']')));
    CHECK(tools::json_too_deep(std::string(100000, '[')));  // unclosed: measured as far as it goes
    CHECK(tools::parse_json_bounded(std::string(100000, '[') + std::string(100000, ']')).is_discarded());
    CHECK(tools::parse_json_bounded("{\"a\":[1]}") == json{{"a", {1}}});
}

TEST_CASE("json limits: model output nested 100k deep is an error or text, never parsed", "[tools][limits]") {
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    const std::string deep_object = R"({"name": "f", "arguments": {"a": )" + deep + "}}";
    auto hermes = tools::parse_tool_calls("<tool_call>\n" + deep_object + "\n</tool_call>");
    REQUIRE_FALSE(hermes.ok());
    CHECK_THAT(hermes.error().message(), Catch::Contains("JSON nested deeper than 64 levels"));
    auto in_string =
        tools::parse_tool_calls("<tool_call>\n" + json{{"name", "f"}, {"arguments", deep}}.dump() + "\n</tool_call>");
    REQUIRE_FALSE(in_string.ok());
    CHECK_THAT(in_string.error().message(), Catch::Contains("JSON nested deeper than 64 levels"));
    auto bare = tools::parse_tool_calls(deep_object);  // not JSON we parse: plain text
    if (bare.ok()) CHECK(bare.value().calls.empty());
}

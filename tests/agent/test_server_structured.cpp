// Structured output's budget: a reply constrained from its first token (response_format json_schema, a forced tool
// call) whose request gives no max_tokens runs until its document is complete, not to default_max_tokens (16 in the
// fixture); with max_tokens, a budget too small ends with finish_reason "length" and the document as far as it got.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/agent/server_fixture.h"

using json = nlohmann::json;
using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

// A document of well over 16 tokens whatever the model samples: a long constant, then a bounded free string.
const json k_schema = json::parse(R"({"type": "object", "properties": {
    "motto": {"const": "the quick brown fox jumps over the lazy dog; 0123456789; the quick brown fox jumps over the lazy dog; 9876543210; the quick brown fox jumps over the lazy dog"},
    "note": {"type": "string", "maxLength": 12}}, "required": ["motto", "note"], "additionalProperties": false})");

json body(uint64_t seed, int max_tokens, bool as_tool) {
    json b = {
        {"messages", json::array({{{"role", "user"}, {"content", "Say it."}}})}, {"seed", seed}, {"temperature", 1}};
    if (max_tokens > 0) b["max_tokens"] = max_tokens;
    if (as_tool) {
        b["tools"] = json::array({{{"type", "function"},
                                   {"function", {{"name", "say"}, {"description", "Say"}, {"parameters", k_schema}}}}});
        b["tool_choice"] = {{"type", "function"}, {"function", {{"name", "say"}}}};
    } else {
        b["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "m"}, {"schema", k_schema}}}};
    }
    return b;
}

// The document of a reply: the content, or the forced call's arguments.
std::string document_of(const json& reply, bool as_tool) {
    const json& msg = reply["choices"][0]["message"];
    if (!as_tool) return msg["content"].get<std::string>();
    if (!msg.contains("tool_calls")) return {};
    return msg["tool_calls"][0]["function"]["arguments"].get<std::string>();
}

}  // namespace

TEST_CASE("structured output without max_tokens runs until the document is complete", "[agent][server][grammar]") {
    fixture_sizes sizes;
    sizes.n_ctx = 2048;
    fixture f({}, false, {}, sizes);
    for (const bool as_tool : {false, true}) {
        for (uint64_t seed = 1; seed <= 4; ++seed) {
            INFO((as_tool ? "tool" : "response_format") << " seed " << seed);
            auto r = request(f.port, "POST", "/v1/chat/completions", body(seed, 0, as_tool).dump());
            REQUIRE(r.status == 200);
            const json j = r.j();
            CHECK(j["usage"]["completion_tokens"].get<int>() > 16);
            CHECK(j["choices"][0]["finish_reason"] == (as_tool ? "tool_calls" : "stop"));
            const json doc = json::parse(document_of(j, as_tool), nullptr, false);
            REQUIRE(doc.is_object());
            CHECK(doc["motto"] == k_schema["properties"]["motto"]["const"]);
            CHECK(doc["note"].get<std::string>().size() <= 12 * 4);
        }
    }
    // A budget given and too small: "length", and what there is of the document (not valid JSON yet).
    auto r = request(f.port, "POST", "/v1/chat/completions", body(1, 6, false).dump());
    REQUIRE(r.status == 200);
    const json j = r.j();
    CHECK(j["choices"][0]["finish_reason"] == "length");
    CHECK(j["usage"]["completion_tokens"] == 6);
    CHECK(json::parse(document_of(j, false), nullptr, false).is_discarded());
}

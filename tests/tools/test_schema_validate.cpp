// validate_json against the grammar: for every schema keyword the grammar enforces, documents the validator
// accepts are exactly those the compiled grammar accepts (compact documents; the grammar is the reference).
#include <catch2/catch.hpp>

#include "engine/grammar.h"
#include "tools/tool.h"

using mnemos::engine::grammar;
using mnemos::tools::validate_json;
using nlohmann::json;

namespace {

struct schema_case {
    const char* schema;
    std::vector<const char*> valid;
    std::vector<const char*> invalid;
};

const std::vector<schema_case>& cases() {
    static const std::vector<schema_case> all = {
        {R"({"type":"integer","minimum":3,"maximum":7})", {"3", "7", "5"}, {"2", "8", "-5"}},
        {R"({"type":"integer","exclusiveMinimum":3,"exclusiveMaximum":7})", {"4", "6"}, {"3", "7"}},
        {R"({"type":"integer","multipleOf":5})", {"0", "15", "-10"}, {"7", "-3"}},
        {R"({"type":"number","minimum":-1,"maximum":2})", {"-1", "0.25", "1.5", "2"}, {"-2", "2.5", "-1.01"}},
        {R"({"type":"string","pattern":"^[a-z]{2}-\\d+$"})", {R"("ab-1")", R"("zz-900")"}, {R"("ab1")", R"("A-1")"}},
        {R"({"type":"string","format":"date"})",
         {R"("2024-02-29")", R"("1999-12-31")"},
         {R"("2023-02-29")", R"("2024-13-01")", R"("24-01-01")"}},
        {R"({"type":"string","format":"uuid"})",
         {R"("123e4567-e89b-12d3-a456-426614174000")"},
         {R"("123e4567e89b12d3a456426614174000")"}},
        {R"({"type":"string","format":"ipv4"})",
         {R"("192.168.0.1")", R"("0.0.0.0")"},
         {R"("256.1.1.1")", R"("1.2.3")"}},
        {R"({"type":"string","format":"email"})", {R"("a.b@example.com")"}, {R"("a@b")", R"("no at.com")"}},
        {R"({"type":"string","format":"date-time"})",
         {R"("2026-12-03T13:45:00Z")", R"("2026-12-03T13:45:00+01:00")"},
         {R"("2026-12-03 13:45:00Z")", R"("2026-12-03T25:00:00Z")"}},
        {R"({"oneOf":[{"type":"integer"},{"type":"string"}]})", {"1", R"("x")"}, {"true", "null"}},
        {R"({"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},
                     {"type":"object","properties":{"b":{"type":"string"}}}]})",
         {R"({"a":1})", R"({"a":1,"b":"x"})"},
         {R"({"b":"x"})", R"({"a":"1"})"}},
        {R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
                      "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}},
            "$ref":"#/$defs/node"})",
         {R"({"v":1})", R"({"v":1,"kids":[{"v":2,"kids":[{"v":3}]}]})"},
         {R"({"v":1,"kids":[{"w":2}]})"}},
        {R"({"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"items":false})",
         {"[1]", R"([1,"a"])"},
         {R"(["a"])", R"([1,"a",2])"}},
        {R"({"type":"object","additionalProperties":{"type":"integer"},"maxProperties":2})",
         {"{}", R"({"x":1,"y":2})"},
         {R"({"x":"1"})", R"({"x":1,"y":2,"z":3})"}},
        {R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"minProperties":1})",
         {R"({"a":1})", R"({"a":1,"b":2})"},
         {"{}", R"({"c":1})"}},
        {R"({"const":{"k":[1,2]}})", {R"({"k":[1,2]})"}, {R"({"k":[2,1]})"}},
    };
    return all;
}

bool grammar_accepts(const grammar& g, const std::string& doc) {
    auto st = g.start();
    return st.accept_bytes(doc) && st.is_complete();
}

}  // namespace

TEST_CASE("validate_json agrees with the grammar on every enforced keyword", "[tools][schema]") {
    for (const auto& c : cases()) {
        INFO("schema " << c.schema);
        const json schema = json::parse(c.schema);
        auto g = grammar::from_json_schema(schema.dump());
        REQUIRE(g.ok());
        for (const char* doc : c.valid) {
            INFO("valid " << doc);
            CHECK(grammar_accepts(**g, doc));
            const auto st = validate_json(json::parse(doc), schema);
            INFO(st.message());
            CHECK(st.ok());
        }
        for (const char* doc : c.invalid) {
            INFO("invalid " << doc);
            CHECK_FALSE(grammar_accepts(**g, doc));
            CHECK_FALSE(validate_json(json::parse(doc), schema).ok());
        }
    }
}

TEST_CASE("validate_json names the keyword and the path of the first failure", "[tools][schema]") {
    const json schema = json::parse(R"({"type":"object","properties":{
        "n":{"type":"integer","maximum":6},
        "tags":{"type":"array","items":{"type":"string","pattern":"^#"}}}})");
    auto st = validate_json(json::parse(R"({"n":9})"), schema);
    CHECK(st.message() == "$.n: more than 6 (maximum)");
    st = validate_json(json::parse(R"({"n":1,"tags":["#a","b"]})"), schema);
    CHECK(st.message() == "$.tags[1]: does not match the pattern \"^#\"");
}

TEST_CASE("validate_json: oneOf needs exactly one match; $ref cycles end in an error", "[tools][schema]") {
    const json two = json::parse(R"({"oneOf":[{"type":"integer"},{"type":"number"}]})");
    CHECK(validate_json(json(1.5), two).ok());
    CHECK(validate_json(json(2), two).message().find("matches 2 alternatives of oneOf") != std::string::npos);
    const json loop = json::parse(R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})");
    CHECK(validate_json(json(1), loop).message().find("$ref nested deeper") != std::string::npos);
    const json clash = json::parse(R"({"allOf":[{"type":"integer"},{"type":"string"}]})");
    CHECK(validate_json(json(1), clash).message() == "$: expected a string, got an integer");
    const json nowhere = json::parse(R"({"$ref":"#/$defs/missing"})");
    CHECK(validate_json(json(1), nowhere).message().find("points nowhere") != std::string::npos);
}

// JSON Schema keywords enforced by the grammar: per keyword, hand-written documents fed byte by byte
// (valid ones accepted, invalid ones rejected), and random walks over the automaton (a random byte among
// those it accepts, many seeds) whose every document must be valid under an independent validator
// (test_grammar_schema_validate.h) and must never reach a dead end.
#include <catch2/catch.hpp>
#include <random>

#include "engine/grammar.h"
#include "tests/engine/grammar_test_util.h"
#include "tests/engine/test_grammar_schema_validate.h"

using namespace mnemos;
using namespace mnemos::engine;
using namespace mnemos::engine::test_grammar;

namespace {

// A random document: at each step a random byte the automaton accepts (ASCII favoured, closing bytes
// favoured so documents stay short), or the end when the state is complete. Empty on a dead end.
std::string random_walk(const grammar& g, std::mt19937& rng) {
    grammar_state s = g.start();
    std::string doc;
    std::vector<uint8_t> ok;
    for (int step = 0; step < 20000; ++step) {
        ok.clear();
        for (int b = 0; b < 256; ++b) {
            grammar_state c = s;
            if (c.accept_byte(static_cast<uint8_t>(b))) ok.push_back(static_cast<uint8_t>(b));
        }
        const bool complete = s.is_complete();
        if (complete && (ok.empty() || rng() % 4 == 0)) return doc;
        if (ok.empty()) return {};
        std::vector<uint8_t> close, ascii;
        for (uint8_t b : ok) {
            if (b == '"' || b == ']' || b == '}') close.push_back(b);
            if (b < 0x80) ascii.push_back(b);
        }
        const std::vector<uint8_t>& pool =
            !close.empty() && rng() % 5 == 0 ? close : (!ascii.empty() && rng() % 16 != 0 ? ascii : ok);
        const uint8_t b = pool[rng() % pool.size()];
        REQUIRE(s.accept_byte(b));
        doc += static_cast<char>(b);
    }
    return {};
}

void check_random(const std::string& schema, int n_seeds = 60, const grammar_options& o = {}) {
    auto g = compile(schema, o);
    for (int seed = 0; seed < n_seeds; ++seed) {
        std::mt19937 rng(static_cast<uint32_t>(seed));
        const std::string doc = random_walk(*g, rng);
        INFO("schema " << schema << "\nseed " << seed << " document " << doc);
        REQUIRE_FALSE(doc.empty());
        CHECK(mnemos::engine::test::valid_json(doc, schema));
    }
}

void check_docs(const std::string& schema, const std::vector<std::string>& good, const std::vector<std::string>& bad,
                const grammar_options& o = {}) {
    auto g = compile(schema, o);
    for (const auto& d : good) {
        INFO(schema << " should accept " << d);
        CHECK(mnemos::engine::test::valid_json(d, schema));  // the validator agrees it is valid
        CHECK(accepts(*g, d));
    }
    for (const auto& d : bad) {
        INFO(schema << " should reject " << d);
        CHECK_FALSE(accepts(*g, d));
    }
}

const char* k_zod_email =
    R"(^(?!\\.)(?!.*\\.\\.)([A-Za-z0-9_'+\\-\\.]*)[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9\\-]*\\.)+[A-Za-z]{2,}$)";

std::string zod_tool_schema() {
    return std::string(R"({"type":"object","properties":{
      "email":{"type":"string","format":"email","pattern":")") +
           k_zod_email + R"("},
      "age":{"type":"integer","minimum":0,"maximum":150},
      "id":{"type":"integer","minimum":-9007199254740991,"maximum":9007199254740991},
      "code":{"type":"string","pattern":"^[A-Z]{3}-\\d{2,4}$"},
      "role":{"anyOf":[{"type":"string","const":"admin"},{"type":"string","const":"user"}]},
      "score":{"type":"number","exclusiveMinimum":0,"maximum":1}},
     "required":["email","age","id","code","role","score"],"additionalProperties":false})";
}

const char* k_tree_schema = R"({"$defs":{"node":{"type":"object","properties":{
    "value":{"type":"integer","minimum":0,"maximum":9},
    "children":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},
  "required":["value","children"],"additionalProperties":false}},"$ref":"#/$defs/node"})";

}  // namespace

TEST_CASE("grammar schema: integer bounds, exclusive bounds, safe-integer range", "[grammar]") {
    const std::string s1 = R"({"type":"integer","minimum":-15,"maximum":1234})";
    check_docs(s1, {"-15", "0", "7", "1234", "999", "-9"}, {"-16", "1235", "01", "12340", "1.5", "-"});
    check_random(s1);
    const std::string s2 = R"({"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":100})";
    check_docs(s2, {"1", "50", "99"}, {"0", "100", "-1"});
    check_random(s2);
    const std::string s3 = R"({"type":"integer","minimum":-9007199254740991,"maximum":9007199254740991})";
    check_docs(s3, {"9007199254740991", "-9007199254740991", "0"}, {"9007199254740992", "-9007199254740992"});
    check_random(s3);
    check_docs(R"({"type":"integer","minimum":10})", {"10", "99999"}, {"9", "-10"});
    check_docs(R"({"type":"integer","minimum":5,"exclusiveMinimum":true})", {"6"}, {"5"});  // draft 4
}

TEST_CASE("grammar schema: number bounds and multipleOf", "[grammar]") {
    const std::string s1 = R"({"type":"number","minimum":0,"maximum":1})";
    check_docs(s1, {"0", "0.5", "1", "1.0", "0.999"}, {"1.5", "-0.1", "2", "1.01", "1e0"});
    check_random(s1);
    const std::string s2 = R"({"type":"number","exclusiveMinimum":0})";
    check_docs(s2, {"0.001", "5", "5.25"}, {"0", "0.0", "-1"});
    check_random(s2);
    const std::string s3 = R"({"type":"number","minimum":-2.5,"maximum":3.5})";
    check_docs(s3, {"-2", "3", "-2.0", "3.0", "0.25"}, {"4", "-3", "3.9"});
    check_random(s3);
    const std::string s4 = R"({"type":"integer","multipleOf":7,"minimum":-30,"maximum":100})";
    check_docs(s4, {"0", "7", "98", "-28"}, {"5", "105", "-35", "1"});
    check_random(s4);
    check_random(R"({"anyOf":[{"type":"integer","minimum":100,"maximum":200},{"type":"number","maximum":-1}]})");
    check_random(R"({"type":"integer","multipleOf":3})");
}

TEST_CASE("grammar schema: pattern (the usual regex subset)", "[grammar]") {
    check_docs(R"({"type":"string","pattern":"^[a-z]{2,4}-\\d+$"})", {R"("ab-1")", R"("abcd-123")"},
               {R"("a-1")", R"("abcde-1")", R"("ab-")", R"("AB-1")"});
    check_docs(R"({"type":"string","pattern":"cat"})", {R"("a cat!")", R"("cat")"}, {R"("dog")"});
    check_docs(R"({"type":"string","pattern":"^(?:red|gr[e]{2}n|blue)?$"})", {R"("")", R"("green")"}, {R"("gren")"});
    check_docs(R"({"type":"string","pattern":"^\"[\\w ]*\"\\\\$"})", {R"("\"a b\"\\")"}, {R"("a b")"});
    check_docs(R"({"type":"string","pattern":"^[^aeiou\\s]+$"})", {R"("xyz")", "\"\xc3\xa9\""},
               {R"("xa")", R"("x y")"});
    check_docs(std::string(R"({"type":"string","pattern":")") + k_zod_email + "\"}",
               {R"("a.b@example.com")", R"("x@y.co")"}, {R"(".a@b.co")", R"("a..b@c.de")", R"("a@b.c")"});
    for (const char* p : {"^[a-z]{2,4}-\\\\d+$", "cat", "^(ab|cd)*e?$", "^.{1,5}$", "^[^\\\"\\\\\\\\]{0,3}x$",
                          "^\\\\S+\\\\s\\\\w*$", "^[\\\\u00e0-\\\\u00ff]{2}$"})
        check_random(std::string(R"({"type":"string","pattern":")") + p + "\"}");
    check_random(std::string(R"({"type":"string","pattern":")") + k_zod_email + "\"}");
    check_random(R"({"type":"string","pattern":"^[ab]*$","minLength":2,"maxLength":4})");
    check_docs(R"({"type":"string","pattern":"^[ab]*$","minLength":2,"maxLength":4})", {R"("ab")", R"("abab")"},
               {R"("a")", R"("ababa")"});
}

TEST_CASE("grammar schema: format as patterns", "[grammar]") {
    const auto f = [](const char* name) { return std::string(R"({"type":"string","format":")") + name + "\"}"; };
    check_docs(f("date"), {R"("2024-02-29")", R"("1999-12-31")"},
               {R"("2023-02-29")", R"("2024-13-01")", R"("2024-04-31")"});
    check_docs(f("time"), {R"("12:30:00Z")", R"("23:59:59.123+02:00")"}, {R"("24:00:00Z")", R"("12:30:00")"});
    check_docs(f("date-time"), {R"("2024-01-31T08:00:00Z")"}, {R"("2024-01-31 08:00:00Z")"});
    check_docs(f("uuid"), {R"("123e4567-e89b-12d3-a456-426614174000")"}, {R"("123e4567e89b12d3a456426614174000")"});
    check_docs(f("email"), {R"("jo.doe+x@mail.example.org")"}, {R"("jo@localhost")", R"("@x.com")"});
    check_docs(f("ipv4"), {R"("192.168.0.1")", R"("0.0.0.0")"}, {R"("256.1.1.1")", R"("01.1.1.1")", R"("1.1.1")"});
    check_docs(f("uri"), {R"("https://example.com/a?b=c#d")", R"("mailto:a@b.co")"}, {R"("no scheme")", R"("a b:c")"});
    for (const char* name : {"date", "time", "date-time", "uuid", "email", "ipv4", "uri"}) check_random(f(name), 40);
}

TEST_CASE("grammar schema: Zod's formats: another format or a content encoding beside a pattern is the pattern's",
          "[grammar]") {
    // What Zod 4 writes for z.string().startsWith("ab"), z.cuid(), z.base64(): a format (or contentEncoding) that is
    // not one of ours, with the pattern that enforces it.
    check_docs(R"({"type":"string","format":"starts_with","pattern":"^ab.*","maxLength":5})", {R"("ab")", R"("abxyz")"},
               {R"("ba")", R"("abxyzw")"});
    check_docs(R"({"type":"string","format":"cuid","pattern":"^[cC][0-9a-z]{6,}$","maxLength":9})", {R"("c123abc")"},
               {R"("x123abc")", R"("c12")"});
    const std::string b64 = R"({"type":"string","format":"base64","contentEncoding":"base64",
        "pattern":"^$|^(?:[0-9a-zA-Z+/]{4})*(?:(?:[0-9a-zA-Z+/]{2}==)|(?:[0-9a-zA-Z+/]{3}=))?$","maxLength":12})";
    check_docs(b64, {R"("")", R"("aGk=")", R"("aGVsbG8h")"}, {R"("aGk")", R"("a===")"});
    check_random(b64, 20);
    // A leading lookahead whose alternative ends with '$' constrains the whole string (Zod's hostname starts with
    // "^(?=.{1,253}\\.?$)"); one without it, a prefix.
    check_docs(R"({"type":"string","pattern":"^(?=.{2,4}$)[a-z]+$"})", {R"("ab")", R"("abcd")"},
               {R"("a")", R"("abcde")", R"("AB")"});
    check_docs(R"({"type":"string","pattern":"^(?=a$|b)[a-z]+$"})", {R"("a")", R"("b")", R"("bcd")"},
               {R"("ab")", R"("c")", R"("")"});
    check_random(R"({"type":"string","pattern":"^(?=.{2,4}$)[a-z]+$"})", 20);
    // Without a pattern they are still refused, naming themselves.
    for (const char* s :
         {R"({"type":"string","format":"hostname"})", R"({"type":"string","contentEncoding":"base64"})"}) {
        auto g = grammar::from_json_schema(s);
        INFO(s);
        REQUIRE_FALSE(g.ok());
        CHECK(g.error().code() == errc::unsupported);
        CHECK((g.error().message().find("hostname") != std::string::npos ||
               g.error().message().find("contentEncoding") != std::string::npos));
    }
}

TEST_CASE("grammar schema: oneOf, allOf, const and enum of any values", "[grammar]") {
    const std::string one = R"({"oneOf":[
      {"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer","minimum":0}},"required":["kind","x"]},
      {"type":"object","properties":{"kind":{"const":"b"},"y":{"type":"string","maxLength":3}},"required":["kind","y"]},
      {"type":"integer","maximum":-1}]})";
    check_docs(one, {R"({"kind":"a","x":3})", R"({"kind":"b","y":"hi"})", "-5"},
               {R"({"kind":"a","y":"hi"})", R"({"kind":"a","x":-1})", "0"});
    check_random(one);
    const std::string all = R"({"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},
      {"properties":{"b":{"type":"string","maxLength":4},"a":{"minimum":1}},"required":["b"]}]})";
    check_docs(all, {R"({"a":1,"b":"x"})", R"({"b":"","a":7})"}, {R"({"a":1})", R"({"a":0,"b":"x"})"});
    check_random(all);
    const std::string lits = R"({"enum":[{"a":1},{"a":2,"b":[true,null]},"x",[1,2]]})";
    check_docs(lits, {R"({"a":1})", R"({"b":[true,null],"a":2})", R"("x")", "[1,2]", "[1, 2]"},
               {R"({"a":3})", R"({"a":1,"b":[true,null]})", "[2,1]"});
    check_random(lits);
    check_docs(R"({"const":{"k":[1,{"z":false}]}})", {R"({"k":[1,{"z":false}]})"}, {R"({"k":[1]})"});
}

TEST_CASE("grammar schema: $ref, $defs and depth-bounded recursion", "[grammar]") {
    check_docs(k_tree_schema, {R"({"value":1,"children":[]})", R"({"value":1,"children":[{"value":2,"children":[]}]})"},
               {R"({"value":10,"children":[]})", R"({"value":1})"});
    check_random(k_tree_schema, 40);
    grammar_options o;
    o.max_recursion = 2;
    auto g = compile(k_tree_schema, o);
    CHECK(accepts(*g, R"({"value":1,"children":[{"value":2,"children":[]}]})"));
    CHECK_FALSE(accepts(*g, R"({"value":1,"children":[{"value":2,"children":[{"value":3,"children":[]}]}]})"));
    check_random(k_tree_schema, 40, o);
    // Zod 4's z.lazy() tree: the root refers to itself.
    const std::string zod_tree = R"({"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
      "properties":{"name":{"type":"string","maxLength":8},"children":{"type":"array","items":{"$ref":"#"}}},
      "required":["name","children"],"additionalProperties":false})";
    check_random(zod_tree, 30);
    check_random(R"({"definitions":{"p":{"type":"integer","minimum":1,"maximum":3}},
      "type":"array","items":{"$ref":"#/definitions/p"},"maxItems":3})");
    auto linked =
        grammar::from_json_schema(R"({"$defs":{"n":{"type":"object","properties":{"next":{"$ref":"#/$defs/n"}},
      "required":["next"]}},"$ref":"#/$defs/n"})");
    REQUIRE_FALSE(linked.ok());  // no finite instance
    CHECK(linked.error().message().find("recursion") != std::string::npos);
}

TEST_CASE("grammar schema: prefixItems, maps, min/maxProperties", "[grammar]") {
    const std::string tuple = R"({"type":"array","prefixItems":[{"type":"string","maxLength":3},
      {"type":"integer","minimum":1,"maximum":5}],"items":false})";
    check_docs(tuple, {R"(["ab",3])", R"(["ab"])", "[]"}, {R"(["ab",3,4])", R"([3,"ab"])", R"(["ab",9])"});
    check_random(tuple);
    const std::string map = R"({"type":"object","additionalProperties":{"type":"integer","minimum":0},
      "propertyNames":{"type":"string","pattern":"^[a-z]+$"},"minProperties":1,"maxProperties":3})";
    check_docs(map, {R"({"a":1})", R"({"ab":0,"c":5,"d":9})"},
               {"{}", R"({"A":1})", R"({"a":-1})", R"({"a":1,"b":2,"c":3,"d":4})"});
    check_random(map);
    const std::string props = R"({"type":"object","properties":{"a":{"type":"null"},"b":{"type":"null"},
      "c":{"type":"null"}},"minProperties":2,"maxProperties":2})";
    check_docs(props, {R"({"a":null,"c":null})"}, {R"({"a":null})", R"({"a":null,"b":null,"c":null})"});
    check_random(props);
    // additionalProperties true beside properties: only the declared keys are written (conservative).
    check_random(R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":true})");
}

TEST_CASE("grammar schema: Zod-shaped tool parameters", "[grammar]") {
    const std::string s = zod_tool_schema();
    check_docs(s,
               {R"({"email":"a@b.co","age":30,"id":-5,"code":"ABC-12","role":"user","score":0.5})",
                R"({"role":"admin","score":1,"code":"XYZ-9999","id":0,"age":0,"email":"x.y@z.org"})"},
               {R"({"email":"a@b.co","age":151,"id":1,"code":"ABC-12","role":"user","score":0.5})",
                R"({"email":"a@b.co","age":3,"id":1,"code":"ABC-12","role":"root","score":0.5})",
                R"({"email":"a@b.co","age":3,"id":1,"code":"ABC-12","role":"user","score":0})"});
    check_random(s, 60);
}

TEST_CASE("grammar schema: what cannot be enforced is an error naming the keyword and path", "[grammar]") {
    const auto err = [](const std::string& schema) {
        auto g = grammar::from_json_schema(schema);
        REQUIRE_FALSE(g.ok());
        return g.error();
    };
    auto e = err(R"({"type":"object","properties":{"n":{"type":"number","multipleOf":0.5}}})");
    CHECK(e.code() == errc::unsupported);
    CHECK(e.message().find("multipleOf") != std::string::npos);
    CHECK(e.message().find("#/properties/n") != std::string::npos);
    e = err(R"({"type":"string","pattern":"(?<=a)b"})");
    CHECK(e.message().find("lookbehind") != std::string::npos);
    e = err(R"({"type":"string","pattern":"a\\bb"})");
    CHECK(e.message().find("word boundary") != std::string::npos);
    e = err(R"J({"type":"string","pattern":"a(?=b)"})J");
    CHECK(e.message().find("lookahead") != std::string::npos);
    e = err(R"({"$ref":"https://example.com/s.json"})");
    CHECK(e.message().find("$ref") != std::string::npos);
    e = err(R"({"$ref":"#/$defs/missing"})");
    CHECK(e.code() == errc::invalid_argument);
    e = err(R"({"type":"object","properties":{"a":{"type":"string","not":{"const":"x"}}}})");
    CHECK(e.message().find("'not'") != std::string::npos);
    CHECK(e.message().find("#/properties/a") != std::string::npos);
    CHECK(grammar::from_json_schema(R"({"type":"integer","deprecated":true,"readOnly":true,"writeOnly":false,
      "examples":[1],"default":1,"$comment":"c","title":"t","description":"d"})")
              .ok());
}

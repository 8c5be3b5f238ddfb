// Schema-constrained decoding: the byte automaton on hand-written documents for every schema feature,
// the token mask against a per-token brute force, and end-to-end runs of the engine with random-weight
// models (constrained from the first token, temperature 1): every output must parse and validate.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "engine/engine.h"
#include "engine/grammar.h"
#include "engine/src/grammar_json.h"
#include "engine/tokenizer.h"
#include "tests/engine/grammar_test_util.h"
#include "tests/support/tiny_model.h"

using namespace mnemos;
using namespace mnemos::engine;
using namespace mnemos::engine::test_grammar;

namespace {

// A valid prefix (every byte accepted; maybe incomplete).
bool prefix_ok(const grammar& g, std::string_view doc) {
    grammar_state s = g.start();
    return s.accept_bytes(doc);
}

size_t utf8_len(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

// A validator for the schema subset, independent of the automaton.
bool validate(const json_value& v, const json_value& s) {
    if (s.kind == json_value::k_bool) return s.boolean;
    if (const json_value* any = s.find("anyOf")) {
        for (const auto& a : any->array)
            if (validate(v, a)) return true;
        return false;
    }
    if (const json_value* c = s.find("const")) return v.dump() == c->dump();
    if (const json_value* e = s.find("enum")) {
        for (const auto& x : e->array)
            if (v.dump() == x.dump()) return true;
        return false;
    }
    const json_value* t = s.find("type");
    if (t && t->kind == json_value::k_array) {
        for (const auto& ty : t->array) {
            json_value c = s;
            for (auto& [k, x] : c.object)
                if (k == "type") x = ty;
            if (validate(v, c)) return true;
        }
        return false;
    }
    const std::string type = t ? t->str : "";
    const auto num = [&](const char* k, double dflt) {
        const json_value* x = s.find(k);
        return x ? x->number : dflt;
    };
    if (type == "string") {
        return v.kind == json_value::k_string && utf8_len(v.str) <= num("maxLength", 1e9) &&
               utf8_len(v.str) >= num("minLength", 0);
    }
    if (type == "integer") return v.kind == json_value::k_number && v.str.find_first_of(".eE") == std::string::npos;
    if (type == "number") return v.kind == json_value::k_number;
    if (type == "boolean") return v.kind == json_value::k_bool;
    if (type == "null") return v.kind == json_value::k_null;
    if (type == "array" || (!t && s.find("items"))) {
        if (v.kind != json_value::k_array) return false;
        if (v.array.size() < num("minItems", 0) || v.array.size() > num("maxItems", 1e9)) return false;
        if (const json_value* it = s.find("items"))
            for (const auto& x : v.array)
                if (!validate(x, *it)) return false;
        return true;
    }
    if (type == "object" || (!t && s.find("properties"))) {
        if (v.kind != json_value::k_object) return false;
        const json_value* props = s.find("properties");
        if (!props) return true;
        std::vector<std::string> seen;
        for (const auto& [k, x] : v.object) {
            if (std::find(seen.begin(), seen.end(), k) != seen.end()) return false;  // duplicate
            seen.push_back(k);
            const json_value* ps = props->find(k);
            if (!ps || !validate(x, *ps)) return false;
        }
        if (const json_value* req = s.find("required"))
            for (const auto& r : req->array)
                if (std::find(seen.begin(), seen.end(), r.str) == seen.end()) return false;
        return true;
    }
    return true;  // {}
}

bool parses_and_validates(const std::string& doc, const std::string& schema) {
    json_value v, s;
    std::string err;
    if (!json_value::parse(doc, v, err)) return false;
    REQUIRE(json_value::parse(schema, s, err));
    return validate(v, s);
}

const char* k_tool_call_schema = R"({"type":"object","properties":{
  "name":{"enum":["get_weather","roll_dice"]},
  "arguments":{"type":"object","properties":{
    "city":{"type":"string","maxLength":12},
    "days":{"type":"integer"},
    "metric":{"type":"boolean"},
    "unit":{"enum":["c","f", 3]},
    "tags":{"type":"array","items":{"type":"string","maxLength":6},"maxItems":3},
    "where":{"type":"object","properties":{"lat":{"type":"number"},"lon":{"type":"number"},"note":{"type":"null"}},
             "required":["lat","lon"]}},
   "required":["city","days","metric","unit","tags","where"]}},
 "required":["name","arguments"]})";

const char* k_array_schema = R"({"type":"array","minItems":1,"maxItems":3,"items":{"type":"object",
  "properties":{"id":{"type":"integer"},"label":{"type":"string","maxLength":8},"ok":{"type":"boolean"}},
  "required":["id"]}})";

const char* k_any_of_schema = R"({"anyOf":[
  {"type":"object","properties":{"name":{"const":"add"},"x":{"type":"integer"}},"required":["name","x"]},
  {"type":"object","properties":{"name":{"const":"say"},"text":{"type":"string","maxLength":5}},"required":["name","text"]},
  {"type":"null"},
  {"type":"array","items":{"type":"number"},"maxItems":4}]})";

const char* k_any_schema = "{}";

grammar_options small_caps() {
    grammar_options o;
    o.max_string_chars = 6;
    o.max_array_items = 3;
    o.max_any_items = 2;
    o.max_any_depth = 2;
    o.max_int_digits = 4;
    o.max_frac_digits = 3;
    o.max_exp_digits = 2;
    return o;
}

std::string grammar_tmp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("mnemos-gram-" + std::to_string(::getpid()) + "-" + name))
        .string();
}

std::shared_ptr<const model> tiny_model(const std::string& tok) {
    test::tiny_model_options o;
    o.tokenizer = tok;
    o.n_layer = 1;
    o.n_embd = 64;
    o.n_head = 2;
    o.n_head_kv = 1;
    o.n_ff = 128;
    const std::string path = grammar_tmp_path(tok + ".gguf");
    REQUIRE(test::write_tiny_model(path, o));
    auto m = model::load(path);
    REQUIRE(m.ok());
    std::filesystem::remove(path);
    return std::shared_ptr<const model>(std::move(m.value()));
}

// Runs n_seeds constrained generations of each schema in one batch; every output must be a complete,
// valid document.
void run_constrained(std::shared_ptr<const model> m, int n_seeds) {
    engine_options eo;
    eo.n_threads = 2;
    eo.n_ctx = 512;
    eo.max_seqs = 16;
    eo.kv_bytes = size_t(256) << 20;
    auto e = mnemos::engine::engine::create(m, eo);
    REQUIRE(e.ok());
    const tokenizer& tk = m->tok();
    const std::vector<std::string> schemas = {k_tool_call_schema, k_array_schema, k_any_of_schema, k_any_schema};
    struct out {
        std::string schema, text;
        finish_info info;
    };
    std::vector<out> outs(schemas.size() * static_cast<size_t>(n_seeds));
    const std::vector<token_id> prompt = tk.encode("Call a tool:", tk.add_bos_default(), false);
    for (size_t si = 0; si < schemas.size(); ++si) {
        const auto g = compile(schemas[si], small_caps());
        for (int seed = 0; seed < n_seeds; ++seed) {
            out& o = outs[si * static_cast<size_t>(n_seeds) + static_cast<size_t>(seed)];
            o.schema = schemas[si];
            request r;
            r.prompt = prompt;
            r.max_tokens = 384;
            r.sampling.temperature = 1.0f;
            r.sampling.top_k = 0;
            r.sampling.top_p = 1.0f;
            r.sampling.min_p = 0.0f;
            r.sampling.seed = 1000 + static_cast<uint64_t>(seed);
            r.constraint = g;
            r.on_finish = [&o](const finish_info& info) { o.info = info; };
            (*e)->submit(std::move(r));
        }
    }
    (*e)->run_until_idle();
    int n_ok = 0, n_eos = 0;
    for (auto& o : outs) {
        for (token_id t : o.info.tokens)
            if (!tk.is_eog(t)) o.text += tk.token_to_piece(t, false);
        INFO("schema " << o.schema << "\noutput " << o.text << "\nreason " << finish_reason_name(o.info.reason)
                       << " tokens " << o.info.n_generated << " " << o.info.error.to_string());
        CHECK((o.info.reason == finish_reason::stop_string || o.info.reason == finish_reason::eos));
        const bool valid = parses_and_validates(o.text, o.schema);
        CHECK(valid);
        n_ok += valid;
        n_eos += o.info.reason == finish_reason::eos;
    }
    CHECK(n_ok == static_cast<int>(outs.size()));
    WARN("constrained outputs valid: " << n_ok << "/" << outs.size() << " (ended by EOS: " << n_eos << "), e.g. "
                                       << outs[0].text);
}

}  // namespace

TEST_CASE("grammar: strings, escapes, UTF-8 and maxLength", "[grammar]") {
    auto g = compile(R"({"type":"string","maxLength":5})");
    CHECK(accepts(*g, R"("")"));
    CHECK(accepts(*g, R"("abc")"));
    CHECK(accepts(*g, R"("\"\\\/\b")"));
    CHECK(accepts(*g, R"("\f\n\r\t\u00e9")"));
    CHECK(accepts(*g, "\"h\xc3\xa9llo\""));      // é counts as one character
    CHECK(accepts(*g, "\"\xf0\x9f\x98\x80\""));  // a 4-byte character
    CHECK_FALSE(accepts(*g, R"("abcdef")"));     // 6 > maxLength
    CHECK_FALSE(prefix_ok(*g, R"("\x")"));       // bad escape
    CHECK_FALSE(prefix_ok(*g, R"("\u12g4")"));   // bad hex
    CHECK_FALSE(prefix_ok(*g, R"("\ud800")"));   // no surrogate escapes
    CHECK(accepts(*g, R"("\uD7FF")"));
    CHECK_FALSE(prefix_ok(*g, "\"a\nb\""));          // raw control character
    CHECK_FALSE(prefix_ok(*g, "\"\xc0\x80\""));      // overlong UTF-8
    CHECK_FALSE(prefix_ok(*g, "\"\xed\xa0\x80\""));  // UTF-16 surrogate in UTF-8
    CHECK_FALSE(prefix_ok(*g, "\"\xff\""));
    CHECK_FALSE(accepts(*g, R"("abc)"));  // incomplete
    CHECK(prefix_ok(*g, R"("abc)"));
    CHECK_FALSE(prefix_ok(*g, R"("abc" )"));  // nothing after the document
    auto mn = compile(R"({"type":"string","minLength":2})");
    CHECK_FALSE(prefix_ok(*mn, R"("a")"));
    CHECK(accepts(*mn, R"("ab")"));

    grammar_options o;
    o.max_string_chars = 3;
    auto capped = compile(R"({"type":"string"})", o);
    CHECK(accepts(*capped, R"("abc")"));
    CHECK_FALSE(prefix_ok(*capped, R"("abcd)"));
}

TEST_CASE("grammar: numbers, integers, booleans, null", "[grammar]") {
    auto n = compile(R"({"type":"number"})");
    for (const char* ok : {"0", "-0", "12", "-3.25", "1e5", "2.5E-3", "7e+2", "0.5"}) {
        INFO(ok);
        CHECK(accepts(*n, ok));
    }
    for (const char* bad : {"01", "1.", "-", ".5", "1e", "+1", "1.e3", "--1", "1x"}) {
        INFO(bad);
        CHECK_FALSE(accepts(*n, bad));
    }
    grammar_state s = n->start();
    REQUIRE(s.accept_bytes("12"));
    CHECK(s.is_complete());
    CHECK(s.can_continue());  // more digits may follow

    auto i = compile(R"({"type":"integer"})");
    CHECK(accepts(*i, "-42"));
    CHECK_FALSE(prefix_ok(*i, "4.2"));
    CHECK_FALSE(prefix_ok(*i, "4e2"));
    grammar_options o;
    o.max_int_digits = 3;
    auto capped = compile(R"({"type":"integer"})", o);
    CHECK(accepts(*capped, "999"));
    CHECK_FALSE(prefix_ok(*capped, "1000"));
    grammar_state full = capped->start();
    REQUIRE(full.accept_bytes("999"));
    CHECK(full.is_complete());
    CHECK_FALSE(full.can_continue());

    auto b = compile(R"({"type":"boolean"})");
    CHECK(accepts(*b, "true"));
    CHECK(accepts(*b, "false"));
    CHECK_FALSE(prefix_ok(*b, "tru3"));
    CHECK_FALSE(accepts(*b, "null"));
    auto nl = compile(R"({"type":"null"})");
    CHECK(accepts(*nl, "null"));
    grammar_state done = nl->start();
    REQUIRE(done.accept_bytes("null"));
    CHECK(done.is_complete());
    CHECK_FALSE(done.can_continue());
}

TEST_CASE("grammar: enum and const", "[grammar]") {
    auto e = compile(R"({"enum":["red","green","a\"b",1,12,true,null]})");
    CHECK(accepts(*e, R"("red")"));
    CHECK(accepts(*e, R"("a\"b")"));
    CHECK(accepts(*e, "1"));
    CHECK(accepts(*e, "12"));
    CHECK(accepts(*e, "true"));
    CHECK(accepts(*e, "null"));
    CHECK_FALSE(prefix_ok(*e, R"("blue")"));
    CHECK_FALSE(prefix_ok(*e, "13"));
    CHECK_FALSE(prefix_ok(*e, "false"));
    auto c = compile(R"({"const":"x"})");
    CHECK(accepts(*c, R"("x")"));
    CHECK_FALSE(prefix_ok(*c, R"("y")"));
}

TEST_CASE("grammar: objects, required and optional properties, whitespace", "[grammar]") {
    auto g = compile(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},
                         "c":{"type":"object","properties":{"d":{"type":"boolean"}},"required":["d"]}},
                         "required":["a"]})");
    CHECK(accepts(*g, R"({"a":1})"));
    CHECK(accepts(*g, R"({"a": 1, "b": "x"})"));
    CHECK(accepts(*g, R"({"b":"x","a":1})"));  // any order
    CHECK(accepts(*g, R"({"c":{"d":true},"a":-5})"));
    CHECK_FALSE(prefix_ok(*g, R"({"b":"x"})"));  // a is required
    CHECK_FALSE(prefix_ok(*g, R"({})"));
    CHECK_FALSE(prefix_ok(*g, R"({"a":1,"a":2})"));   // each key once
    CHECK_FALSE(prefix_ok(*g, R"({"z":1})"));         // no additional properties
    CHECK_FALSE(prefix_ok(*g, R"({"a":1,"c":{}})"));  // nested required
    CHECK_FALSE(prefix_ok(*g, R"({ "a":1})"));        // no space after '{'
    CHECK_FALSE(prefix_ok(*g, R"({"a":  1})"));       // at most one space
    CHECK_FALSE(prefix_ok(*g, "{\"a\":\n1}"));        // no newlines
    CHECK_FALSE(prefix_ok(*g, R"({"a" :1})"));
    CHECK_FALSE(prefix_ok(*g, R"({"a":1,})"));
    grammar_state s = g->start();
    REQUIRE(s.accept_bytes(R"({"a":1,"b":"","c":{"d":false}})"));
    CHECK(s.is_complete());
    CHECK_FALSE(s.can_continue());

    auto empty = compile(R"({"type":"object","properties":{}})");
    CHECK(accepts(*empty, "{}"));
    auto free = compile(R"({"type":"object"})");
    CHECK(accepts(*free, R"({"anything":[1,{"x":null}],"y":"z"})"));
    CHECK_FALSE(prefix_ok(*g, R"({"a":1}})"));
}

TEST_CASE("grammar: arrays with items, minItems, maxItems", "[grammar]") {
    auto g = compile(R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})");
    CHECK(accepts(*g, "[1]"));
    CHECK(accepts(*g, "[1, 2,3]"));
    CHECK_FALSE(prefix_ok(*g, "[]"));
    CHECK_FALSE(prefix_ok(*g, "[1,2,3,"));
    CHECK_FALSE(prefix_ok(*g, "[\"a\"]"));
    auto objs = compile(R"({"type":"array","items":{"type":"object","properties":{"k":{"enum":["x","y"]}},
                            "required":["k"]}})");
    CHECK(accepts(*objs, "[]"));
    CHECK(accepts(*objs, R"([{"k":"x"}, {"k":"y"}])"));
    CHECK_FALSE(prefix_ok(*objs, R"([{"k":"z"}])"));
    grammar_options o;
    o.max_array_items = 2;
    auto capped = compile(R"({"type":"array","items":{"type":"null"}})", o);
    CHECK(accepts(*capped, "[null,null]"));
    CHECK_FALSE(prefix_ok(*capped, "[null,null,"));
}

TEST_CASE("grammar: anyOf, type lists, and the any-value schema", "[grammar]") {
    auto g = compile(k_any_of_schema);
    CHECK(accepts(*g, R"({"name":"add","x":3})"));
    CHECK(accepts(*g, R"({"x":3,"name":"add"})"));
    CHECK(accepts(*g, R"({"name":"say","text":"hi"})"));
    CHECK(accepts(*g, "null"));
    CHECK(accepts(*g, "[1.5,2]"));
    CHECK_FALSE(prefix_ok(*g, R"({"name":"add","text")"));  // text belongs to the other alternative
    CHECK_FALSE(prefix_ok(*g, R"({"x":3,"name":"say")"));   // x rules out "say"
    CHECK_FALSE(prefix_ok(*g, R"({"name":"add"})"));        // x is required
    CHECK_FALSE(prefix_ok(*g, "true"));

    // Tool-call style: a const name decides which arguments schema follows.
    auto calls = compile(R"({"anyOf":[
      {"type":"object","properties":{"name":{"const":"dice"},"arguments":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}},"required":["name","arguments"]},
      {"type":"object","properties":{"name":{"const":"note"},"arguments":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}},"required":["name","arguments"]}]})");
    CHECK(accepts(*calls, R"({"name":"dice","arguments":{"n":3}})"));
    CHECK(accepts(*calls, R"({"name":"note", "arguments":{"text":"x"}})"));
    CHECK_FALSE(prefix_ok(*calls, R"({"name":"dice","arguments":{"text")"));
    CHECK_FALSE(prefix_ok(*calls, R"({"arguments")"));  // undecided until the name is known
    // Alternatives that differ without a discriminator: a key is allowed once the live ones agree.
    auto amb = compile(R"({"anyOf":[{"type":"object","properties":{"a":{"type":"string"},"s":{"type":"null"}}},
                                     {"type":"object","properties":{"a":{"type":"integer"},"i":{"type":"null"}}}]})");
    CHECK(accepts(*amb, R"({"s":null,"a":"x"})"));
    CHECK(accepts(*amb, R"({"i":null,"a":1})"));
    CHECK(accepts(*amb, "{}"));
    CHECK_FALSE(prefix_ok(*amb, R"({"a")"));
    // Nothing decides: the first alternative's schema is taken rather than a dead end.
    auto undecided = compile(R"({"anyOf":[{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]},
                                          {"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}]})");
    CHECK(accepts(*undecided, R"({"a":"x"})"));
    grammar_state open = undecided->start();
    REQUIRE(open.accept_bytes("{"));
    CHECK(open.can_continue());

    auto tl = compile(R"({"type":["string","integer","null"]})");
    CHECK(accepts(*tl, R"("s")"));
    CHECK(accepts(*tl, "5"));
    CHECK(accepts(*tl, "null"));
    CHECK_FALSE(prefix_ok(*tl, "5.5"));
    auto mixed = compile(R"({"anyOf":[{"type":"integer"},{"type":"number"},{"enum":["x"]},{"type":"boolean"}]})");
    CHECK(accepts(*mixed, "5.5"));
    CHECK(accepts(*mixed, R"("x")"));
    CHECK(accepts(*mixed, "false"));

    auto any = compile("{}");
    for (const char* doc : {"1", "\"s\"", "null", "true", "[]", "{}", R"({"a":[1,{"b":null}],"c":"d"})", "[[1],[2]]"}) {
        INFO(doc);
        CHECK(accepts(*any, doc));
    }
    CHECK_FALSE(prefix_ok(*any, "{1:2}"));
    CHECK_FALSE(prefix_ok(*any, "[1,]"));
}

TEST_CASE("grammar: leading whitespace before the document", "[grammar]") {
    grammar_options o;
    o.max_leading_whitespace = 2;
    auto g = compile(R"({"type":"object","properties":{"a":{"type":"integer"}}})", o);
    CHECK(accepts(*g, "\n{\"a\":1}"));
    CHECK(accepts(*g, " \n{}"));
    CHECK_FALSE(prefix_ok(*g, "\n\n\n{}"));
    CHECK_FALSE(prefix_ok(*g, "\t{}"));
    auto strict = compile(R"({"type":"object"})");
    CHECK_FALSE(prefix_ok(*strict, "\n{}"));
}

TEST_CASE("grammar: schema errors name the keyword and the path", "[grammar]") {
    auto bad =
        grammar::from_json_schema(R"({"type":"object","properties":{"a":{"type":"string","pattern":"(x)\\1"}}})");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code() == errc::unsupported);
    CHECK(bad.error().message().find("pattern") != std::string::npos);
    CHECK(bad.error().message().find("backreference") != std::string::npos);
    CHECK(bad.error().message().find("#/properties/a") != std::string::npos);
    auto notjson = grammar::from_json_schema("{\"type\":");
    REQUIRE_FALSE(notjson.ok());
    CHECK(notjson.error().code() == errc::invalid_argument);
    auto req = grammar::from_json_schema(R"({"type":"object","properties":{},"required":["x"]})");
    REQUIRE_FALSE(req.ok());
    CHECK(req.error().message().find("'x'") != std::string::npos);
    auto range = grammar::from_json_schema(R"({"type":"array","minItems":3,"maxItems":1})");
    CHECK_FALSE(range.ok());
    auto ap = grammar::from_json_schema(R"({"type":"object","properties":{},"additionalProperties":3})");
    REQUIRE_FALSE(ap.ok());
    CHECK(ap.error().message().find("additionalProperties") != std::string::npos);
    auto fmt = grammar::from_json_schema(R"({"type":"object","properties":{"h":{"type":"string","format":"ipv6"}}})");
    REQUIRE_FALSE(fmt.ok());
    CHECK(fmt.error().code() == errc::unsupported);
    CHECK(fmt.error().message().find("#/properties/h/format") != std::string::npos);
    auto nk =
        grammar::from_json_schema(R"({"type":"object","properties":{"a":{"type":"object","patternProperties":{}}}})");
    REQUIRE_FALSE(nk.ok());
    CHECK(nk.error().message().find("'patternProperties'") != std::string::npos);
    CHECK(nk.error().message().find("#/properties/a") != std::string::npos);
    auto arrays = grammar::from_json_schema(
        R"({"anyOf":[{"type":"array","items":{"type":"string"}},{"type":"array","items":{"type":"integer"}}]})");
    CHECK_FALSE(arrays.ok());
    CHECK(grammar::from_json_schema(R"({"type":"string","description":"ignored","title":"t"})").ok());
}

// The builder's mask against a brute-force check of every token, for several grammar states.
static void check_mask_matches(const tokenizer& tk) {
    token_mask_builder mb(tk);
    auto g = compile(k_tool_call_schema, small_caps());
    const std::vector<std::string> prefixes = {"",
                                               "{",
                                               R"({"name":"get_)",
                                               R"({"name":"roll_dice","arguments":{"ci)",
                                               R"({"name":"roll_dice","arguments":{"city":")",
                                               R"({"name":"roll_dice","arguments":{"city":"Par)",
                                               R"({"name":"roll_dice","arguments":{"city":"Paris)",
                                               R"({"name":"roll_dice","arguments":{"city":"Pa\)",
                                               R"({"name":"roll_dice","arguments":{"city":"\u00)",
                                               "{\"name\":\"roll_dice\",\"arguments\":{\"city\":\"\xc3",
                                               R"({"name":"roll_dice","arguments":{"days":1)",
                                               R"({"name":"roll_dice","arguments":{"days":12,)",
                                               R"({"name":"roll_dice","arguments":{"tags":["a", )"};
    std::vector<uint64_t> mask;
    for (const auto& p : prefixes) {
        grammar_state s = g->start();
        REQUIRE(s.accept_bytes(p));
        mb.fill(s, mask);
        int n_allowed = 0, n_mismatch = 0;
        for (token_id t = 0; t < tk.n_vocab(); ++t) {
            const bool bit = mask[static_cast<size_t>(t) / 64] >> (t % 64) & 1;
            bool expect;
            if (tk.is_eog(t)) {
                expect = s.is_complete();
            } else {
                const std::string piece = tk.token_to_piece(t, false);
                grammar_state c = s;
                expect = !piece.empty() && c.accept_bytes(piece);
            }
            n_allowed += bit;
            n_mismatch += bit != expect;
        }
        INFO("prefix " << p);
        CHECK(n_mismatch == 0);
        CHECK(n_allowed > 0);
    }
    // A complete document: only end-of-generation tokens.
    auto nl = compile(R"({"type":"null"})");
    grammar_state s = nl->start();
    REQUIRE(s.accept_bytes("null"));
    mb.fill(s, mask);
    int n_bad = 0;
    for (token_id t = 0; t < tk.n_vocab(); ++t)
        n_bad += bool(mask[static_cast<size_t>(t) / 64] >> (t % 64) & 1) != tk.is_eog(t);
    CHECK(n_bad == 0);
}

TEST_CASE("grammar: the token mask equals a per-token check", "[grammar]") {
    for (const char* tokname : {"gpt2", "llama"}) {
        INFO(tokname);
        auto m = tiny_model(tokname);
        check_mask_matches(m->tok());
    }
}

TEST_CASE("grammar: constrained generation with tiny random models always yields valid JSON", "[grammar]") {
    for (const char* tokname : {"gpt2", "llama"}) {
        INFO(tokname);
        run_constrained(tiny_model(tokname), 20);
    }
}

TEST_CASE("grammar: a trigger string starts the constraint mid-output", "[grammar]") {
    auto m = tiny_model("gpt2");
    engine_options eo;
    eo.n_threads = 2;
    auto e = mnemos::engine::engine::create(m, eo);
    REQUIRE(e.ok());
    const tokenizer& tk = m->tok();
    auto g = compile(R"({"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]})", small_caps());
    int n_triggered = 0;
    for (int seed = 0; seed < 10; ++seed) {
        request r;
        r.prompt = tk.encode("Once upon a time", false, false);
        r.max_tokens = 120;
        r.sampling.temperature = 1.0f;
        r.sampling.seed = static_cast<uint64_t>(seed);
        r.constraint = g;
        r.constraint_trigger = "e";  // common in the tiny vocabulary's text
        finish_info info;
        r.on_finish = [&](const finish_info& i) { info = i; };
        (*e)->submit(std::move(r));
        (*e)->run_until_idle();
        // Find the token that completes the first trigger; when it carries bytes after the trigger the
        // engine leaves the output free (those bytes may not start a document), so only count clean ones.
        std::string text, after;
        bool found = false, clean = false;
        for (token_id t : info.tokens) {
            if (tk.is_eog(t)) continue;
            const std::string piece = tk.token_to_piece(t, false);
            if (found) {
                after += piece;
                continue;
            }
            text += piece;
            if (text.find('e') != std::string::npos) {
                found = true;
                clean = piece.back() == 'e' && piece.find('e') == piece.size() - 1;
            }
        }
        if (!clean) continue;
        n_triggered++;
        // After the first trigger comes a valid prefix of a document, complete unless the budget ran out.
        grammar_state s = g->start();
        size_t k = 0;
        while (k < after.size() && s.accept_byte(static_cast<uint8_t>(after[k]))) {
            ++k;
            if (s.is_complete() && !s.can_continue()) break;
        }
        INFO(text);
        CHECK((s.ok() || k == after.size()));
        if (info.reason != finish_reason::length) CHECK(s.is_complete());
    }
    CHECK(n_triggered > 0);
}

TEST_CASE("grammar: constrained generation with smollm (49k vocab) always yields valid JSON", "[grammar][model]") {
    const std::string path = std::string(MNEMOS_SHARED_DIR) + "/models/smollm-bpe-r-q4_k_m.gguf";
    if (!std::filesystem::exists(path)) {
        WARN("skipped: no " << path);
        return;
    }
    auto m = model::load(path);
    REQUIRE(m.ok());
    std::shared_ptr<const model> mdl(std::move(m.value()));
    check_mask_matches(mdl->tok());
    run_constrained(mdl, 20);
}

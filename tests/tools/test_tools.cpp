// Tool registry and validation, tool-call parsing in every native format (including malformed and truncated
// text), the Hermes tool prompt, and the built-in tools.
#include <catch2/catch.hpp>
#include <optional>

#include "tools/builtins.h"
#include "tools/prompt.h"
#include "tools/tool.h"
#include "tools/tool_call_parser.h"

using namespace mnemos;
using namespace mnemos::tools;
using nlohmann::json;

namespace {

// Runs a registry call whose handler completes synchronously.
result<json> call_sync(const tool_registry& reg, const std::string& name, const json& args) {
    std::optional<result<json>> out;
    int n_calls = 0;
    reg.call(name, args, [&](result<json> r) {
        n_calls++;
        out.emplace(std::move(r));
    });
    REQUIRE(n_calls == 1);
    return std::move(*out);
}

tool echo_tool(int* n_runs) {
    tool t;
    t.name = "echo";
    t.description = "Echo the arguments.";
    t.parameters = json::parse(R"({"type":"object","properties":{
        "text":{"type":"string","maxLength":5},
        "n":{"type":"integer"},
        "mode":{"enum":["a","b"]},
        "tags":{"type":"array","items":{"type":"string"},"maxItems":2},
        "pos":{"type":"object","properties":{"x":{"type":"number"}},"required":["x"]},
        "opt":{"type":["string","null"]}},
        "required":["text","n"]})");
    t.handler = [n_runs](const json& args, tool_done done) {
        ++*n_runs;
        done(args);
    };
    return t;
}

struct fixed_history final : history_source_i {
    std::vector<history_event> evs;
    result<std::vector<history_event>> events(const std::string& session, uint64_t from, uint64_t to) override {
        if (session != "s1") return make_error(errc::not_found, "no session " + session);
        std::vector<history_event> out;
        for (const auto& e : evs)
            if (e.seq >= from && e.seq < to) out.push_back(e);
        return out;
    }
};

std::chrono::system_clock::time_point at(int64_t unix_s) {
    return std::chrono::system_clock::time_point(std::chrono::seconds(unix_s));
}

}  // namespace

TEST_CASE("registry: add checks names, handlers and schemas", "[tools]") {
    tool_registry reg;
    int runs = 0;
    REQUIRE(reg.add(echo_tool(&runs)).ok());
    CHECK(reg.add(echo_tool(&runs)).code() == errc::invalid_argument);  // duplicate
    tool bad = echo_tool(&runs);
    bad.name = "has space";
    CHECK(reg.add(bad).code() == errc::invalid_argument);
    tool nohandler = echo_tool(&runs);
    nohandler.name = "x";
    nohandler.handler = nullptr;
    CHECK(reg.add(nohandler).code() == errc::invalid_argument);
    tool notobj = echo_tool(&runs);
    notobj.name = "y";
    notobj.parameters = json{{"type", "string"}};
    CHECK(reg.add(notobj).code() == errc::invalid_argument);
    tool pattern = echo_tool(&runs);
    pattern.name = "z";
    pattern.parameters = json::parse(R"({"type":"object","properties":{"a":{"type":"string","pattern":"(x)\\1"}}})");
    status st = reg.add(pattern);
    CHECK(st.code() == errc::unsupported);
    CHECK(st.message().find("pattern") != std::string::npos);
    CHECK(reg.size() == 1);
    CHECK(reg.find("echo") != nullptr);
    CHECK(reg.find("nope") == nullptr);
}

TEST_CASE("registry: arguments are validated before the handler runs", "[tools]") {
    tool_registry reg;
    int runs = 0;
    REQUIRE(reg.add(echo_tool(&runs)).ok());
    auto ok = call_sync(reg, "echo",
                        json::parse(R"({"text":"hi","n":3,"mode":"a","tags":["x"],"pos":{"x":1.5},"opt":null})"));
    REQUIRE(ok.ok());
    CHECK((*ok)["n"] == 3);
    CHECK(runs == 1);
    const std::vector<std::pair<std::string, std::string>> bad = {
        {R"({"n":3})", "missing required property 'text'"},
        {R"({"text":"toolong","n":3})", "maxLength"},
        {R"({"text":"a","n":3.5})", "$.n: expected an integer"},
        {R"({"text":"a","n":3,"mode":"c"})", "$.mode: not one of"},
        {R"({"text":"a","n":3,"tags":["x",1]})", "$.tags[1]: expected a string"},
        {R"({"text":"a","n":3,"tags":["x","y","z"]})", "maxItems"},
        {R"({"text":"a","n":3,"pos":{}})", "$.pos: missing required property 'x'"},
        {R"({"text":"a","n":3,"extra":1})", "unknown property 'extra'"},
        {R"({"text":"a","n":3,"opt":5})", "$.opt"},
        {R"([1])", "expected an object"},
    };
    for (const auto& [args, why] : bad) {
        auto r = call_sync(reg, "echo", json::parse(args));
        INFO(args << " -> " << (r.ok() ? std::string("ok") : r.error().message()));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == errc::invalid_argument);
        CHECK(r.error().message().find(why) != std::string::npos);
    }
    CHECK(runs == 1);
    auto missing = call_sync(reg, "nope", json::object());
    CHECK(missing.error().code() == errc::not_found);

    tool thrower;
    thrower.name = "boom";
    thrower.handler = [](const json&, tool_done) { throw std::runtime_error("kaput"); };
    REQUIRE(reg.add(thrower).ok());
    auto thrown = call_sync(reg, "boom", json::object());
    CHECK(thrown.error().code() == errc::internal);
    CHECK(thrown.error().message().find("kaput") != std::string::npos);
}

TEST_CASE("registry: the call schema compiles and constrains name and arguments together", "[tools]") {
    tool_registry reg;
    REQUIRE(reg.add(make_roll_dice_tool(1)).ok());
    REQUIRE(reg.add(make_clock_tool()).ok());
    auto g = reg.call_grammar();
    REQUIRE(g.ok());
    const auto accepts = [&](const std::string& doc) {
        auto s = (*g)->start();
        return s.accept_bytes(doc) && s.is_complete();
    };
    CHECK(accepts(R"({"name":"roll_dice","arguments":{"notation":"2d6"}})"));
    CHECK(accepts(R"({"name": "clock", "arguments":{}})"));
    CHECK_FALSE(accepts(R"({"name":"clock","arguments":{"notation":"2d6"}})"));
    CHECK_FALSE(accepts(R"({"name":"other","arguments":{}})"));
    // Every document the grammar accepts also validates.
    CHECK(validate_json(json::parse(R"({"name":"roll_dice","arguments":{"notation":"2d6"}})"), reg.call_schema()).ok());
    tool_registry empty;
    CHECK_FALSE(empty.call_grammar().ok());
}

TEST_CASE("registry: $refs of a tool's parameters point into its own schema, not into the call schema",
          "[tools][grammar]") {
    // What zod 4 writes for a recursive schema (getter or z.lazy) through the openai helper: draft-07
    // "definitions" with "#/definitions/..." refs, and a "#" self-reference. Both are pointers into the
    // parameters document, which sits at /properties/arguments (one tool) or /anyOf/i/properties/arguments.
    const json tree = json::parse(R"({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "properties": {"root": {"$ref": "#/definitions/node"}}, "required": ["root"], "additionalProperties": false,
        "definitions": {"node": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3},
            "children": {"type": "array", "maxItems": 2, "items": {"$ref": "#/definitions/node"}}},
            "required": ["name", "children"], "additionalProperties": false}}})");
    const json list = json::parse(R"({"type": "object", "properties": {"v": {"type": "integer"},
        "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}, "$ref": {"const": {"$ref": "#/x"}}},
        "required": ["v", "next"]})");
    for (int n_tools = 1; n_tools <= 2; ++n_tools) {
        INFO(n_tools << " tools");
        tool_registry reg;
        int n_runs = 0;
        tool a = echo_tool(&n_runs);
        a.name = "tree";
        a.parameters = tree;
        REQUIRE(reg.add(a).ok());
        if (n_tools == 2) {
            tool b = echo_tool(&n_runs);
            b.name = "list";
            b.parameters = list;
            REQUIRE(reg.add(b).ok());
        }
        auto g = reg.call_grammar();
        INFO((g.ok() ? std::string() : g.error().message()));
        REQUIRE(g.ok());
        const auto accepts = [&](const std::string& doc) {
            auto s = (*g)->start();
            return s.accept_bytes(doc) && s.is_complete();
        };
        CHECK(accepts(R"({"name":"tree","arguments":{"root":{"name":"a","children":[{"name":"b","children":[]}]}}})"));
        CHECK_FALSE(accepts(R"({"name":"tree","arguments":{"root":{"name":"abcd","children":[]}}})"));
        CHECK_FALSE(accepts(R"({"name":"tree","arguments":{"root":{"name":"a","children":[{"name":"b"}]}}})"));
        if (n_tools == 2) {
            CHECK(accepts(R"({"name":"list","arguments":{"v":1,"next":{"v":2,"next":null}}})"));
            // "#" is the list itself, not the call schema (the root of the document the grammar compiles).
            CHECK_FALSE(accepts(
                R"({"name":"list","arguments":{"v":1,"next":{"name":"tree","arguments":{"root":{"name":"a","children":[]}}}}})"));
        }
    }
    // The parameters themselves are left as they were.
    tool t = echo_tool(nullptr);
    t.parameters = tree;
    const json one = tool_call_schema(t, "/anyOf/3");
    CHECK(one["properties"]["arguments"]["properties"]["root"]["$ref"] ==
          "#/anyOf/3/properties/arguments/definitions/node");
    CHECK(t.parameters == tree);
}

TEST_CASE("parser: Hermes/Qwen <tool_call> blocks", "[tools]") {
    auto one = parse_tool_calls(
        "Let me roll.\n<tool_call>\n{\"name\": \"roll_dice\", \"arguments\": {\"notation\": \"2d6\"}}\n</tool_call>");
    REQUIRE(one.ok());
    CHECK(one->format == tool_call_format::hermes);
    REQUIRE(one->calls.size() == 1);
    CHECK(one->calls[0].name == "roll_dice");
    CHECK(one->calls[0].arguments["notation"] == "2d6");
    CHECK(one->content == "Let me roll.");

    auto two = parse_tool_calls(
        "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>\n"
        "<tool_call>{\"name\":\"b\",\"arguments\":\"{\\\"x\\\": 1}\"}</tool_call> done");
    REQUIRE(two.ok());
    REQUIRE(two->calls.size() == 2);
    CHECK(two->calls[1].name == "b");
    CHECK(two->calls[1].arguments["x"] == 1);  // arguments given as a JSON string
    CHECK(two->content == "done");

    auto unclosed = parse_tool_calls("<tool_call>{\"name\":\"a\",\"arguments\":{\"k\":1}}");  // stopped after the JSON
    REQUIRE(unclosed.ok());
    CHECK(unclosed->calls.size() == 1);

    auto noargs = parse_tool_calls("<tool_call>{\"name\":\"clock\"}</tool_call>");
    REQUIRE(noargs.ok());
    CHECK(noargs->calls[0].arguments == json::object());
}

TEST_CASE("parser: malformed and truncated calls are error values", "[tools]") {
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"<tool_call>{\"name\":\"a\",\"arguments\":{\"k\":", "truncated JSON"},
        {"<tool_call>{\"name\":\"a\",\"arguments\":{\"k\":1}}</tool_call><tool_call>{\"name\":", "tool call 2"},
        {"<tool_call>", "nothing after"},
        {"<tool_call>{\"arguments\":{}}</tool_call>", "missing \"name\""},
        {"<tool_call>{\"name\":5,\"arguments\":{}}</tool_call>", "\"name\" must be"},
        {"<tool_call>{\"name\":\"a\",\"arguments\":[1]}</tool_call>", "\"arguments\" must be an object"},
        {"<tool_call>{\"name\":\"a\",\"arguments\":\"{oops\"}</tool_call>", "not valid JSON"},
        {"<tool_call>not json</tool_call>", "invalid JSON"},
        {"<tool_call>{\"name\":\"a\",\"arguments\":{}} trailing", "truncated"},
        {"<|python_tag|>{\"name\": \"a\", \"parameters\": {\"x\": ", "truncated JSON"},
        {"{\"name\": \"a\", \"parameters\": {\"x\": 1}", "truncated JSON"},
        {"<|python_tag|>print(1)", "invalid JSON"},
    };
    for (const auto& [text, why] : bad) {
        auto r = parse_tool_calls(text);
        INFO(text << " -> " << (r.ok() ? std::string("ok") : r.error().message()));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == errc::invalid_argument);
        CHECK(r.error().message().find(why) != std::string::npos);
    }
    // Every prefix of a valid reply either parses or is an error value; nothing throws or crashes.
    const std::string full =
        "Sure.<tool_call>\n{\"name\": \"note\", \"arguments\": {\"text\": \"a \\\"q\\\" é\"}}\n</tool_call>";
    for (size_t n = 0; n <= full.size(); ++n) {
        auto r = parse_tool_calls(full.substr(0, n));
        (void)r;
    }
    auto invalid_utf8 = parse_tool_calls("<tool_call>{\"name\":\"a\xff\",\"arguments\":{}}</tool_call>");
    CHECK_FALSE(invalid_utf8.ok());
}

TEST_CASE("parser: Llama 3.1 JSON and plain JSON", "[tools]") {
    auto l = parse_tool_calls("<|python_tag|>{\"name\": \"clock\", \"parameters\": {}}");
    REQUIRE(l.ok());
    CHECK(l->format == tool_call_format::llama3);
    REQUIRE(l->calls.size() == 1);
    CHECK(l->calls[0].name == "clock");

    auto l2 = parse_tool_calls("{\"name\": \"a\", \"parameters\": {\"x\": 1}}; {\"name\": \"b\", \"parameters\": {}}");
    REQUIRE(l2.ok());
    CHECK(l2->format == tool_call_format::llama3);
    REQUIRE(l2->calls.size() == 2);
    CHECK(l2->calls[0].arguments["x"] == 1);

    auto p = parse_tool_calls("  {\"name\": \"roll_dice\", \"arguments\": {\"notation\": \"d20\"}}\n");
    REQUIRE(p.ok());
    CHECK(p->format == tool_call_format::plain);
    CHECK(p->calls[0].arguments["notation"] == "d20");

    auto arr = parse_tool_calls("[{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {}}]");
    REQUIRE(arr.ok());
    CHECK(arr->calls.size() == 2);

    auto text = parse_tool_calls("Just an answer, no tools.");
    REQUIRE(text.ok());
    CHECK(text->format == tool_call_format::none);
    CHECK(text->calls.empty());
    CHECK(text->content == "Just an answer, no tools.");
    auto data = parse_tool_calls("{\"answer\": 42}");  // JSON that is not a call
    REQUIRE(data.ok());
    CHECK(data->calls.empty());
}

TEST_CASE("prompt: Hermes tool section", "[tools]") {
    tool_registry reg;
    REQUIRE(reg.add(make_roll_dice_tool(1)).ok());
    REQUIRE(reg.add(make_clock_tool()).ok());
    const std::string p = render_tools_prompt(reg);
    CHECK(p.rfind(k_tools_preamble, 0) == 0);
    const size_t a = p.find("\n<tools>\n"), b = p.find("\n</tools>\n");
    REQUIRE(a != std::string::npos);
    REQUIRE(b != std::string::npos);
    // One JSON object per line between the tags.
    std::string body = p.substr(a + 9, b + 1 - (a + 9));
    int n = 0;
    for (size_t pos = 0; pos < body.size();) {
        const size_t e = body.find('\n', pos);
        const json j = json::parse(body.substr(pos, e - pos), nullptr, false);
        INFO(body.substr(pos, e - pos));
        REQUIRE_FALSE(j.is_discarded());
        CHECK(j["type"] == "function");
        CHECK(j["function"].contains("parameters"));
        n++;
        pos = e + 1;
    }
    CHECK(n == 2);
    CHECK(p.find("<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>") !=
          std::string::npos);
    CHECK(render_tools_prompt(tool_registry{}).empty());
    const std::string r = render_tool_response("clock", json{{"now", "x"}});
    CHECK(r == "<tool_response>\n{\"content\":{\"now\":\"x\"},\"name\":\"clock\"}\n</tool_response>");
}

TEST_CASE("built-in: roll_dice", "[tools]") {
    for (const char* ok : {"2d6+3", "d20", "4D8-1", "100d1000"}) CHECK(parse_dice(ok).ok());
    for (const char* bad : {"", "d", "2x6", "0d6", "101d6", "2d1", "2d6+", "2d6+1001", "2 d6", "d6d6", "1234567d6"})
        CHECK_FALSE(parse_dice(bad).ok());
    auto d = parse_dice("3d8-2");
    REQUIRE(d.ok());
    CHECK(d->n == 3);
    CHECK(d->sides == 8);
    CHECK(d->modifier == -2);

    tool_registry a, b;
    REQUIRE(a.add(make_roll_dice_tool(42)).ok());
    REQUIRE(b.add(make_roll_dice_tool(42)).ok());
    for (int i = 0; i < 20; ++i) {
        auto ra = call_sync(a, "roll_dice", json{{"notation", "3d6+1"}});
        auto rb = call_sync(b, "roll_dice", json{{"notation", "3d6+1"}});
        REQUIRE(ra.ok());
        CHECK(*ra == *rb);  // same seed, same rolls
        int64_t sum = 1;
        for (const auto& r : (*ra)["rolls"]) {
            CHECK(r.get<int64_t>() >= 1);
            CHECK(r.get<int64_t>() <= 6);
            sum += r.get<int64_t>();
        }
        CHECK((*ra)["total"] == sum);
        CHECK((*ra)["rolls"].size() == 3);
    }
    auto bad = call_sync(a, "roll_dice", json{{"notation", "many dice"}});
    CHECK(bad.error().code() == errc::invalid_argument);
}

TEST_CASE("built-in: clock", "[tools]") {
    tool_registry reg;
    REQUIRE(reg.add(make_clock_tool([] { return at(1795154386); })).ok());
    auto r = call_sync(reg, "clock", json::object());
    REQUIRE(r.ok());
    CHECK((*r)["now"] == "2026-11-20T05:59:46Z");
    CHECK((*r)["unix"] == 1795154386);
    CHECK(format_iso8601(at(0)) == "1970-01-01T00:00:00Z");
    auto p = parse_iso8601("2026-11-20T05:59:46Z");
    REQUIRE(p.ok());
    CHECK(*p == at(1795154386));
    CHECK(parse_iso8601("2024-02-29").ok());
    CHECK(*parse_iso8601("2000-03-01T00:00") == at(951868800));
    CHECK_FALSE(parse_iso8601("yesterday").ok());
    CHECK_FALSE(parse_iso8601("2024-13-01").ok());
    CHECK_FALSE(parse_iso8601("1420-05-01").ok());  // beyond system_clock's nanoseconds: an error, not an overflow
    CHECK_FALSE(parse_iso8601("9999-12-31").ok());
    CHECK(parse_iso8601("1678-01-01").ok());
    CHECK(parse_iso8601("2261-12-31T23:59:59Z").ok());
}

TEST_CASE("built-in: note", "[tools]") {
    auto store = std::make_shared<memory_notes_store>();
    tool_registry reg;
    REQUIRE(reg.add(make_note_tool(store, "s1", [] { return at(100); })).ok());
    auto r1 = call_sync(reg, "note", json{{"text", "The butler has a key."}});
    auto r2 = call_sync(reg, "note", json{{"text", "Lily lies about the time."}});
    REQUIRE(r1.ok());
    REQUIRE(r2.ok());
    CHECK((*r1)["id"] == 1);
    CHECK((*r2)["id"] == 2);
    auto notes = store->list("s1");
    REQUIRE(notes.ok());
    REQUIRE(notes->size() == 2);
    CHECK((*notes)[0].text == "The butler has a key.");
    CHECK((*notes)[1].time == at(100));
    CHECK(store->list("other")->empty());
    CHECK(call_sync(reg, "note", json{{"text", ""}}).error().code() == errc::invalid_argument);
}

TEST_CASE("built-in: recall", "[tools]") {
    auto hist = std::make_shared<fixed_history>();
    hist->evs = {
        {1, at(1000), "user", "We found the knife in the library."},
        {2, at(2000), "assistant", "The butler was in the kitchen at midnight."},
        {3, at(3000), "user", "Who owns the silver knife?"},
        {4, at(4000), "assistant", "Lily said the library door was locked at midnight."},
        {5, at(5000), "user", std::string(300, 'x') + " the knife " + std::string(300, 'y')},
    };
    tool_registry reg;
    REQUIRE(reg.add(make_recall_tool(hist, "s1")).ok());
    auto r = call_sync(reg, "recall", json{{"query", "knife library"}});
    REQUIRE(r.ok());
    const json& hits = (*r)["hits"];
    REQUIRE(hits.size() == 4);
    CHECK(hits[0]["seq"] == 1);  // both words
    CHECK(hits[0]["score"] == 2);
    CHECK(hits[1]["seq"] == 5);  // one word; later first
    CHECK(hits[1]["snippet"].get<std::string>().size() < 220);
    CHECK(hits[1]["snippet"].get<std::string>().find("knife") != std::string::npos);
    CHECK(hits[0]["time"] == "1970-01-01T00:16:40Z");
    CHECK(hits[0]["role"] == "user");

    auto ranged =
        call_sync(reg, "recall", json{{"query", "knife midnight"}, {"from_seq", 2}, {"to_seq", 4}, {"top_k", 1}});
    REQUIRE(ranged.ok());
    REQUIRE((*ranged)["hits"].size() == 1);
    CHECK((*ranged)["hits"][0]["seq"] == 3);  // ties on score: later first

    auto timed = call_sync(reg, "recall", json{{"query", "midnight"}, {"since", "1970-01-01T00:50:00Z"}});
    REQUIRE(timed.ok());
    REQUIRE((*timed)["hits"].size() == 1);
    CHECK((*timed)["hits"][0]["seq"] == 4);

    CHECK(call_sync(reg, "recall", json{{"query", "x"}, {"since", "soon"}}).error().code() == errc::invalid_argument);
    auto none = call_sync(reg, "recall", json{{"query", "the of and"}});  // only stop words
    REQUIRE(none.ok());
    CHECK((*none)["hits"].empty());

    tool_registry other;
    REQUIRE(other.add(make_recall_tool(hist, "missing")).ok());
    CHECK(call_sync(other, "recall", json{{"query", "knife"}}).error().code() == errc::not_found);
}

// Tool calling end to end through the in-process HTTP server over a tiny
// random-weight model: OpenAI tools / tool_choice / response_format on
// /v1/chat/completions (the grammar makes every forced call valid, whatever
// the model says), and the server-side agent loop of tool sessions.

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/runtime.h"
#include "agent/server/server.h"
#include "memory/store.h"
#include "tests/agent/server_fixture.h"
#include "tests/support/tiny_model.h"
#include "tools/tool.h"

using json = nlohmann::json;
using namespace mnemos;

using namespace mnemos::test_agent;

namespace {

// Tool prompts need room: an 8k context and 256 KiB bodies.
const fixture_sizes k_e2e_sizes{8192, 256 * 1024};

const json k_weather = json::parse(R"({"type":"object","properties":{
    "city":{"type":"string","minLength":1,"maxLength":12},
    "days":{"type":"integer"},
    "unit":{"enum":["c","f"]}},"required":["city","days","unit"]})");
const json k_search = json::parse(R"({"type":"object","properties":{
    "q":{"type":"string","maxLength":10},"limit":{"type":"integer"}},"required":["q"]})");

json tools_json() {
    return json::array(
        {{{"type", "function"},
          {"function", {{"name", "get_weather"}, {"description", "Weather forecast"}, {"parameters", k_weather}}}},
         {{"type", "function"},
          {"function", {{"name", "search"}, {"description", "Search"}, {"parameters", k_search}}}}});
}

json chat_body(const json& tool_choice, uint64_t seed, bool stream = false) {
    return {{"messages", json::array({{{"role", "user"}, {"content", "What is the weather in Paris?"}}})},
            {"tools", tools_json()},
            {"tool_choice", tool_choice},
            {"max_tokens", 200},
            {"seed", seed},
            {"stream", stream}};
}

const json& schema_of(const std::string& name) { return name == "search" ? k_search : k_weather; }

}  // namespace

TEST_CASE("tools: named tool_choice always yields a valid call", "[agent][tools]") {
    fixture f({}, false, {}, k_e2e_sizes);
    const json named = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
    for (uint64_t seed : {1, 2, 3, 4, 5}) {
        auto r = request(f.port, "POST", "/v1/chat/completions", chat_body(named, seed).dump());
        REQUIRE(r.status == 200);
        const json j = r.j();
        INFO(r.body);
        const json& c = j["choices"][0];
        CHECK(c["finish_reason"] == "tool_calls");
        REQUIRE(c["message"]["tool_calls"].size() == 1);
        const json& call = c["message"]["tool_calls"][0];
        CHECK(call["type"] == "function");
        CHECK(call["id"].get<std::string>().rfind("call_", 0) == 0);
        CHECK(call["function"]["name"] == "get_weather");
        const json args = json::parse(call["function"]["arguments"].get<std::string>(), nullptr, false);
        REQUIRE(args.is_object());
        CHECK(tools::validate_json(args, k_weather).ok());
        CHECK(args.contains("city"));
        CHECK(args.contains("days"));
        CHECK(args.contains("unit"));
    }
}

TEST_CASE("tools: required tool_choice calls one of the tools, validly", "[agent][tools]") {
    fixture f({}, false, {}, k_e2e_sizes);
    for (uint64_t seed : {11, 12, 13, 14}) {
        auto r = request(f.port, "POST", "/v1/chat/completions", chat_body("required", seed).dump());
        REQUIRE(r.status == 200);
        const json j = r.j();
        INFO(r.body);
        const json& c = j["choices"][0];
        CHECK(c["finish_reason"] == "tool_calls");
        REQUIRE(c["message"]["tool_calls"].size() == 1);
        const std::string name = c["message"]["tool_calls"][0]["function"]["name"];
        CHECK((name == "get_weather" || name == "search"));
        const json args =
            json::parse(c["message"]["tool_calls"][0]["function"]["arguments"].get<std::string>(), nullptr, false);
        REQUIRE(args.is_object());
        CHECK(tools::validate_json(args, schema_of(name)).ok());
    }
}

TEST_CASE("tools: streamed tool call arrives as tool_calls deltas", "[agent][tools]") {
    fixture f({}, false, {}, k_e2e_sizes);
    const json named = {{"type", "function"}, {"function", {{"name", "search"}}}};
    auto r = request(f.port, "POST", "/v1/chat/completions", chat_body(named, 21, true).dump());
    REQUIRE(r.status == 200);
    size_t p = 0;
    std::string args, name, id, finish;
    int n_chunks = 0;
    while ((p = r.body.find("data: ", p)) != std::string::npos) {
        const size_t e = r.body.find("\n\n", p);
        const std::string d = r.body.substr(p + 6, e - p - 6);
        p = e;
        if (d == "[DONE]") break;
        const json c = json::parse(d, nullptr, false);
        REQUIRE(c.is_object());
        ++n_chunks;
        const json& ch = c["choices"][0];
        if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
        if (!ch["delta"].contains("tool_calls")) continue;
        const json& tc = ch["delta"]["tool_calls"][0];
        CHECK(tc["index"] == 0);
        if (tc.contains("id")) id = tc["id"];
        if (tc["function"].contains("name")) name = tc["function"]["name"];
        if (tc["function"].contains("arguments")) args += tc["function"]["arguments"].get<std::string>();
    }
    CHECK(finish == "tool_calls");
    CHECK(name == "search");
    CHECK(!id.empty());
    CHECK(n_chunks >= 3);
    const json a = json::parse(args, nullptr, false);
    INFO(args);
    REQUIRE(a.is_object());
    CHECK(tools::validate_json(a, k_search).ok());
}

TEST_CASE("tools: response_format json_schema and json_object", "[agent][tools]") {
    fixture f({}, false, {}, k_e2e_sizes);
    const json schema = json::parse(R"({"type":"object","properties":{"answer":{"type":"string","maxLength":8},
        "ok":{"type":"boolean"}},"required":["answer","ok"]})");
    for (uint64_t seed : {5, 6}) {
        json b = {{"messages", json::array({{{"role", "user"}, {"content", "Answer in JSON"}}})},
                  {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "a"}, {"schema", schema}}}}},
                  {"max_tokens", 200},
                  {"seed", seed}};
        auto r = request(f.port, "POST", "/v1/chat/completions", b.dump());
        REQUIRE(r.status == 200);
        const json content = json::parse(r.j()["choices"][0]["message"]["content"].get<std::string>(), nullptr, false);
        INFO(r.body);
        REQUIRE(content.is_object());
        CHECK(tools::validate_json(content, schema).ok());
    }
    json b = {{"messages", json::array({{{"role", "user"}, {"content", "JSON please"}}})},
              {"response_format", {{"type", "json_object"}}},
              {"max_tokens", 400},
              {"seed", 3}};
    auto r = request(f.port, "POST", "/v1/chat/completions", b.dump());
    REQUIRE(r.status == 200);
    if (r.j()["choices"][0]["finish_reason"] == "stop") {
        const json content = json::parse(r.j()["choices"][0]["message"]["content"].get<std::string>(), nullptr, false);
        CHECK(content.is_object());
    }
}

TEST_CASE("tools: history with tool calls and tool results is accepted", "[agent][tools]") {
    fixture f({}, false, {}, k_e2e_sizes);
    json b = {{"messages", json::parse(R"([
        {"role":"user","content":"Weather in Oslo?"},
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
            "function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\",\"days\":1,\"unit\":\"c\"}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"{\"temp\":3}"}])")},
              {"tools", tools_json()},
              {"tool_choice", "auto"},
              {"max_tokens", 16},
              {"seed", 1}};
    auto r = request(f.port, "POST", "/v1/chat/completions", b.dump());
    CHECK(r.status == 200);
    CHECK(r.j()["choices"][0]["message"]["role"] == "assistant");
    // Bad arguments in the history.
    b["messages"][1]["tool_calls"][0]["function"]["arguments"] = "{not json";
    r = request(f.port, "POST", "/v1/chat/completions", b.dump());
    CHECK(r.status == 400);
    CHECK(is_error_json(r));
}

TEST_CASE("tools: malformed definitions get 400 JSON errors", "[agent][tools]") {
    fixture f({}, false, {}, k_e2e_sizes);
    const json msgs = json::array({{{"role", "user"}, {"content", "hi"}}});
    std::vector<json> bad = {
        {{"messages", msgs}, {"tools", "get_weather"}},
        {{"messages", msgs}, {"tools", json::array({{{"type", "function"}}})}},
        {{"messages", msgs}, {"tools", json::array({{{"type", "code"}, {"function", {{"name", "f"}}}}})}},
        {{"messages", msgs}, {"tools", json::array({{{"type", "function"}, {"function", {{"name", "bad name!"}}}}})}},
        {{"messages", msgs},
         {"tools",
          json::array(
              {{{"type", "function"},
                {"function",
                 {{"name", "f"},
                  {"parameters",
                   {{"type", "object"}, {"properties", {{"x", {{"type", "string"}, {"pattern", "(a)\\1"}}}}}}}}}}})}},
        {{"messages", msgs},
         {"tools", json::array({{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", 3}}}}})}},
        {{"messages", msgs}, {"tools", tools_json()}, {"tool_choice", "sometimes"}},
        {{"messages", msgs},
         {"tools", tools_json()},
         {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}},
        {{"messages", msgs}, {"tool_choice", "required"}},
        {{"messages", msgs}, {"response_format", {{"type", "xml"}}}},
        {{"messages", msgs},
         {"response_format",
          {{"type", "json_schema"},
           {"json_schema", {{"schema", {{"type", "object"}, {"properties", {{"x", {{"$ref", "#/y"}}}}}}}}}}}},
    };
    for (const auto& b : bad) {
        auto r = request(f.port, "POST", "/v1/chat/completions", b.dump());
        INFO(b.dump());
        CHECK(r.status == 400);
        CHECK(is_error_json(r));
    }
    auto ok = request(f.port, "GET", "/healthz");
    CHECK(ok.status == 200);
}

TEST_CASE("tools: agent session runs tool steps durably, in order", "[agent][tools][e2e]") {
    fixture f({}, false, {}, k_e2e_sizes);
    json create = {{"id", "agent-1"},
                   {"character", {{"name", "Helper"}, {"persona", "You help with dice."}}},
                   {"agent", {{"tools", {"roll_dice", "recall"}}, {"max_steps", 4}, {"seed", 42}}}};
    auto c = request(f.port, "POST", "/v1/sessions", create.dump());
    REQUIRE(c.status == 201);
    CHECK(c.j()["agent"]["max_steps"] == 4);

    // First message: a tool call is forced on the first step.
    json m1 = {
        {"content", "Roll two dice for me please"}, {"tool_choice", "required"}, {"max_tokens", 600}, {"seed", 7}};
    auto r1 = request(f.port, "POST", "/v1/sessions/agent-1/messages", m1.dump());
    INFO(r1.body);
    REQUIRE(r1.status == 200);
    const json j1 = r1.j();
    const json& steps = j1["steps"];
    REQUIRE(steps.size() >= 3);
    CHECK(steps[0]["type"] == "tool_call");
    const std::string tool0 = steps[0]["name"];
    CHECK((tool0 == "roll_dice" || tool0 == "recall"));
    CHECK(steps[1]["type"] == "tool_result");
    CHECK(steps[1]["id"] == steps[0]["id"]);
    CHECK((steps[1].contains("result") || steps[1].contains("error")));
    CHECK(steps.back()["type"] == "message");
    CHECK(j1["choices"][0]["message"]["content"] == steps.back()["content"]);

    // Second message: recall, named, over the session's own log.
    json m2 = {{"content", "What did you roll before?"},
               {"tool_choice", {{"type", "function"}, {"function", {{"name", "recall"}}}}},
               {"max_tokens", 600},
               {"seed", 8}};
    auto r2 = request(f.port, "POST", "/v1/sessions/agent-1/messages", m2.dump());
    INFO(r2.body);
    REQUIRE(r2.status == 200);
    const json j2 = r2.j();
    REQUIRE(j2["steps"].size() >= 3);
    CHECK(j2["steps"][0]["name"] == "recall");
    CHECK(tools::validate_json(j2["steps"][0]["arguments"], json::parse(R"({"type":"object"})")).ok());
    // recall's arguments come from the grammar; its result is hits (or an error for a bad time).
    if (j2["steps"][1].contains("result")) CHECK(j2["steps"][1]["result"]["hits"].is_array());

    // The durable log: user, call(s), result(s), reply -- twice, in order.
    auto ev = request(f.port, "GET", "/v1/sessions/agent-1/events");
    REQUIRE(ev.status == 200);
    std::vector<std::string> kinds;
    const json evj = ev.j();
    for (const auto& e : evj["data"]) {
        if (e["type"] != "message") continue;
        const std::string role = e["role"];
        if (role == "system") continue;
        kinds.push_back(e.contains("kind") ? e["kind"].get<std::string>() : role);
    }
    INFO(ev.body);
    REQUIRE(kinds.size() >= 8);
    size_t i = 0;
    for (int turn = 0; turn < 2; ++turn) {
        REQUIRE(i < kinds.size());
        CHECK(kinds[i++] == "user");
        int n_calls = 0, n_results = 0;
        while (i < kinds.size() && (kinds[i] == "tool_call" || kinds[i] == "tool_result")) {
            if (kinds[i] == "tool_call") {
                CHECK(n_calls == n_results);  // each call is followed by its result
                ++n_calls;
            } else {
                ++n_results;
            }
            ++i;
        }
        CHECK(n_calls >= 1);
        CHECK(n_calls == n_results);
        REQUIRE(i < kinds.size());
        CHECK(kinds[i++] == "assistant");
    }
    CHECK(i == kinds.size());

    // Listing sessions shows it, with its agent settings.
    auto list = request(f.port, "GET", "/v1/sessions");
    REQUIRE(list.status == 200);
    bool found = false;
    const json lj = list.j();
    for (const auto& s : lj["data"])
        if (s["id"] == "agent-1") found = s.contains("agent");
    CHECK(found);
    // Agent sessions do not stream; bad agent settings are refused.
    auto st = request(f.port, "POST", "/v1/sessions/agent-1/messages", R"({"content":"x","stream":true})");
    CHECK(st.status == 400);
    auto bad = request(f.port, "POST", "/v1/sessions", R"({"agent":{"tools":["rm_rf"]}})");
    CHECK(bad.status == 400);
}

TEST_CASE("tools: agent session with notes resumes from the durable store", "[agent][tools][store]") {
    const auto db_dir = std::filesystem::temp_directory_path() / ("mnemos_tools_db_" + agent::random_hex(8));
    {
        fixture f({}, true, db_dir, k_e2e_sizes);
        json create = {{"id", "agent-n"}, {"agent", {{"tools", {"note"}}, {"max_steps", 2}}}};
        REQUIRE(request(f.port, "POST", "/v1/sessions", create.dump()).status == 201);
        json m = {{"content", "Remember that the butler did it"},
                  {"tool_choice", "required"},
                  {"max_tokens", 600},
                  {"seed", 3}};
        auto r = request(f.port, "POST", "/v1/sessions/agent-n/messages", m.dump());
        INFO(r.body);
        REQUIRE(r.status == 200);
        CHECK(r.j()["steps"][0]["name"] == "note");
        CHECK(r.j()["steps"][1]["result"]["pinned"] == true);
    }
    {
        fixture f({}, true, db_dir, k_e2e_sizes);
        auto ev = request(f.port, "GET", "/v1/sessions/agent-n/events");
        REQUIRE(ev.status == 200);
        int n_notes = 0;
        const json evj = ev.j();
        for (const auto& e : evj["data"]) n_notes += e["type"] == "note";
        CHECK(n_notes == 1);
        auto s = request(f.port, "GET", "/v1/sessions/agent-n");
        REQUIRE(s.status == 200);
        CHECK(s.j()["agent"]["tools"][0] == "note");
        CHECK(s.j()["n_turns"] == 1);
    }
    std::error_code ec;
    std::filesystem::remove_all(db_dir, ec);
}

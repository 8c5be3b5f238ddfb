// The OpenAI Responses API (POST /v1/responses, GET /v1/responses/{id}): the Response object, items input,
// streamed events, function tools and their outputs, structured output, and previous_response_id chains on
// durable sessions (across a restart, and branching).
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/agent/server_fixture.h"

using json = nlohmann::json;
using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

http_result create(uint16_t port, const json& body, const std::string& key = "") {
    return request(port, "POST", "/v1/responses", body.dump(), key);
}

// The text of a Response object's message item ("" when it has none).
std::string output_text(const json& r) {
    for (const auto& item : r["output"])
        if (item["type"] == "message") return item["content"][0]["text"].get<std::string>();
    return {};
}

// The message events of the session a stored response lives in (its "session_id").
json session_messages(uint16_t port, const json& response) {
    REQUIRE(response.contains("session_id"));
    auto e = request(port, "GET", "/v1/sessions/" + response["session_id"].get<std::string>() + "/events");
    REQUIRE(e.status == 200);
    const json events = e.j();
    json msgs = json::array();
    for (const auto& ev : events["data"])
        if (ev["type"] == "message") msgs.push_back(ev);
    return msgs;
}

void check_response_object(const json& r) {
    INFO(r.dump());
    CHECK(r["object"] == "response");
    CHECK(r["id"].get<std::string>().rfind("resp_", 0) == 0);
    CHECK(r["created_at"].is_number_integer());
    CHECK(r["model"].is_string());
    CHECK((r["status"] == "completed" || r["status"] == "incomplete"));
    CHECK(r["error"].is_null());
    const json& u = r["usage"];
    CHECK(u["input_tokens"].get<int>() > 0);
    CHECK(u["output_tokens"].get<int>() > 0);
    CHECK(u["total_tokens"].get<int>() == u["input_tokens"].get<int>() + u["output_tokens"].get<int>());
    CHECK(u["input_tokens_details"]["cached_tokens"].is_number_integer());
    CHECK(u["output_tokens_details"]["reasoning_tokens"] == 0);
    REQUIRE(r["output"].is_array());
    REQUIRE(!r["output"].empty());
}

}  // namespace

TEST_CASE("responses: input items become the session's messages", "[agent][server][responses]") {
    fixture f;
    const json input = {
        {{"role", "developer"}, {"content", "Be brief."}},
        {{"type", "message"}, {"role", "user"}, {"content", {{{"type", "input_text"}, {"text", "Hi"}}}}},
        {{"role", "assistant"}, {"content", {{{"type", "output_text"}, {"text", "Let me look."}}}}},
        {{"type", "function_call"}, {"call_id", "c1"}, {"name", "find"}, {"arguments", "{\"q\":1}"}},
        {{"type", "function_call_output"}, {"call_id", "c1"}, {"output", "{\"hits\":2}"}}};
    auto r = create(f.port, {{"input", input}, {"instructions", "Be kind."}, {"max_output_tokens", 3}});
    REQUIRE(r.status == 200);
    CHECK(r.j()["instructions"] == "Be kind.");
    const json msgs = session_messages(f.port, r.j());
    REQUIRE(msgs.size() == 6);
    CHECK(msgs[0]["role"] == "system");  // the instructions, first
    CHECK(msgs[0]["content"] == "Be kind.");
    CHECK(msgs[1]["role"] == "system");  // developer
    CHECK(msgs[2]["content"] == "Hi");
    const std::string call = msgs[3]["content"];
    CHECK(msgs[3]["role"] == "assistant");  // the call joins the assistant message before it
    CHECK(call.find("Let me look.") == 0);
    CHECK(call.find("<tool_call>") != std::string::npos);
    CHECK(call.find("\"find\"") != std::string::npos);
    const std::string result = msgs[4]["content"];
    CHECK(msgs[4]["role"] == "tool");
    CHECK(result.find("\"find\"") != std::string::npos);  // named by its call
    CHECK(result.find("\"hits\"") != std::string::npos);
    CHECK(msgs[5]["role"] == "assistant");

    // Clear refusals naming what is wrong.
    auto refused = [&](const json& body) {
        auto e = create(f.port, body);
        INFO(body.dump() << " -> " << e.body);
        CHECK(e.status == 400);
        return e.j()["error"]["message"].get<std::string>();
    };
    CHECK(
        refused({{"input", {{{"type", "function_call_output"}, {"call_id", "nope"}, {"output", "x"}}}}}).find("nope") !=
        std::string::npos);
    CHECK(refused({{"input", {{{"role", "user"}, {"content", {{{"type", "input_image"}, {"image_url", "x"}}}}}}}})
              .find("input_image") != std::string::npos);
    CHECK(refused({{"input", {{{"type", "web_search_call"}}}}}).find("web_search_call") != std::string::npos);
    CHECK(refused({{"input", {{{"type", "function_call"}, {"call_id", "c"}, {"name", "f"}, {"arguments", "[1]"}}}}})
              .find("arguments") != std::string::npos);
    CHECK(refused({{"input", "x"}, {"tools", {{{"type", "web_search"}}}}}).find("web_search") != std::string::npos);
    CHECK(refused({{"input", "x"}, {"max_output_tokens", 0}}).find("max_output_tokens") != std::string::npos);
    CHECK(refused({{"input", "x"}, {"background", true}}).find("background") != std::string::npos);
    CHECK(refused({{"input", "x"}, {"tool_choice", "required"}}).find("tool_choice") != std::string::npos);
    CHECK(refused({{"input", "x"}, {"text", {{"format", {{"type", "yaml"}}}}}}).find("text.format") !=
          std::string::npos);
    CHECK(refused({{"input", json::array()}}).find("input") != std::string::npos);
}

TEST_CASE("responses: a text input gets a Response object, stored and retrievable", "[agent][server][responses]") {
    fixture f;
    auto r = create(f.port, {{"model", "any"}, {"input", "Hello there"}, {"max_output_tokens", 6}, {"temperature", 0}});
    REQUIRE(r.status == 200);
    const json j = r.j();
    check_response_object(j);
    const json& item = j["output"][0];
    CHECK(item["type"] == "message");
    CHECK(item["role"] == "assistant");
    CHECK(item["id"].get<std::string>().rfind("msg_", 0) == 0);
    CHECK(item["content"][0]["type"] == "output_text");
    CHECK(item["content"][0]["annotations"] == json::array());
    CHECK(j["previous_response_id"].is_null());
    if (j["status"] == "incomplete") CHECK(j["incomplete_details"]["reason"] == "max_output_tokens");
    CHECK(j["usage"]["output_tokens"].get<int>() <= 6);

    auto g = request(f.port, "GET", "/v1/responses/" + j["id"].get<std::string>());
    REQUIRE(g.status == 200);
    CHECK(g.j()["output"] == j["output"]);
    CHECK(g.j()["id"] == j["id"]);
    // Its session holds the exchange.
    CHECK(j["session_id"].get<std::string>().rfind("resp-", 0) == 0);
    const json msgs = session_messages(f.port, j);
    REQUIRE(msgs.size() == 2);
    CHECK(msgs[0]["content"] == "Hello there");
    CHECK(msgs[1]["content"] == output_text(j));

    // Greedy: the same input without storing gives the same text, and no stored response.
    auto u = create(f.port, {{"input", "Hello there"}, {"max_output_tokens", 6}, {"temperature", 0}, {"store", false}});
    REQUIRE(u.status == 200);
    CHECK(output_text(u.j()) == output_text(j));
    CHECK(request(f.port, "GET", "/v1/responses/" + u.j()["id"].get<std::string>()).status == 404);
    CHECK(request(f.port, "GET", "/v1/responses/resp_nope").status == 404);
}

TEST_CASE("responses: bad requests get a clear 4xx", "[agent][server][responses]") {
    fixture f;
    check_bad_requests(f.port,
                       {
                           {"POST", "/v1/responses", "not json", 400},
                           {"POST", "/v1/responses", R"({"model":"m"})", 400},
                           {"POST", "/v1/responses", R"({"input":"x","frobnicate":true})", 400},
                           {"POST", "/v1/responses", R"({"input":"x","previous_response_id":"resp_0"})", 404},
                           {"POST", "/v1/responses", R"({"input":[{"type":"item_reference","id":"msg_0"}]})", 400},
                           {"DELETE", "/v1/responses", "", 405},
                       });
    // Each of these gets a 400 (and the server keeps serving).
    for (const char* body : {
             R"({"input":"x","tools":{}})",
             R"({"input":"x","tools":[{"type":"function"}]})",
             R"({"input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"}})",
             R"({"input":"x","tool_choice":{"type":"allowed_tools"}})",
             R"({"input":"x","text":{"format":{"type":"json_schema"}}})",
             R"({"input":"x","instructions":7})",
             R"({"input":"x","store":"yes"})",
             R"({"input":"x","metadata":"m"})",
             R"({"input":"x","max_output_tokens":1e9})",
             R"({"input":"x","temperature":"hot"})",
             R"({"input":[{"role":"tool","content":"x"}]})",
             R"({"input":[{"role":"user"}]})",
             R"({"input":[{"role":"user","content":null}]})",
             R"({"input":[{"type":"function_call_output","call_id":1}]})",
             R"({"input":[{"type":"item_reference"}]})",
             R"({"input":["x"]})",
             R"({"input":"\ud800"})",
         })
        check_bad_requests(f.port, {{"POST", "/v1/responses", body, 400}});
    auto r = create(f.port, {{"input", "x"}, {"previous_response_id", "resp_" + std::string(40, 'a')}});
    CHECK(r.status == 404);
    CHECK(r.j()["error"]["message"].get<std::string>().find("previous_response_id") != std::string::npos);
    auto u = create(f.port, {{"input", "x"}, {"conversation", "conv_1"}});
    CHECK(u.status == 400);
    CHECK(u.j()["error"]["message"].get<std::string>().find("conversation") != std::string::npos);
}

TEST_CASE("responses: streamed events come in order and their deltas are the text", "[agent][server][responses]") {
    fixture f;
    auto r =
        create(f.port, {{"input", "Tell me a story"}, {"max_output_tokens", 8}, {"temperature", 0}, {"stream", true}});
    REQUIRE(r.status == 200);
    CHECK(r.headers.find("text/event-stream") != std::string::npos);
    std::vector<json> evs;
    for (const auto& d : sse_data(r.body)) evs.push_back(json::parse(d, nullptr, false));
    REQUIRE(evs.size() >= 9);
    std::vector<std::string> types;
    std::string deltas;
    for (size_t i = 0; i < evs.size(); ++i) {
        INFO(evs[i].dump());
        CHECK(evs[i]["sequence_number"] == i);
        types.push_back(evs[i]["type"]);
        if (evs[i]["type"] == "response.output_text.delta") deltas += evs[i]["delta"].get<std::string>();
    }
    CHECK(types[0] == "response.created");
    CHECK(types[1] == "response.in_progress");
    CHECK(types[2] == "response.output_item.added");
    CHECK(types[3] == "response.content_part.added");
    CHECK(types[4] == "response.output_text.delta");
    const size_t n = types.size();
    CHECK(types[n - 4] == "response.output_text.done");
    CHECK(types[n - 3] == "response.content_part.done");
    CHECK(types[n - 2] == "response.output_item.done");
    CHECK((types[n - 1] == "response.completed" || types[n - 1] == "response.incomplete"));
    const json& last = evs.back()["response"];
    check_response_object(last);
    CHECK(output_text(last) == deltas);
    CHECK(evs[n - 4]["text"] == deltas);
    CHECK(evs[0]["response"]["status"] == "in_progress");
    CHECK(evs[0]["response"]["id"] == last["id"]);

    // The same request without streaming: the same text (greedy).
    auto j = create(f.port, {{"input", "Tell me a story"}, {"max_output_tokens", 8}, {"temperature", 0}});
    REQUIRE(j.status == 200);
    CHECK(output_text(j.j()) == deltas);
    // The streamed response was stored too.
    CHECK(request(f.port, "GET", "/v1/responses/" + last["id"].get<std::string>()).status == 200);
}

TEST_CASE("responses: a function tool round trip", "[agent][server][responses]") {
    fixture f;
    const json tools = {{{"type", "function"},
                         {"name", "get_weather"},
                         {"description", "The weather in a city"},
                         {"parameters",
                          {{"type", "object"},
                           {"properties", {{"city", {{"type", "string"}, {"maxLength", 8}}}}},
                           {"required", {"city"}}}},
                         {"strict", true}}};
    for (bool stream : {false, true}) {
        INFO("stream " << stream);
        json body = {{"input", "Weather in Paris?"}, {"tools", tools}, {"tool_choice", "required"},
                     {"max_output_tokens", 60},      {"seed", 5},      {"stream", stream}};
        auto r = create(f.port, body);
        REQUIRE(r.status == 200);
        json resp;
        if (stream) {
            auto data = sse_data(r.body);
            REQUIRE(!data.empty());
            resp = json::parse(data.back())["response"];
            std::string args;
            for (const auto& d : data) {
                json e = json::parse(d);
                if (e["type"] == "response.function_call_arguments.delta") args += e["delta"].get<std::string>();
                if (e["type"] == "response.output_text.delta") FAIL("text in a forced call: " << d);
            }
            REQUIRE(resp["output"].size() == 1);
            CHECK(resp["output"][0]["arguments"] == args);
        } else {
            resp = r.j();
        }
        INFO(resp.dump());
        check_response_object(resp);
        REQUIRE(resp["output"].size() == 1);
        const json call = resp["output"][0];
        CHECK(call["type"] == "function_call");
        CHECK(call["name"] == "get_weather");
        CHECK(call["id"].get<std::string>().rfind("fc_", 0) == 0);
        CHECK(call["call_id"].get<std::string>().rfind("call_", 0) == 0);
        const json args = json::parse(call["arguments"].get<std::string>(), nullptr, false);
        REQUIRE(args.is_object());
        CHECK(args["city"].is_string());

        // The output goes back with previous_response_id; the model answers in text.
        json back = {
            {"previous_response_id", resp["id"]},
            {"input", {{{"type", "function_call_output"}, {"call_id", call["call_id"]}, {"output", "Sunny, 21 C"}}}},
            {"tools", tools},
            {"max_output_tokens", 6},
            {"temperature", 0}};
        auto a = create(f.port, back);
        REQUIRE(a.status == 200);
        const json aj = a.j();
        check_response_object(aj);
        CHECK(aj["previous_response_id"] == resp["id"]);
        // Same session, its history: user, call, tool result, answer (the tools unchanged: no new system text).
        CHECK(aj["session_id"] == resp["session_id"]);
        const json msgs = session_messages(f.port, aj);
        REQUIRE(msgs.size() == 5);
        CHECK(msgs[0]["role"] == "system");
        CHECK(msgs[1]["role"] == "user");
        CHECK(msgs[2]["role"] == "assistant");
        CHECK(msgs[2]["content"].get<std::string>().find("get_weather") != std::string::npos);
        CHECK(msgs[3]["role"] == "tool");
        CHECK(msgs[3]["content"].get<std::string>().find("Sunny") != std::string::npos);
        CHECK(msgs[4]["role"] == "assistant");
        // The call's item can be referred to by its id in a later input.
        json ref = {{"input",
                     {{{"role", "user"}, {"content", "Weather in Paris?"}},
                      {{"type", "item_reference"}, {"id", call["id"]}},
                      {{"type", "function_call_output"}, {"call_id", call["call_id"]}, {"output", "Rain"}}}},
                    {"max_output_tokens", 4},
                    {"store", false}};
        CHECK(create(f.port, ref).status == 200);
    }
}

TEST_CASE("responses: text.format json_schema constrains the text", "[agent][server][responses]") {
    fixture f;
    json fmt = {{"type", "json_schema"},
                {"name", "answer"},
                {"strict", true},
                {"schema",
                 {{"type", "object"},
                  {"properties", {{"ok", {{"type", "boolean"}}}}},
                  {"required", {"ok"}},
                  {"additionalProperties", false}}}};
    auto r = create(f.port, {{"input", "Answer"}, {"text", {{"format", fmt}}}, {"max_output_tokens", 40}, {"seed", 2}});
    REQUIRE(r.status == 200);
    const json out = json::parse(output_text(r.j()), nullptr, false);
    INFO(r.body);
    REQUIRE(out.is_object());
    CHECK(out["ok"].is_boolean());
    CHECK(r.j()["text"]["format"]["type"] == "json_schema");
}

TEST_CASE("responses: chains survive a restart and branch", "[agent][server][responses][store]") {
    const auto db_dir = std::filesystem::temp_directory_path() / ("mnemos_resp_db_" + agent::random_hex(8));
    std::string first_id, first_text, first_session;
    {
        fixture f({}, true, db_dir);
        auto r = create(f.port, {{"instructions", "You remember numbers."},
                                 {"input", "Remember 42."},
                                 {"max_output_tokens", 4},
                                 {"temperature", 0}});
        REQUIRE(r.status == 200);
        first_id = r.j()["id"];
        first_session = r.j()["session_id"];
        first_text = output_text(r.j());
        f.db->flush();
    }
    {
        fixture f({}, true, db_dir);
        auto g = request(f.port, "GET", "/v1/responses/" + first_id);
        REQUIRE(g.status == 200);
        CHECK(output_text(g.j()) == first_text);
        auto r = create(f.port, {{"previous_response_id", first_id},
                                 {"instructions", "You remember numbers."},
                                 {"input", "Which one?"},
                                 {"max_output_tokens", 4},
                                 {"temperature", 0}});
        REQUIRE(r.status == 200);
        const json j = r.j();
        check_response_object(j);
        CHECK(j["previous_response_id"] == first_id);
        const std::string second_id = j["id"];
        CHECK(j["session_id"] == first_session);
        const json msgs = session_messages(f.port, j);
        REQUIRE(msgs.size() == 5);  // the same instructions are not repeated
        CHECK(msgs[0]["content"] == "You remember numbers.");
        CHECK(msgs[1]["content"] == "Remember 42.");
        CHECK(msgs[2]["content"] == first_text);
        CHECK(msgs[3]["content"] == "Which one?");
        // The history's KV blocks come back from the store.
        CHECK(j["usage"]["input_tokens_details"]["cached_tokens"].get<int>() > 0);

        // A second answer to the first response is a branch: a new session with the history up to it.
        auto b = create(f.port, {{"previous_response_id", first_id},
                                 {"input", "And another?"},
                                 {"max_output_tokens", 4},
                                 {"instructions", "Now be terse."}});
        REQUIRE(b.status == 200);
        CHECK(b.j()["session_id"] != first_session);
        const json bm = session_messages(f.port, b.j());
        REQUIRE(bm.size() == 6);
        CHECK(bm[2]["content"] == first_text);
        CHECK(bm[3]["role"] == "system");  // other instructions: a system message before the input
        CHECK(bm[3]["content"] == "Now be terse.");
        CHECK(bm[4]["content"] == "And another?");
        CHECK(session_messages(f.port, j).size() == 5);  // the first chain is unchanged

        // Not stored: the chain is read, not written.
        auto u = create(
            f.port,
            {{"previous_response_id", second_id}, {"input", "Once more"}, {"max_output_tokens", 4}, {"store", false}});
        REQUIRE(u.status == 200);
        CHECK(u.j()["usage"]["input_tokens"].get<int>() > j["usage"]["input_tokens"].get<int>());
        CHECK(session_messages(f.port, j).size() == 5);
    }
    std::error_code ec;
    std::filesystem::remove_all(db_dir, ec);
}

TEST_CASE("responses: another key's response looks missing", "[agent][server][responses][auth]") {
    agent::auth_config auth;
    auth.keys.push_back({"k-alice", "alice", false, true, {}, {}, {}});
    auth.keys.push_back({"k-bob", "bob", false, true, {}, {}, {}});
    fixture f(auth);
    auto r = create(f.port, {{"input", "Secret plan"}, {"max_output_tokens", 3}}, "k-alice");
    REQUIRE(r.status == 200);
    const std::string id = r.j()["id"];
    CHECK(request(f.port, "GET", "/v1/responses/" + id, "", "k-alice").status == 200);
    CHECK(request(f.port, "GET", "/v1/responses/" + id, "", "k-bob").status == 404);
    CHECK(create(f.port, {{"input", "More"}, {"previous_response_id", id}}, "k-bob").status == 404);
    CHECK(
        create(f.port, {{"input", "More"}, {"previous_response_id", id}, {"max_output_tokens", 3}}, "k-alice").status ==
        200);
}

TEST_CASE("responses: two answers to one response at once: one continues, one branches", "[agent][server][responses]") {
    fixture f;
    auto r = create(f.port, {{"input", "Start"}, {"max_output_tokens", 3}});
    REQUIRE(r.status == 200);
    const json first = r.j();
    http_result a, b;
    std::thread ta([&] {
        a = create(f.port, {{"previous_response_id", first["id"]}, {"input", "A"}, {"max_output_tokens", 3}});
    });
    std::thread tb([&] {
        b = create(f.port, {{"previous_response_id", first["id"]}, {"input", "B"}, {"max_output_tokens", 3}});
    });
    ta.join();
    tb.join();
    REQUIRE(a.status == 200);
    REQUIRE(b.status == 200);
    const bool a_continues = a.j()["session_id"] == first["session_id"];
    const bool b_continues = b.j()["session_id"] == first["session_id"];
    CHECK(a_continues != b_continues);
    // Both see the same history before their own input.
    for (const json& resp : {a.j(), b.j()}) {
        const json msgs = session_messages(f.port, resp);
        REQUIRE(msgs.size() == 4);
        CHECK(msgs[0]["content"] == "Start");
        CHECK(msgs[1]["content"] == output_text(first));
        CHECK((msgs[2]["content"] == "A" || msgs[2]["content"] == "B"));
    }
}

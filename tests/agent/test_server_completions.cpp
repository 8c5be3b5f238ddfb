// POST /v1/completions (legacy text completions), logprobs in chat completions, and "n" choices sharing the
// prompt's KV pages, over HTTP against the in-process server on a tiny model.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/agent/server_fixture.h"

using json = nlohmann::json;
using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

const char* k_prompt = "Once upon a time, there was a little girl named Lily. She liked to play in the park.";

http_result post(const fixture& f, const std::string& path, const json& body) {
    return request(f.port, "POST", path, body.dump());
}

// The JSON payloads of an SSE body, [DONE] excluded (it must be the last).
std::vector<json> sse_json(const http_result& r) {
    auto data = sse_data(r.body);
    REQUIRE(!data.empty());
    CHECK(data.back() == "[DONE]");
    data.pop_back();
    std::vector<json> out;
    for (const auto& d : data) {
        out.push_back(json::parse(d, nullptr, false));
        REQUIRE(!out.back().is_discarded());
    }
    return out;
}

}  // namespace

TEST_CASE("completions: text, token-id and one-element prompts; echo; usage", "[agent][server][completions]") {
    fixture f;
    auto r = post(f, "/v1/completions", {{"prompt", k_prompt}, {"max_tokens", 8}, {"temperature", 0}});
    REQUIRE(r.status == 200);
    const json j = r.j();
    CHECK(j["object"] == "text_completion");
    CHECK(j["id"].get<std::string>().rfind("cmpl-", 0) == 0);
    REQUIRE(j["choices"].size() == 1);
    const std::string text = j["choices"][0]["text"];
    CHECK(j["choices"][0]["index"] == 0);
    CHECK(j["choices"][0]["logprobs"].is_null());
    CHECK(j["usage"]["completion_tokens"] == 8);
    CHECK(j["usage"]["total_tokens"] == j["usage"]["prompt_tokens"].get<int>() + 8);

    auto one = post(f, "/v1/completions",
                    {{"prompt", json::array({k_prompt})}, {"max_tokens", 8}, {"temperature", 0}, {"echo", true}});
    REQUIRE(one.status == 200);
    CHECK(one.j()["choices"][0]["text"] == std::string(k_prompt) + text);

    // The same prompt as token ids: the same greedy text.
    const auto ids = f.m->tok().encode(k_prompt, f.m->tok().add_bos_default(), false);
    auto tok = post(f, "/v1/completions", {{"prompt", ids}, {"max_tokens", 8}, {"temperature", 0}});
    REQUIRE(tok.status == 200);
    CHECK(tok.j()["choices"][0]["text"] == text);
    CHECK(tok.j()["usage"]["prompt_tokens"] == j["usage"]["prompt_tokens"]);
}

TEST_CASE("completions: streamed chunks spell the text, then [DONE]", "[agent][server][completions]") {
    fixture f;
    auto plain = post(f, "/v1/completions", {{"prompt", k_prompt}, {"max_tokens", 8}, {"temperature", 0}});
    REQUIRE(plain.status == 200);
    auto r = post(f, "/v1/completions",
                  {{"prompt", k_prompt}, {"max_tokens", 8}, {"temperature", 0}, {"stream", true}, {"logprobs", 2}});
    REQUIRE(r.status == 200);
    auto chunks = sse_json(r);
    std::string text;
    json tokens = json::array();
    for (const auto& c : chunks) {
        CHECK(c["object"] == "text_completion");
        text += c["choices"][0]["text"].get<std::string>();
        for (const auto& t : c["choices"][0]["logprobs"]["tokens"]) tokens.push_back(t);
    }
    CHECK(text == plain.j()["choices"][0]["text"]);
    CHECK(tokens.size() == 8);
    CHECK(chunks.back()["choices"][0]["finish_reason"] == "length");
    CHECK(chunks.back()["usage"]["completion_tokens"] == 8);
}

TEST_CASE("completions: legacy logprobs; echo's prompt logprobs line up with the generated ones",
          "[agent][server][completions][logprobs]") {
    fixture f;
    auto prompt = f.m->tok().encode(k_prompt, f.m->tok().add_bos_default(), false);
    auto r = post(f, "/v1/completions", {{"prompt", prompt}, {"max_tokens", 6}, {"temperature", 0}, {"logprobs", 5}});
    REQUIRE(r.status == 200);
    const json c = r.j()["choices"][0];
    const json& l = c["logprobs"];
    REQUIRE(l["tokens"].size() == 6);
    REQUIRE(l["token_logprobs"].size() == 6);
    REQUIRE(l["top_logprobs"].size() == 6);
    REQUIRE(l["text_offset"].size() == 6);
    // Offsets count the bytes of the pieces from the end of the prompt text. A piece that is part of a UTF-8
    // character reaches JSON as U+FFFD, so the count restarts after one.
    const size_t prompt_bytes = f.m->tok().decode(prompt, false).size();
    size_t offset = prompt_bytes;
    CHECK(l["text_offset"][0].get<size_t>() == prompt_bytes);
    for (size_t k = 0; k < 6; ++k) {
        const std::string piece = l["tokens"][k];
        if (k > 0) CHECK(l["text_offset"][k].get<size_t>() >= l["text_offset"][k - 1].get<size_t>());
        if (offset != SIZE_MAX) CHECK(l["text_offset"][k].get<size_t>() == offset);
        offset = piece.find("\xEF\xBF\xBD") == std::string::npos ? l["text_offset"][k].get<size_t>() + piece.size()
                                                                 : SIZE_MAX;
        CHECK(l["token_logprobs"][k].get<double>() <= 0);
        CHECK(l["top_logprobs"][k].size() <= 5);
        // Greedy without penalties: the chosen token is the most likely one, listed among the alternatives.
        double best = -1e9;
        for (const auto& [piece, v] : l["top_logprobs"][k].items()) best = std::max(best, v.get<double>());
        CHECK(l["token_logprobs"][k].get<double>() == Approx(best).margin(1e-6));
    }

    // Echo: prompt + one more token of our choosing; the prompt's last position predicts what the first request
    // generated first, so its alternatives must equal that request's first ones (tolerance 1e-3: other batch
    // shapes, same model).
    json longer = prompt;
    longer.push_back(prompt[1]);
    auto e = post(f, "/v1/completions",
                  {{"prompt", longer}, {"max_tokens", 1}, {"temperature", 0}, {"logprobs", 5}, {"echo", true}});
    REQUIRE(e.status == 200);
    const json ej = e.j();
    const json& el = ej["choices"][0]["logprobs"];
    const size_t first = f.m->tok().add_bos_default() ? 1 : 0;  // a BOS is not listed
    REQUIRE(el["tokens"].size() == longer.size() - first + 1);
    CHECK(el["token_logprobs"][0].is_null());
    CHECK(el["top_logprobs"][0].is_null());
    CHECK(el["text_offset"][0] == 0);
    const json& at = el["top_logprobs"][prompt.size() - first];  // the appended token's position
    REQUIRE(at.size() == l["top_logprobs"][0].size());
    for (const auto& [piece, v] : l["top_logprobs"][0].items()) {
        INFO(piece);
        REQUIRE(at.contains(piece));
        CHECK(at[piece].get<double>() == Approx(v.get<double>()).margin(1e-3));
    }
    for (size_t k = 1; k < el["token_logprobs"].size(); ++k) CHECK(el["token_logprobs"][k].get<double>() <= 0);

    // Streamed, the prompt and its logprobs come first; with the generated tokens' they equal the reply's.
    auto st = post(
        f, "/v1/completions",
        {{"prompt", longer}, {"max_tokens", 1}, {"temperature", 0}, {"logprobs", 5}, {"echo", true}, {"stream", true}});
    REQUIRE(st.status == 200);
    auto chunks = sse_json(st);
    REQUIRE(chunks.size() >= 2);
    CHECK(chunks[0]["choices"][0]["text"] == ej["choices"][0]["text"].get<std::string>().substr(
                                                 0, chunks[0]["choices"][0]["text"].get<std::string>().size()));
    json joined = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"text_offset", json::array()}};
    for (const auto& c : chunks)
        for (const char* key : {"tokens", "token_logprobs", "text_offset"})
            for (const auto& v : c["choices"][0]["logprobs"][key]) joined[key].push_back(v);
    CHECK(joined["tokens"] == el["tokens"]);
    CHECK(joined["text_offset"] == el["text_offset"]);
    REQUIRE(joined["token_logprobs"].size() == el["token_logprobs"].size());
    CHECK(joined["token_logprobs"][0].is_null());
    for (size_t k = 1; k < el["token_logprobs"].size(); ++k)
        CHECK(joined["token_logprobs"][k].get<double>() == Approx(el["token_logprobs"][k].get<double>()).margin(1e-3));
}

TEST_CASE("completions and chat: bad parameters get a 400 naming them", "[agent][server][completions]") {
    fixture f;
    const std::string p = json(k_prompt).dump();
    const std::string msgs = R"("messages": [{"role": "user", "content": "hi"}])";
    check_bad_requests(
        f.port, {
                    {"POST", "/v1/completions", "{}", 400},
                    {"POST", "/v1/completions", R"({"prompt": 3})", 400},
                    {"POST", "/v1/completions", R"({"prompt": []})", 400},
                    {"POST", "/v1/completions", R"({"prompt": ["a", "b"]})", 400},
                    {"POST", "/v1/completions", R"({"prompt": [1, 99999999]})", 400},
                    {"POST", "/v1/completions", R"({"prompt": [1, -1]})", 400},
                    {"POST", "/v1/completions", "{\"prompt\": " + p + ", \"suffix\": \"x\"}", 400},
                    {"POST", "/v1/completions", "{\"prompt\": " + p + ", \"logprobs\": 6}", 400},
                    {"POST", "/v1/completions", "{\"prompt\": " + p + ", \"logprobs\": true}", 400},
                    {"POST", "/v1/completions", "{\"prompt\": " + p + ", \"echo\": 1}", 400},
                    {"POST", "/v1/completions", "{\"prompt\": " + p + ", \"best_of\": 3}", 400},
                    {"POST", "/v1/completions", "{\"prompt\": " + p + ", \"n\": 9}", 400},
                    {"POST", "/v1/chat/completions", "{" + msgs + ", \"n\": 9}", 400},
                    {"POST", "/v1/chat/completions", "{" + msgs + ", \"n\": 0}", 400},
                    {"POST", "/v1/chat/completions", "{" + msgs + ", \"logprobs\": 1}", 400},
                    {"POST", "/v1/chat/completions", "{" + msgs + ", \"top_logprobs\": 2}", 400},
                    {"POST", "/v1/chat/completions", "{" + msgs + ", \"logprobs\": true, \"top_logprobs\": 21}", 400},
                });
    auto n9 = post(f, "/v1/chat/completions", json::parse("{" + msgs + ", \"n\": 9}"));
    CHECK(n9.j()["error"]["message"].get<std::string>().find("8") != std::string::npos);
    auto top = post(f, "/v1/chat/completions", json::parse("{" + msgs + ", \"logprobs\": true, \"top_logprobs\": 21}"));
    CHECK(top.j()["error"]["message"].get<std::string>().find("top_logprobs") != std::string::npos);
    auto sfx = post(f, "/v1/completions", {{"prompt", "x"}, {"suffix", "y"}});
    CHECK(sfx.j()["error"]["message"].get<std::string>().find("suffix") != std::string::npos);
}

TEST_CASE("chat: logprobs and top_logprobs, streamed and not", "[agent][server][logprobs]") {
    fixture f;
    const json body = {{"messages", {{{"role", "user"}, {"content", "Tell me about Lily."}}}},
                       {"max_tokens", 8},
                       {"temperature", 0},
                       {"logprobs", true},
                       {"top_logprobs", 3}};
    auto r = post(f, "/v1/chat/completions", body);
    REQUIRE(r.status == 200);
    const json ch = r.j()["choices"][0];
    const json content = ch["logprobs"]["content"];
    REQUIRE(content.size() == 8);  // max_tokens, and no end-of-generation token in a random tiny model's top 1
    std::string spelled;
    for (const auto& e : content) {
        std::string from_bytes;
        for (const auto& b : e["bytes"]) from_bytes += static_cast<char>(b.get<int>());
        spelled += from_bytes;
        // A piece that is part of a UTF-8 character reaches JSON as U+FFFD; its bytes are the real ones.
        if (e["token"].get<std::string>().find("\xEF\xBF\xBD") == std::string::npos)
            CHECK(from_bytes == e["token"].get<std::string>());
        else
            CHECK(!agent::valid_utf8(from_bytes));
        REQUIRE(e["top_logprobs"].size() == 3);
        CHECK(e["logprob"].get<double>() <= 0);
        for (size_t k = 1; k < 3; ++k)
            CHECK(e["top_logprobs"][k]["logprob"].get<double>() <= e["top_logprobs"][k - 1]["logprob"].get<double>());
        CHECK(e["top_logprobs"][0]["token"] == e["token"]);  // greedy
        CHECK(e["top_logprobs"][0]["logprob"] == e["logprob"]);
    }
    // The bytes of the pieces spell the text (invalid UTF-8 from the random model reaches JSON replaced).
    const std::string spelled_json = json(spelled).dump(-1, ' ', false, json::error_handler_t::replace);
    CHECK(json::parse(spelled_json) == ch["message"]["content"]);

    json sb = body;
    sb["stream"] = true;
    auto s = post(f, "/v1/chat/completions", sb);
    REQUIRE(s.status == 200);
    json streamed = json::array();
    for (const auto& c : sse_json(s)) {
        const json& c0 = c["choices"][0];
        if (c0.contains("logprobs"))
            for (const auto& e : c0["logprobs"]["content"]) streamed.push_back(e);
        else
            CHECK(c0["delta"].value("content", std::string()).empty());  // text always comes with its logprobs
    }
    CHECK(streamed == content);

    // Off by default.
    json plain = body;
    plain.erase("logprobs");
    plain.erase("top_logprobs");
    CHECK(!post(f, "/v1/chat/completions", plain).j()["choices"][0].contains("logprobs"));
}

TEST_CASE("chat: n choices share the prompt's KV pages; seeds per choice; streamed with indexes",
          "[agent][server][choices]") {
    fixture f;
    // A prompt no earlier request cached.
    const json msgs = {{{"role", "user"},
                        {"content",
                         "Lily and her dog ran to the big tree. They saw a bird in the tree. The bird "
                         "sang a happy song. Lily was happy and she sang too. " +
                             agent::random_hex(8)}}};
    auto r = post(f, "/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 6}, {"seed", 11}, {"n", 3}});
    REQUIRE(r.status == 200);
    const json j = r.j();
    REQUIRE(j["choices"].size() == 3);
    for (int i = 0; i < 3; ++i) CHECK(j["choices"][i]["index"] == i);
    const int n_prompt = j["usage"]["prompt_tokens"];
    REQUIRE(n_prompt > 32);
    CHECK(j["usage"]["completion_tokens"] == 18);  // counted for every choice; the prompt once
    // Choice 0 computed the prompt; the others reused every full page of it but the last token's.
    const json reused = j["mnemos"]["choices_reused"];
    REQUIRE(reused.size() == 3);
    CHECK(reused[0] == 0);
    CHECK(reused[1] == (n_prompt - 1) / 16 * 16);
    CHECK(reused[2] == (n_prompt - 1) / 16 * 16);

    // Choice 0 is the request's seed; the others their own (deterministic) seeds.
    auto one = post(f, "/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 6}, {"seed", 11}});
    CHECK(one.j()["choices"][0]["message"]["content"] == j["choices"][0]["message"]["content"]);
    auto again = post(f, "/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 6}, {"seed", 11}, {"n", 3}});
    for (int i = 0; i < 3; ++i)
        CHECK(again.j()["choices"][i]["message"]["content"] == j["choices"][i]["message"]["content"]);

    auto s = post(f, "/v1/chat/completions",
                  {{"messages", msgs},
                   {"max_tokens", 6},
                   {"seed", 11},
                   {"n", 3},
                   {"stream", true},
                   {"stream_options", {{"include_usage", true}}}});
    REQUIRE(s.status == 200);
    std::vector<std::string> texts(3);
    std::vector<int> finishes(3, 0);
    auto chunks = sse_json(s);
    REQUIRE(!chunks.empty());
    for (const auto& c : chunks) {
        if (&c == &chunks.back()) break;  // the usage chunk
        REQUIRE(c["choices"].size() == 1);
        const int i = c["choices"][0]["index"];
        REQUIRE(i >= 0);
        REQUIRE(i < 3);
        texts[size_t(i)] += c["choices"][0]["delta"].value("content", std::string());
        if (!c["choices"][0]["finish_reason"].is_null()) finishes[size_t(i)]++;
    }
    for (int i = 0; i < 3; ++i) {
        CHECK(texts[size_t(i)] == j["choices"][i]["message"]["content"]);
        CHECK(finishes[size_t(i)] == 1);
    }
    CHECK(chunks.back()["choices"].empty());  // as OpenAI: the usage of every choice comes last, alone
    CHECK(chunks.back()["usage"]["completion_tokens"] == 18);

    // A session has one history.
    REQUIRE(post(f, "/v1/sessions", {{"id", "one-history"}}).status == 201);
    auto sn = post(f, "/v1/chat/completions", {{"messages", msgs}, {"session_id", "one-history"}, {"n", 2}});
    CHECK(sn.status == 400);
    auto sm = post(f, "/v1/sessions/one-history/messages", {{"messages", msgs}, {"n", 2}});
    CHECK(sm.status == 400);
}

TEST_CASE("chat: every choice gets its own tool call and its own response_format document",
          "[agent][server][choices]") {
    fixture f({}, false, {}, fixture_sizes{8192, 256 * 1024});  // tool prompts need room
    const json params = json::parse(R"({"type":"object","properties":{
        "city":{"type":"string","minLength":1,"maxLength":12},"days":{"type":"integer"}},"required":["city","days"]})");
    const json tools =
        json::array({{{"type", "function"}, {"function", {{"name", "get_weather"}, {"parameters", params}}}}});
    const json msgs = json::array({{{"role", "user"}, {"content", "What is the weather in Paris?"}}});
    for (bool stream : {false, true}) {
        INFO("stream " << stream);
        const json b = {{"messages", msgs},
                        {"tools", tools},
                        {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}},
                        {"max_tokens", 200},
                        {"seed", 4},
                        {"n", 3},
                        {"stream", stream}};
        auto r = post(f, "/v1/chat/completions", b);
        REQUIRE(r.status == 200);
        std::vector<std::string> args(3);
        std::vector<std::string> finish(3);
        if (!stream) {
            const json j = r.j();
            REQUIRE(j["choices"].size() == 3);
            for (size_t i = 0; i < 3; ++i) {
                finish[i] = j["choices"][i]["finish_reason"];
                REQUIRE(j["choices"][i]["message"]["tool_calls"].size() == 1);
                args[i] = j["choices"][i]["message"]["tool_calls"][0]["function"]["arguments"];
            }
        } else {
            for (const auto& c : sse_json(r)) {
                const json& c0 = c["choices"][0];
                const size_t i = c0["index"];
                REQUIRE(i < 3);
                if (!c0["finish_reason"].is_null()) finish[i] = c0["finish_reason"];
                if (c0["delta"].contains("tool_calls"))
                    args[i] += c0["delta"]["tool_calls"][0]["function"]["arguments"].get<std::string>();
            }
        }
        for (size_t i = 0; i < 3; ++i) {
            INFO("choice " << i << ": " << args[i]);
            CHECK(finish[i] == "tool_calls");
            const json a = json::parse(args[i], nullptr, false);
            REQUIRE(a.is_object());
            CHECK(a["city"].is_string());
            CHECK(a["days"].is_number_integer());
        }
    }
    const json schema = json::parse(R"({"type":"object","properties":{"answer":{"type":"string","maxLength":8},
        "ok":{"type":"boolean"}},"required":["answer","ok"]})");
    auto r = post(f, "/v1/chat/completions",
                  {{"messages", msgs},
                   {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "a"}, {"schema", schema}}}}},
                   {"max_tokens", 200},
                   {"seed", 8},
                   {"n", 2}});
    REQUIRE(r.status == 200);
    REQUIRE(r.j()["choices"].size() == 2);
    for (const auto& c : r.j()["choices"]) {
        const json doc = json::parse(c["message"]["content"].get<std::string>(), nullptr, false);
        INFO(c.dump());
        REQUIRE(doc.is_object());
        CHECK(doc["answer"].is_string());
        CHECK(doc["ok"].is_boolean());
    }
}

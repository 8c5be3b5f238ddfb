// The OpenAI protocol surface of the server: errors in OpenAI's shape with string codes, a random seed per
// request (reported) unless one is given, GET /v1/models/{id}, /health, /v1/embeddings (501), CORS, streamed
// usage as OpenAI sends it (stream_options.include_usage), session_id created on first use and resent
// histories matched against the session's log, and a 413 that the client reads whole.
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/server/history_match.h"
#include "tests/agent/server_fixture.h"

using json = nlohmann::json;
using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

using agent::server_detail::history_match;
using agent::server_detail::match_history;
using agent::server_detail::same_message;

json user(const std::string& text) { return {{"role", "user"}, {"content", text}}; }
json assistant(const std::string& text) { return {{"role", "assistant"}, {"content", text}}; }
json system_message(const std::string& text) { return {{"role", "system"}, {"content", text}}; }

std::string chat(const json& messages, const json& extra = json::object()) {
    json b = {{"messages", messages}, {"max_tokens", 6}};
    b.update(extra);
    return b.dump();
}

// The error object of r, which must be in OpenAI's shape: message, type and code strings, param a string or null.
json error_of(const http_result& r) {
    const json j = r.j();
    REQUIRE(j.is_object());
    REQUIRE(j.contains("error"));
    const json& e = j["error"];
    CHECK(e["message"].is_string());
    CHECK(e["type"].is_string());
    CHECK(e["code"].is_string());
    REQUIRE(e.contains("param"));
    CHECK((e["param"].is_string() || e["param"].is_null()));
    return e;
}

// A request with extra header lines ("Name: value\r\n" each).
http_result request_with_headers(uint16_t port, const std::string& method, const std::string& path,
                                 const std::string& headers, const std::string& body = "") {
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers;
    if (!body.empty() || method == "POST")
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    return raw_exchange(port, req + "\r\n" + body);
}

// The value of header `name` (case-insensitive) in r's header block; "" when absent.
std::string header_value(const http_result& r, std::string name) {
    auto lower = [](std::string s) {
        for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    };
    const std::string h = lower(r.headers);
    name = lower(name) + ":";
    size_t p = 0;
    while ((p = h.find("\r\n" + name, p)) != std::string::npos) {
        const size_t v = p + 2 + name.size();
        const size_t e = h.find("\r\n", v);
        std::string out = r.headers.substr(v, (e == std::string::npos ? h.size() : e) - v);
        out.erase(0, out.find_first_not_of(' '));
        return out;
    }
    return {};
}

std::string content_of(const http_result& r) { return r.j()["choices"][0]["message"]["content"].get<std::string>(); }

// The roles and contents of a session's message events.
std::vector<std::pair<std::string, std::string>> logged_messages(uint16_t port, const std::string& sid) {
    auto ev = request(port, "GET", "/v1/sessions/" + sid + "/events");
    REQUIRE(ev.status == 200);
    std::vector<std::pair<std::string, std::string>> out;
    const json j = ev.j();  // (a range-for over ev.j()["data"] would walk a destroyed temporary)
    for (const auto& e : j["data"])
        if (e.value("type", "") == "message") out.emplace_back(e["role"], e["content"]);
    return out;
}

}  // namespace

TEST_CASE("protocol: errors are in OpenAI's shape with string codes, naming params and limits",
          "[agent][server][protocol]") {
    fixture_sizes sizes;
    sizes.attention = engine::attention_mode::full;
    fixture f({}, false, {}, sizes);
    const json hi = json::array({user("hi")});

    auto huge = request(f.port, "POST", "/v1/chat/completions", chat(hi, {{"max_tokens", 1e9}}));
    CHECK(huge.status == 400);
    json e = error_of(huge);
    CHECK(e["type"] == "invalid_request_error");
    CHECK(e["code"] == "invalid_value");
    CHECK(e["param"] == "max_tokens");
    CHECK(e["message"].get<std::string>().find("1048576") != std::string::npos);  // the limit is named

    auto temp = request(f.port, "POST", "/v1/chat/completions", chat(hi, {{"temperature", 9}}));
    CHECK(temp.status == 400);
    CHECK(error_of(temp)["param"] == "temperature");
    CHECK(error_of(temp)["message"].get<std::string>().find("from 0 to 2") != std::string::npos);

    // A last message longer than the context (full attention): context_length_exceeded as the code.
    const json long_msg = json::array({user(std::string(12000, 'a') + " b c")});
    auto too_long = request(f.port, "POST", "/v1/chat/completions", chat(long_msg));
    CHECK(too_long.status == 400);
    e = error_of(too_long);
    CHECK(e["code"] == "context_length_exceeded");
    CHECK(e["type"] == "invalid_request_error");
    CHECK(e["param"] == "messages");

    auto no_route = request(f.port, "GET", "/nowhere");
    CHECK(no_route.status == 404);
    CHECK(error_of(no_route)["code"] == "not_found");
    auto method = request(f.port, "GET", "/v1/chat/completions");
    CHECK(method.status == 405);
    CHECK(error_of(method)["code"] == "method_not_allowed");
    auto not_json = request(f.port, "POST", "/v1/chat/completions", "{oops");
    CHECK(not_json.status == 400);
    CHECK(error_of(not_json)["param"].is_null());
}

TEST_CASE("protocol: keys, rate limits and busy sessions get their string codes", "[agent][server][protocol]") {
    agent::auth_config auth;
    auth.keys.push_back({"sk-admin", "admin", true, false, {}, {}, {}, 1});
    fixture f(auth);
    auto no_key = request(f.port, "GET", "/v1/models");
    CHECK(no_key.status == 401);
    CHECK(error_of(no_key)["code"] == "invalid_api_key");
    CHECK(error_of(no_key)["type"] == "authentication_error");
    CHECK(request(f.port, "GET", "/v1/models", "", "sk-admin").status == 200);
    auto limited = request(f.port, "GET", "/v1/models", "", "sk-admin");
    CHECK(limited.status == 429);
    CHECK(error_of(limited)["code"] == "rate_limit_exceeded");
    CHECK(error_of(limited)["type"] == "rate_limit_error");
}

TEST_CASE("protocol: without a seed every request draws a fresh one; with one, replies repeat",
          "[agent][server][protocol][seed]") {
    fixture f;
    const json hi = json::array({user("Tell me a story.")});
    const json hot = {{"temperature", 1.0}, {"max_tokens", 12}};
    std::set<std::string> texts;
    std::set<int64_t> seeds;
    for (int i = 0; i < 4; ++i) {
        auto r = request(f.port, "POST", "/v1/chat/completions", chat(hi, hot));
        REQUIRE(r.status == 200);
        REQUIRE(r.j()["mnemos"]["seed"].is_number_integer());
        const int64_t seed = r.j()["mnemos"]["seed"];
        CHECK(seed >= 0);
        CHECK(seed < (int64_t{1} << 53));  // exact in JavaScript
        seeds.insert(seed);
        texts.insert(content_of(r));
    }
    CHECK(seeds.size() == 4);
    CHECK(texts.size() > 1);  // a random-weight model at temperature 1: four draws are not all alike

    json seeded = hot;
    seeded["seed"] = 1234;
    auto a = request(f.port, "POST", "/v1/chat/completions", chat(hi, seeded));
    auto b = request(f.port, "POST", "/v1/chat/completions", chat(hi, seeded));
    REQUIRE(a.status == 200);
    REQUIRE(b.status == 200);
    CHECK(content_of(a) == content_of(b));
    CHECK(a.j()["mnemos"]["seed"] == 1234);
    // The reported seed reproduces a reply drawn without one.
    auto free = request(f.port, "POST", "/v1/chat/completions", chat(hi, hot));
    json again = hot;
    again["seed"] = free.j()["mnemos"]["seed"];
    auto replay = request(f.port, "POST", "/v1/chat/completions", chat(hi, again));
    CHECK(content_of(replay) == content_of(free));
}

TEST_CASE("protocol: models/{id}, /health and /v1/embeddings", "[agent][server][protocol]") {
    fixture f;
    auto list = request(f.port, "GET", "/v1/models");
    REQUIRE(list.status == 200);
    const std::string id = list.j()["data"][0]["id"];
    auto one = request(f.port, "GET", "/v1/models/" + id);
    REQUIRE(one.status == 200);
    CHECK(one.j() == list.j()["data"][0]);
    CHECK(request(f.port, "GET", "/v1/models/mnemos").j()["id"] == id);
    auto other = request(f.port, "GET", "/v1/models/gpt-4o");
    CHECK(other.status == 404);
    CHECK(error_of(other)["code"] == "model_not_found");
    CHECK(error_of(other)["param"] == "model");
    CHECK(error_of(other)["message"].get<std::string>().find(id) != std::string::npos);

    auto health = request(f.port, "GET", "/health");
    CHECK(health.status == 200);
    CHECK(health.j()["status"] == "ok");

    auto emb = request(f.port, "POST", "/v1/embeddings", R"({"model": "x", "input": "hello"})");
    CHECK(emb.status == 501);
    CHECK(error_of(emb)["code"] == "not_implemented");
    CHECK(error_of(emb)["message"].get<std::string>().find("embeddings") != std::string::npos);
}

TEST_CASE("protocol: CORS is off by default", "[agent][server][protocol][cors]") {
    fixture f;
    auto pre = request_with_headers(f.port, "OPTIONS", "/v1/chat/completions",
                                    "Origin: http://localhost:3000\r\nAccess-Control-Request-Method: POST\r\n");
    CHECK(pre.status == 405);
    CHECK(header_value(pre, "Access-Control-Allow-Origin").empty());
    auto get = request_with_headers(f.port, "GET", "/v1/models", "Origin: http://localhost:3000\r\n");
    CHECK(get.status == 200);
    CHECK(header_value(get, "Access-Control-Allow-Origin").empty());
}

TEST_CASE("protocol: CORS preflights and replies for allowed origins only", "[agent][server][protocol][cors]") {
    agent::auth_config auth;
    auth.keys.push_back({"sk-admin", "admin", true, false, {}, {}, {}, 0});
    fixture_sizes sizes;
    sizes.cors_origins = {"http://localhost:3000", "https://app.example"};
    fixture f(auth, false, {}, sizes);
    const std::string pre_headers =
        "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type, "
        "x-stainless-os\r\n";

    // Allowed: 204 without a key, with the grants.
    auto pre = request_with_headers(f.port, "OPTIONS", "/v1/chat/completions",
                                    "Origin: http://localhost:3000\r\n" + pre_headers);
    CHECK(pre.status == 204);
    CHECK(header_value(pre, "Access-Control-Allow-Origin") == "http://localhost:3000");
    CHECK(header_value(pre, "Access-Control-Allow-Methods").find("POST") != std::string::npos);
    CHECK(header_value(pre, "Access-Control-Allow-Headers").find("authorization") != std::string::npos);
    CHECK(header_value(pre, "Access-Control-Allow-Headers").find("x-stainless-os") != std::string::npos);
    CHECK(header_value(pre, "Access-Control-Max-Age") == "600");
    CHECK(header_value(pre, "Vary") == "Origin");
    auto pre_sessions =
        request_with_headers(f.port, "OPTIONS", "/v1/sessions/x", "Origin: https://app.example\r\n" + pre_headers);
    CHECK(pre_sessions.status == 204);
    CHECK(header_value(pre_sessions, "Access-Control-Allow-Methods").find("DELETE") != std::string::npos);

    // Not allowed: 403, no grant at all.
    for (const std::string origin : {"http://evil.example", "http://localhost:3001", "null"}) {
        INFO(origin);
        auto bad =
            request_with_headers(f.port, "OPTIONS", "/v1/chat/completions", "Origin: " + origin + "\r\n" + pre_headers);
        CHECK(bad.status == 403);
        CHECK(error_of(bad)["code"] == "origin_not_allowed");
        CHECK(header_value(bad, "Access-Control-Allow-Origin").empty());
        CHECK(header_value(bad, "Access-Control-Allow-Methods").empty());
        CHECK(header_value(bad, "Access-Control-Allow-Headers").empty());
    }

    // Replies (JSON, errors, SSE) carry the origin for allowed origins only.
    const std::string key = "Authorization: Bearer sk-admin\r\n";
    auto ok = request_with_headers(f.port, "GET", "/v1/models", key + "Origin: http://localhost:3000\r\n");
    CHECK(ok.status == 200);
    CHECK(header_value(ok, "Access-Control-Allow-Origin") == "http://localhost:3000");
    auto denied = request_with_headers(f.port, "GET", "/v1/models", "Origin: http://localhost:3000\r\n");
    CHECK(denied.status == 401);
    CHECK(header_value(denied, "Access-Control-Allow-Origin") == "http://localhost:3000");
    auto stream = request_with_headers(f.port, "POST", "/v1/chat/completions", key + "Origin: https://app.example\r\n",
                                       chat(json::array({user("hi")}), {{"stream", true}}));
    CHECK(stream.status == 200);
    CHECK(header_value(stream, "Access-Control-Allow-Origin") == "https://app.example");
    auto other = request_with_headers(f.port, "GET", "/v1/models", key + "Origin: http://evil.example\r\n");
    CHECK(other.status == 200);
    CHECK(header_value(other, "Access-Control-Allow-Origin").empty());
    // A body refused before it was read: the page can still read the 413.
    auto big = request_with_headers(f.port, "POST", "/v1/chat/completions", key + "Origin: http://localhost:3000\r\n",
                                    std::string(100 * 1024, 'x'));
    CHECK(big.status == 413);
    CHECK(header_value(big, "Access-Control-Allow-Origin") == "http://localhost:3000");
}

TEST_CASE("protocol: CORS with any origin, and bad origins are refused at start", "[agent][server][protocol][cors]") {
    fixture_sizes sizes;
    sizes.cors_origins = {"*"};
    fixture f({}, false, {}, sizes);
    auto pre = request_with_headers(f.port, "OPTIONS", "/v1/models",
                                    "Origin: http://anything.test:8000\r\nAccess-Control-Request-Method: GET\r\n");
    CHECK(pre.status == 204);
    CHECK(header_value(pre, "Access-Control-Allow-Origin") == "*");
    CHECK(header_value(pre, "Access-Control-Allow-Headers").find("Authorization") != std::string::npos);
    for (const char* bad : {"localhost:3000", "http://x.test/path", "ftp://x.test", "http://", ""}) {
        INFO(bad);
        CHECK(!agent::check_cors_origin(bad).ok());
    }
    CHECK(agent::check_cors_origin("http://[::1]:8080").ok());
    agent::server_options o;
    o.port = 0;
    o.cors_origins = {"http://x.test/"};
    auto s = agent::server::start(o, *f.runner, *f.sessions);
    REQUIRE(!s.ok());
    CHECK(s.error().message().find("http://x.test/") != std::string::npos);
}

TEST_CASE("protocol: streamed usage only with stream_options.include_usage, in a last chunk",
          "[agent][server][protocol][stream]") {
    fixture f;
    const json hi = json::array({user("hi")});
    auto plain = request(f.port, "POST", "/v1/chat/completions", chat(hi, {{"stream", true}, {"seed", 3}}));
    REQUIRE(plain.status == 200);
    auto ev = sse_data(plain.body);
    REQUIRE(ev.size() >= 3);
    CHECK(ev.back() == "[DONE]");
    for (size_t i = 0; i + 1 < ev.size(); ++i) {
        const json c = json::parse(ev[i]);
        CHECK(!c.contains("usage"));
        CHECK(c["choices"].size() == 1);
    }
    const json finish = json::parse(ev[ev.size() - 2]);
    CHECK(finish["choices"][0]["finish_reason"].is_string());
    CHECK(finish["mnemos"]["seed"] == 3);

    auto with = request(f.port, "POST", "/v1/chat/completions",
                        chat(hi, {{"stream", true}, {"stream_options", {{"include_usage", true}}}}));
    REQUIRE(with.status == 200);
    ev = sse_data(with.body);
    REQUIRE(ev.size() >= 4);
    CHECK(ev.back() == "[DONE]");
    for (size_t i = 0; i + 2 < ev.size(); ++i) {
        const json c = json::parse(ev[i]);
        REQUIRE(c.contains("usage"));
        CHECK(c["usage"].is_null());
        CHECK(c["choices"].size() == 1);
    }
    const json last = json::parse(ev[ev.size() - 2]);
    CHECK(last["choices"] == json::array());
    CHECK(last["usage"]["prompt_tokens"].get<int>() > 0);
    CHECK(last["usage"]["total_tokens"] ==
          last["usage"]["prompt_tokens"].get<int>() + last["usage"]["completion_tokens"].get<int>());
    CHECK(json::parse(ev[ev.size() - 3])["choices"][0]["finish_reason"].is_string());

    auto bad = request(f.port, "POST", "/v1/chat/completions",
                       chat(hi, {{"stream", true}, {"stream_options", {{"include_usage", "yes"}}}}));
    CHECK(bad.status == 400);
    CHECK(error_of(bad)["param"] == "stream_options.include_usage");
}

TEST_CASE("protocol: session_id creates the session on first use, with a character",
          "[agent][server][protocol][sessions]") {
    fixture f;
    auto first = request(
        f.port, "POST", "/v1/chat/completions",
        chat(json::array({user("Good evening.")}), {{"session_id", "npc-new"}, {"character", {{"name", "Butler"}}}}));
    REQUIRE(first.status == 200);
    CHECK(first.j()["session_id"] == "npc-new");
    auto meta = request(f.port, "GET", "/v1/sessions/npc-new");
    REQUIRE(meta.status == 200);
    CHECK(meta.j()["character"]["name"] == "Butler");
    const auto log = logged_messages(f.port, "npc-new");
    REQUIRE(log.size() == 3);  // the character's system message, the user's, the reply
    CHECK(log[0].first == "system");
    CHECK(log[1] == std::make_pair(std::string("user"), std::string("Good evening.")));
    CHECK(log[2].first == "assistant");

    auto bad_id =
        request(f.port, "POST", "/v1/chat/completions", chat(json::array({user("x")}), {{"session_id", "bad id"}}));
    CHECK(bad_id.status == 400);
    CHECK(error_of(bad_id)["param"] == "session_id");
    auto bad_chr = request(f.port, "POST", "/v1/chat/completions",
                           chat(json::array({user("x")}), {{"session_id", "c1"}, {"character", "x"}}));
    CHECK(bad_chr.status == 400);
    CHECK(request(f.port, "GET", "/v1/sessions/c1").status == 404);  // nothing created
}

TEST_CASE("protocol: session_id creation needs a key that may create sessions", "[agent][server][protocol][sessions]") {
    agent::auth_config auth;
    auth.keys.push_back({"sk-admin", "admin", true, false, {}, {}, {}, 0});
    auth.keys.push_back({"sk-player", "player", false, false, {"npc-*"}, {}, {}, 0});
    auth.keys.push_back({"sk-maker", "maker", false, true, {}, {}, {}, 0});
    fixture f(auth);
    const std::string body = chat(json::array({user("hi")}), {{"session_id", "npc-1"}});
    auto refused = request(f.port, "POST", "/v1/chat/completions", body, "sk-player");
    CHECK(refused.status == 403);
    CHECK(error_of(refused)["code"] == "insufficient_permissions");
    auto made = request(f.port, "POST", "/v1/chat/completions", body, "sk-maker");
    CHECK(made.status == 200);
    // Now it exists: the player may talk to it (npc-*), the maker owns it.
    CHECK(request(f.port, "POST", "/v1/chat/completions", body, "sk-player").status == 200);
    auto others = request(f.port, "POST", "/v1/chat/completions",
                          chat(json::array({user("hi")}), {{"session_id", "s-admin"}}), "sk-admin");
    CHECK(others.status == 200);
    auto hidden = request(f.port, "POST", "/v1/chat/completions",
                          chat(json::array({user("hi")}), {{"session_id", "s-admin"}}), "sk-maker");
    CHECK(hidden.status == 404);  // exists, but not the maker's: it looks missing
}

TEST_CASE("protocol: a resent history appends only its new tail; a contradicting one gets 409",
          "[agent][server][protocol][sessions]") {
    fixture f;
    json history = json::array({system_message("You are terse."), user("Hello.")});
    auto r1 = request(f.port, "POST", "/v1/chat/completions", chat(history, {{"session_id", "h1"}}));
    REQUIRE(r1.status == 200);
    history.push_back(assistant(content_of(r1)));
    history.push_back(user("And then?"));
    auto r2 = request(f.port, "POST", "/v1/chat/completions", chat(history, {{"session_id", "h1"}}));
    REQUIRE(r2.status == 200);
    history.push_back(assistant(content_of(r2)));
    history.push_back(user("Thanks."));
    auto r3 = request(f.port, "POST", "/v1/chat/completions", chat(history, {{"session_id", "h1"}, {"stream", true}}));
    REQUIRE(r3.status == 200);

    auto log = logged_messages(f.port, "h1");
    REQUIRE(log.size() == 7);  // system, then three user turns and their replies: nothing twice
    const std::vector<std::string> roles = {"system", "user", "assistant", "user", "assistant", "user", "assistant"};
    for (size_t i = 0; i < roles.size(); ++i) CHECK(log[i].first == roles[i]);
    CHECK(log[0].second == "You are terse.");
    CHECK(log[3].second == "And then?");
    CHECK(log[5].second == "Thanks.");

    // Only the new message, as the sessions API sends it: appended.
    auto r4 =
        request(f.port, "POST", "/v1/chat/completions", chat(json::array({user("One more.")}), {{"session_id", "h1"}}));
    CHECK(r4.status == 200);
    CHECK(logged_messages(f.port, "h1").size() == 9);

    // A history that contradicts the log: 409 naming the message, nothing appended.
    json edited = history;
    edited[3]["content"] = "And now?";
    edited.push_back(user("?"));
    auto conflict = request(f.port, "POST", "/v1/chat/completions", chat(edited, {{"session_id", "h1"}}));
    CHECK(conflict.status == 409);
    json e = error_of(conflict);
    CHECK(e["code"] == "session_history_mismatch");
    CHECK(e["param"] == "messages");
    const std::string msg = e["message"];
    CHECK(msg.find("messages[3]") != std::string::npos);
    CHECK(msg.find("And then?") != std::string::npos);
    CHECK(msg.find("And now?") != std::string::npos);
    // The whole history again, adding nothing: 409.
    auto same = request(f.port, "POST", "/v1/chat/completions",
                        chat(json::array({system_message("You are terse."), user("Hello.")}), {{"session_id", "h1"}}));
    CHECK(same.status == 409);
    CHECK(logged_messages(f.port, "h1").size() == 9);
    // The session still takes turns.
    CHECK(request(f.port, "POST", "/v1/sessions/h1/messages", R"({"content": "ok", "max_tokens": 2})").status == 200);
}

TEST_CASE("protocol: a character session's own system message is not expected from the client",
          "[agent][server][protocol][sessions]") {
    fixture f;
    REQUIRE(request(f.port, "POST", "/v1/sessions", R"({"id": "npc", "character": {"name": "Ada"}})").status == 201);
    json history = json::array({user("Hi Ada.")});
    auto r1 = request(f.port, "POST", "/v1/chat/completions", chat(history, {{"session_id", "npc"}}));
    REQUIRE(r1.status == 200);
    history.push_back(assistant(content_of(r1)));
    history.push_back(user("How are you?"));
    auto r2 = request(f.port, "POST", "/v1/chat/completions", chat(history, {{"session_id", "npc"}}));
    REQUIRE(r2.status == 200);
    const auto log = logged_messages(f.port, "npc");
    REQUIRE(log.size() == 5);
    CHECK(log[0].first == "system");
    CHECK(log[3].second == "How are you?");
}

TEST_CASE("history match: the cases", "[agent][server][protocol][sessions]") {
    using msgs = std::vector<engine::chat_message>;
    const msgs log = {{"system", "S"}, {"user", "u1"}, {"assistant", "a1"}};
    auto m = match_history(log, 0, {{"system", "S"}, {"user", "u1"}, {"assistant", "a1"}, {"user", "u2"}});
    CHECK(m.kind == history_match::append);
    REQUIRE(m.tail.size() == 1);
    CHECK(m.tail[0].content == "u2");
    m = match_history(log, 0, {{"user", "u2"}});  // new messages only
    CHECK(m.kind == history_match::append);
    CHECK(m.tail.size() == 1);
    m = match_history(log, 0, {{"system", "S"}, {"user", "u1 changed"}, {"assistant", "a1"}, {"user", "u2"}});
    CHECK(m.kind == history_match::conflict);
    CHECK(m.index == 1);
    m = match_history(log, 0, {{"system", "S"}, {"user", "u1"}});
    CHECK(m.kind == history_match::nothing_new);
    m = match_history(log, 1, {{"user", "u1"}, {"assistant", "a1"}, {"user", "u2"}});  // S is the session's own
    CHECK(m.kind == history_match::append);
    CHECK(m.tail.size() == 1);
    m = match_history({}, 0, {{"system", "S"}, {"user", "u1"}});
    CHECK(m.kind == history_match::append);
    CHECK(m.tail.size() == 2);
    // Whitespace around content does not matter; roles do.
    CHECK(same_message({"user", " hi\n"}, {"user", "hi"}));
    CHECK(!same_message({"user", "hi"}, {"assistant", "hi"}));
    // A tool call as the model wrote it and as a client sends it back (tool_calls rendered) are the same.
    CHECK(
        same_message({"assistant", "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>"},
                     {"assistant", "<tool_call>\n{\"arguments\":{\"b\":2,\"a\":1},\"name\":\"f\"}\n</tool_call>"}));
    CHECK(!same_message({"assistant", "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>"},
                        {"assistant", "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 2}}\n</tool_call>"}));
    // Tool results: by content, and by name when both have one.
    CHECK(same_message({"tool", "<tool_response>\n{\"name\":\"f\",\"content\":3}\n</tool_response>"},
                       {"tool", "<tool_response>\n{\"name\":\"\",\"content\":3}\n</tool_response>"}));
    CHECK(!same_message({"tool", "<tool_response>\n{\"name\":\"f\",\"content\":3}\n</tool_response>"},
                        {"tool", "<tool_response>\n{\"name\":\"g\",\"content\":3}\n</tool_response>"}));
}

namespace {

// Sends `head`, waits until the server has had time to answer and close, then sends `rest`; reads the reply.
// sent_all: every byte of rest was accepted (a server that closes without draining makes the sends fail).
struct slow_exchange {
    bool sent_all = false;
    http_result r;
};

slow_exchange send_slowly(uint16_t port, const std::string& head, const std::string& rest) {
    slow_exchange out;
    const int fd = connect_loopback(port);
    REQUIRE(fd >= 0);
    out.sent_all = send_all(fd, head);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // orders the events; nothing is timed
    out.sent_all = out.sent_all && send_all(fd, rest);
    const std::string in = recv_all(fd);
    ::close(fd);
    out.r = parse_response(in);
    return out;
}

}  // namespace

TEST_CASE("protocol: a body over the limit gets its whole 413 before the connection closes",
          "[agent][server][protocol][limits]") {
    fixture_sizes sizes;
    sizes.max_body_bytes = 64 * 1024;
    fixture f({}, false, {}, sizes);
    const std::string body(2 * 1024 * 1024, 'x');
    const std::string header =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        "application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n";
    for (int i = 0; i < 10; ++i) {
        INFO("try " << i);
        // The client is still sending when the server has answered: the server drains the rest before closing,
        // so the sends succeed and the 413 is read whole (closing at once would reset the connection).
        auto x = send_slowly(f.port, header + body.substr(0, 16 * 1024), body.substr(16 * 1024));
        CHECK(x.sent_all);
        REQUIRE(x.r.status == 413);
        const json e = error_of(x.r);
        CHECK(e["code"] == "payload_too_large");
        CHECK(e["message"].get<std::string>().find("65536") != std::string::npos);
        CHECK(header_value(x.r, "Connection") == "close");
    }
    // A chunked body over the limit, the same way.
    const std::string chunked_header =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        "application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    std::string chunks;
    for (int i = 0; i < 32; ++i) chunks += "10000\r\n" + std::string(0x10000, 'y') + "\r\n";
    auto x =
        send_slowly(f.port, chunked_header + chunks.substr(0, 200 * 1024), chunks.substr(200 * 1024) + "0\r\n\r\n");
    CHECK(x.sent_all);
    CHECK(x.r.status == 413);
    CHECK(request(f.port, "GET", "/healthz").status == 200);
}

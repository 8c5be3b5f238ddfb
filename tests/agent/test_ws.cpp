// GET /v1/ws: the WebSocket endpoint (streamed turns, errors that keep the
// socket open, the event feed and its access control) and the spectator page,
// in-process over a tiny model, driven by a synchronous Beast WebSocket client.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/agent/server_fixture.h"
#include "tests/agent/ws_client.h"

using json = nlohmann::json;
using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

void create_session(uint16_t port, const std::string& id, const std::string& name, const std::string& key = "") {
    const json body = {{"id", id}, {"character", {{"name", name}, {"persona", "You are " + name + "."}}}};
    auto r = request(port, "POST", "/v1/sessions", body.dump(), key);
    REQUIRE(r.status == 201);
}

std::string assistant_content(uint16_t port, const std::string& id, const std::string& key = "") {
    auto r = request(port, "GET", "/v1/sessions/" + id + "/events", "", key);
    REQUIRE(r.status == 200);
    std::string last;
    const json j = r.j();
    for (const auto& e : j["data"])
        if (e.value("role", "") == "assistant") last = e.value("content", "");
    return last;
}

}  // namespace

TEST_CASE("ws: a message streams tokens, then done", "[agent][ws]") {
    fixture f;
    create_session(f.port, "butler", "Butler");
    ws_client c(f.port, "/v1/ws");
    REQUIRE(c.ok);
    c.send(json{
        {"type", "message"},
        {"session_id", "butler"},
        {"content", "Who are you?"},
        {"max_tokens", 8},
        {"temperature",
         0}}.dump());
    auto frames = c.until("done");
    REQUIRE(!frames.empty());
    std::string text;
    for (size_t i = 0; i + 1 < frames.size(); ++i) {
        CHECK(frames[i]["type"] == "token");
        CHECK(frames[i]["session_id"] == "butler");
        text += frames[i]["text"].get<std::string>();
    }
    const json& done = frames.back();
    CHECK(done["session_id"] == "butler");
    CHECK(done["finish_reason"].is_string());
    REQUIRE(done["usage"].is_object());
    CHECK(done["usage"]["completion_tokens"].get<int>() <= 8);
    CHECK(done["usage"]["prompt_tokens"].get<int>() > 0);
    CHECK(assistant_content(f.port, "butler") == text);
}

TEST_CASE("ws: bad frames get error frames and the socket stays usable", "[agent][ws]") {
    fixture f;
    create_session(f.port, "maid", "Maid");
    ws_client c(f.port, "/v1/ws");
    REQUIRE(c.ok);
    const std::vector<std::string> bad = {
        "not json",
        "[1,2,3]",
        "{}",
        R"({"type":5})",
        R"({"type":"dance"})",
        R"({"type":"subscribe","topic":"gossip"})",
        R"({"type":"message"})",
        R"({"type":"message","session_id":"maid"})",
        R"({"type":"message","session_id":"maid","content":7})",
        R"({"type":"message","session_id":"maid","content":"hi","max_tokens":-3})",
        R"({"type":"message","session_id":"maid","content":"hi","temperature":"hot"})",
        R"({"type":"message","session_id":"nobody","content":"hi"})",
        R"({"type":"message","session_id":"maid","content":"bad \udc00 surrogate"})",
    };
    for (const auto& b : bad) {
        c.send(b);
        auto j = c.next();
        REQUIRE(j);
        CHECK((*j)["type"] == "error");
        CHECK((*j)["message"].is_string());
    }
    // Binary frames are read as text; invalid UTF-8 (only a binary frame may carry it) is refused.
    for (const std::string& b :
         {std::string("\x00\x01\x02garbage", 10),
          std::string("{\"type\":\"message\",\"session_id\":\"maid\",\"content\":\"\xff\xfe\"}")}) {
        c.send_binary(b);
        auto j = c.next();
        REQUIRE(j);
        CHECK((*j)["type"] == "error");
    }
    c.send(R"({"type":"message","session_id":"maid","content":"Still there?","max_tokens":4})");
    auto frames = c.until("done");
    REQUIRE(!frames.empty());
    CHECK(frames.back()["type"] == "done");
    // A plain GET without the upgrade is refused; the server keeps serving.
    auto plain = request(f.port, "GET", "/v1/ws");
    CHECK(plain.status == 426);
    CHECK(is_error_json(plain));
    CHECK(request(f.port, "GET", "/healthz").status == 200);
}

TEST_CASE("ws: the event feed carries events and tokens of HTTP turns", "[agent][ws]") {
    fixture f;
    create_session(f.port, "cook", "Cook");
    ws_client c(f.port, "/v1/ws");
    REQUIRE(c.ok);
    c.send(R"({"type":"subscribe","topic":"events"})");
    auto sub = c.next();
    REQUIRE(sub);
    REQUIRE((*sub)["type"] == "subscribed");
    bool listed = false;
    for (const auto& s : (*sub)["sessions"])
        if (s["id"] == "cook" && s["character"] == "Cook") listed = true;
    CHECK(listed);
    auto r =
        request(f.port, "POST", "/v1/sessions/cook/messages", R"({"content":"What is for dinner?","max_tokens":8})");
    REQUIRE(r.status == 200);
    const std::string reply = r.j()["choices"][0]["message"]["content"].get<std::string>();
    std::string streamed;
    bool saw_user = false, saw_assistant = false;
    while (!saw_assistant) {
        auto j = c.next();
        REQUIRE(j);
        CHECK((*j)["session_id"] == "cook");
        if ((*j)["type"] == "token") streamed += (*j)["text"].get<std::string>();
        if ((*j)["type"] == "event") {
            CHECK((*j)["seq"].is_number_integer());
            const json& ev = (*j)["event"];
            if (ev["role"] == "user") {
                saw_user = true;
                CHECK(ev["content"] == "What is for dinner?");
            }
            if (ev["role"] == "assistant") {
                saw_assistant = true;
                CHECK(ev["content"] == reply);
            }
        }
    }
    CHECK(saw_user);
    CHECK(streamed == reply);
    // A second socket's turn shows up on the feed too.
    ws_client d(f.port, "/v1/ws");
    REQUIRE(d.ok);
    d.send(R"({"type":"message","session_id":"cook","content":"And dessert?","max_tokens":4})");
    REQUIRE(!d.until("done").empty());
    bool saw_second = false;
    while (!saw_second) {
        auto j = c.next();
        REQUIRE(j);
        if ((*j)["type"] == "event" && (*j)["event"]["content"] == "And dessert?") saw_second = true;
    }
}

TEST_CASE("ws: keys, ?key= and what a subscriber may read", "[agent][ws]") {
    agent::auth_config auth;
    auth.keys.push_back({"admin-secret", "admin", true, true, {}, {}, {}});
    auth.keys.push_back({"npc-secret", "npc", false, false, {"npc-*"}, {}, {"npc-*"}});
    fixture f(auth);
    create_session(f.port, "npc-1", "Gardener", "admin-secret");
    create_session(f.port, "boss", "Boss", "admin-secret");

    ws_client none(f.port, "/v1/ws");
    CHECK(!none.ok);
    ws_client wrong(f.port, "/v1/ws?key=nope");
    CHECK(!wrong.ok);
    CHECK(request(f.port, "GET", "/healthz").status == 200);

    ws_client npc(f.port, "/v1/ws?key=npc-secret");
    REQUIRE(npc.ok);
    npc.send(R"({"type":"subscribe","topic":"events"})");
    auto sub = npc.next();
    REQUIRE(sub);
    REQUIRE((*sub)["type"] == "subscribed");
    REQUIRE((*sub)["sessions"].size() == 1);
    CHECK((*sub)["sessions"][0]["id"] == "npc-1");
    // The npc key may not talk to "boss".
    npc.send(R"({"type":"message","session_id":"boss","content":"hi","max_tokens":2})");
    auto e = npc.next();
    REQUIRE(e);
    CHECK((*e)["type"] == "error");

    ws_client admin(f.port, "/v1/ws", "admin-secret");
    REQUIRE(admin.ok);
    admin.send(R"({"type":"message","session_id":"boss","content":"secret plans","max_tokens":2})");
    REQUIRE(!admin.until("done").empty());
    admin.send(R"({"type":"message","session_id":"npc-1","content":"water the roses","max_tokens":2})");
    REQUIRE(!admin.until("done").empty());
    // The npc subscriber sees the npc-1 turn and nothing of boss.
    bool saw_npc = false;
    while (!saw_npc) {
        auto j = npc.next();
        REQUIRE(j);
        CHECK((*j)["session_id"] == "npc-1");
        if ((*j)["type"] == "event" && (*j)["event"]["content"] == "water the roses") saw_npc = true;
    }
}

TEST_CASE("ws: the spectator page is served at /", "[agent][ws]") {
    agent::auth_config auth;
    auth.keys.push_back({"admin-secret", "admin", true, true, {}, {}, {}});
    fixture f(auth);
    auto r = request(f.port, "GET", "/");
    REQUIRE(r.status == 200);
    CHECK(r.headers.find("text/html") != std::string::npos);
    CHECK(r.body.find("<!doctype html>") == 0);
    CHECK(r.body.find("/v1/ws") != std::string::npos);
    CHECK(r.body.find("/metrics") != std::string::npos);
    CHECK(r.body.find("http://") == std::string::npos);  // no external resources
    CHECK(r.body.find("https://") == std::string::npos);
    CHECK(request(f.port, "POST", "/").status == 405);
}

TEST_CASE("ws: the server stops with sockets open and a turn in flight", "[agent][ws]") {
    fixture f;
    create_session(f.port, "ghost", "Ghost");
    ws_client a(f.port, "/v1/ws");
    REQUIRE(a.ok);
    ws_client b(f.port, "/v1/ws");
    REQUIRE(b.ok);
    b.send(R"({"type":"subscribe","topic":"events"})");
    REQUIRE(b.next());
    a.send(R"({"type":"message","session_id":"ghost","content":"Boo","max_tokens":500})");
    auto first = a.next();
    REQUIRE(first);
    // Destroying the server closes the sockets; nothing hangs or crashes.
    f.srv.reset();
    while (a.next()) {
    }
    while (b.next()) {
    }
}

TEST_CASE("ws: turns beyond the window keep streaming; done frames say what was kept", "[agent][ws][context]") {
    fixture_sizes sizes;
    sizes.n_ctx = 160;
    sizes.attention = engine::attention_mode::full;  // the cut; sparse attention keeps everything
    fixture f({}, false, {}, sizes);
    create_session(f.port, "long", "Lily");
    ws_client c(f.port, "/v1/ws");
    REQUIRE(c.ok);
    int n_truncated = 0;
    for (int t = 0; t < 12; ++t) {
        INFO("turn " << t);
        c.send(json{
            {"type", "message"},
            {"session_id", "long"},
            {"content", "Tell me about the bird in the big tree, number " + std::to_string(t) + "."},
            {"max_tokens", 8},
            {"temperature",
             0}}.dump());
        auto frames = c.until("done");
        REQUIRE(!frames.empty());
        const json& done = frames.back();
        if (!done.contains("mnemos")) continue;
        ++n_truncated;
        const json& cx = done["mnemos"]["context"];
        CHECK(cx["truncated"] == true);
        CHECK(cx["n_dropped"].get<int>() > 0);
        CHECK(done["usage"]["prompt_tokens"] == cx["n_kept_first"].get<int>() + cx["n_kept_recent"].get<int>());
    }
    CHECK(n_truncated >= 4);
    auto e = request(f.port, "GET", "/v1/sessions/long/events");
    REQUIRE(e.status == 200);
    CHECK(e.j()["data"].size() == 1 + 2 * 12);
}

TEST_CASE("ws: message frames count against the key's rate limit", "[agent][ws][ratelimit]") {
    auto cfg = agent::parse_auth_config(R"({"keys":[
        {"key":"sk-gm","name":"gm","admin":true,"requests_per_minute":3}]})");
    REQUIRE(cfg.ok());
    fixture f(cfg.value());
    create_session(f.port, "butler", "Butler", "sk-gm");  // 1
    ws_client c(f.port, "/v1/ws", "sk-gm");               // 2: the upgrade
    REQUIRE(c.ok);
    const std::string msg =
        json{{"type", "message"}, {"session_id", "butler"}, {"content", "Hi"}, {"max_tokens", 2}}.dump();
    c.send(msg);  // 3
    CHECK(!c.until("done").empty());
    c.send(msg);  // 4: over
    auto e = c.next();
    REQUIRE(e);
    CHECK((*e)["type"] == "error");
    CHECK((*e)["message"].get<std::string>().find("rate limit") != std::string::npos);
    // The socket stays usable (subscribing is not a turn).
    c.send(R"({"type":"subscribe","topic":"events"})");
    auto sub = c.next();
    REQUIRE(sub);
    CHECK((*sub)["type"] == "subscribed");
    // A new upgrade is refused with 429.
    ws_client d(f.port, "/v1/ws", "sk-gm");
    CHECK(!d.ok);
}

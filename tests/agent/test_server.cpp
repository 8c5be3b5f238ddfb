// The HTTP server in-process on a loopback ephemeral port, over a tiny gpt2-vocab
// model, driven by a raw-socket HTTP/1.1 client.

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/runtime.h"
#include "agent/server/server.h"
#include "memory/store.h"
#include "tests/agent/server_fixture.h"
#include "tests/support/tiny_model.h"

using json = nlohmann::json;
using namespace mnemos;

using namespace mnemos::test_agent;

namespace {

const std::string k_chat =
    R"({"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Hello world"}],
                             "max_tokens":8,"temperature":0,"seed":7})";

}  // namespace

TEST_CASE("server: healthz, models, metrics", "[agent][server]") {
    fixture f;
    auto h = request(f.port, "GET", "/healthz");
    CHECK(h.status == 200);
    CHECK(h.j()["status"] == "ok");
    auto m = request(f.port, "GET", "/v1/models");
    REQUIRE(m.status == 200);
    CHECK(m.j()["object"] == "list");
    CHECK(m.j()["data"][0]["id"].is_string());
    auto mt = request(f.port, "GET", "/metrics");
    CHECK(mt.status == 200);
    CHECK(mt.body.find("mnemos_tokens_generated_total") != std::string::npos);
    CHECK(mt.body.find("mnemos_kv_pages_resident") != std::string::npos);
}

TEST_CASE("server: chat completions, JSON and SSE", "[agent][server]") {
    fixture f;
    auto r = request(f.port, "POST", "/v1/chat/completions", k_chat);
    REQUIRE(r.status == 200);
    const json j = r.j();
    REQUIRE(!j.is_discarded());
    CHECK(j["object"] == "chat.completion");
    CHECK(j["choices"][0]["message"]["role"] == "assistant");
    CHECK(j["choices"][0]["message"]["content"].is_string());
    CHECK((j["choices"][0]["finish_reason"] == "stop" || j["choices"][0]["finish_reason"] == "length"));
    CHECK(j["usage"]["prompt_tokens"].get<int>() > 0);
    CHECK(j["usage"]["completion_tokens"].get<int>() <= 8);

    // Greedy: the stream must give the same text.
    json sj = json::parse(k_chat);
    sj["stream"] = true;
    auto s = request(f.port, "POST", "/v1/chat/completions", sj.dump());
    REQUIRE(s.status == 200);
    CHECK(s.headers.find("text/event-stream") != std::string::npos);
    auto events = sse_data(s.body);
    REQUIRE(events.size() >= 3);
    CHECK(events.back() == "[DONE]");
    std::string text;
    std::string finish;
    for (size_t i = 0; i + 1 < events.size(); ++i) {
        json c = json::parse(events[i], nullptr, false);
        REQUIRE(!c.is_discarded());
        CHECK(c["object"] == "chat.completion.chunk");
        auto& d = c["choices"][0]["delta"];
        if (d.contains("content")) text += d["content"].get<std::string>();
        if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
    }
    CHECK(text == j["choices"][0]["message"]["content"].get<std::string>());
    CHECK(!finish.empty());

    // A second identical request reuses the cached prefix.
    auto again = request(f.port, "POST", "/v1/chat/completions", k_chat);
    REQUIRE(again.status == 200);
    auto mt = request(f.port, "GET", "/metrics");
    const std::string hits = "mnemos_prefix_cache_hit_tokens_total{endpoint=\"/v1/chat/completions\",model=\"";
    const size_t at = mt.body.find(hits);
    REQUIRE(at != std::string::npos);
    const size_t sp = mt.body.find(' ', at);
    CHECK(std::stod(mt.body.substr(sp + 1, mt.body.find('\n', sp) - sp - 1)) > 0);
}

TEST_CASE("server: sessions create, message, events, delete", "[agent][server]") {
    fixture f;
    json create = {{"id", "npc-butler"},
                   {"character",
                    {{"name", "Butler"},
                     {"persona", "You are the butler of the manor."},
                     {"public_knowledge", "Dinner is at eight."},
                     {"secrets", {"I hid the knife."}},
                     {"goals", {"Protect the family."}}}}};
    auto c = request(f.port, "POST", "/v1/sessions", create.dump());
    REQUIRE(c.status == 201);
    CHECK(c.j()["id"] == "npc-butler");
    CHECK(request(f.port, "POST", "/v1/sessions", create.dump()).status == 409);

    auto m1 = request(f.port, "POST", "/v1/sessions/npc-butler/messages",
                      R"({"content":"Good evening.","max_tokens":6,"temperature":0})");
    REQUIRE(m1.status == 200);
    CHECK(m1.j()["choices"][0]["message"]["content"].is_string());
    const int p1 = m1.j()["usage"]["prompt_tokens"];

    // Streamed second turn; the prompt grows by appending.
    auto m2 = request(f.port, "POST", "/v1/sessions/npc-butler/messages",
                      R"({"content":"Where were you at nine?","max_tokens":6,"temperature":0,"stream":true,
                          "stream_options":{"include_usage":true}})");
    REQUIRE(m2.status == 200);
    auto ev = sse_data(m2.body);
    REQUIRE(!ev.empty());
    CHECK(ev.back() == "[DONE]");
    json last = json::parse(ev[ev.size() - 2]);
    CHECK(last["usage"]["prompt_tokens"].get<int>() > p1);
    CHECK(last["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>() > 0);

    // session_id on chat completions: only the new message is sent.
    auto m3 =
        request(f.port, "POST", "/v1/chat/completions",
                R"({"session_id":"npc-butler","messages":[{"role":"user","content":"And now?"}],"max_tokens":4})");
    REQUIRE(m3.status == 200);
    CHECK(m3.j()["session_id"] == "npc-butler");

    auto g = request(f.port, "GET", "/v1/sessions/npc-butler");
    REQUIRE(g.status == 200);
    CHECK(g.j()["n_turns"] == 3);
    CHECK(g.j()["n_messages"] == 7);  // system + 3 x (user, assistant)

    auto e = request(f.port, "GET", "/v1/sessions/npc-butler/events");
    REQUIRE(e.status == 200);
    const json evs = e.j()["data"];
    REQUIRE(evs.size() == 7);
    CHECK(evs[0]["role"] == "system");
    CHECK(evs[1]["role"] == "user");
    CHECK(evs[1]["content"] == "Good evening.");
    CHECK(evs[2]["role"] == "assistant");

    CHECK(request(f.port, "DELETE", "/v1/sessions/npc-butler").status == 200);
    CHECK(request(f.port, "GET", "/v1/sessions/npc-butler").status == 404);
    CHECK(request(f.port, "GET", "/v1/sessions/npc-butler/events").status == 404);
}

TEST_CASE("server: concurrent sessions are batched", "[agent][server]") {
    fixture f;
    constexpr int n = 6;
    std::vector<std::thread> threads;
    std::vector<int> ok(n, 0);
    for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            const std::string id = "c" + std::to_string(i);
            if (request(f.port, "POST", "/v1/sessions", json{{"id", id}}.dump()).status != 201) return;
            int good = 0;
            for (int t = 0; t < 2; ++t) {
                json body = {
                    {"content", "Turn " + std::to_string(t) + " of " + id}, {"max_tokens", 8}, {"stream", t == 1}};
                auto r = request(f.port, "POST", "/v1/sessions/" + id + "/messages", body.dump());
                if (r.status == 200) ++good;
            }
            ok[i] = good;
        });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < n; ++i) CHECK(ok[i] == 2);
    const auto es = f.runner->stats();
    // Fewer steps than one request at a time would need: sequences shared steps.
    CHECK(es.n_decode_tokens > 0);
    CHECK(request(f.port, "GET", "/healthz").status == 200);
}

TEST_CASE("server: bad input gets 4xx JSON and the server keeps serving", "[agent][server]") {
    fixture f;
    REQUIRE(request(f.port, "POST", "/v1/sessions", R"({"id":"s1"})").status == 201);
    const std::string bad_utf8 = std::string(R"({"messages":[{"role":"user","content":")") + "\xC3\x28" + R"("}]})";
    const std::vector<bad_request> cases = {
        {"POST", "/v1/chat/completions", "{not json", 400},
        {"POST", "/v1/chat/completions", "[1,2]", 400},
        {"POST", "/v1/chat/completions", "{}", 400},
        {"POST", "/v1/chat/completions", R"({"messages":"hi"})", 400},
        {"POST", "/v1/chat/completions", R"({"messages":[]})", 400},
        {"POST", "/v1/chat/completions", R"({"messages":[{"role":"wizard","content":"x"}]})", 400},
        {"POST", "/v1/chat/completions", R"({"messages":[{"role":"user","content":5}]})", 400},
        {"POST", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"max_tokens":"many"})", 400},
        {"POST", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-3})", 400},
        {"POST", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"temperature":9})", 400},
        {"POST", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})", 400},
        {"POST", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})", 400},
        {"POST", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"session_id":"no pe"})", 400},
        {"POST", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"session_id":5})", 400},
        {"POST", "/v1/chat/completions", bad_utf8, 400},
        {"GET", "/v1/chat/completions", "", 405},
        {"POST", "/v1/sessions", "{oops", 400},
        {"POST", "/v1/sessions", R"({"id":"bad id with spaces"})", 400},
        {"POST", "/v1/sessions", R"({"id":7})", 400},
        {"POST", "/v1/sessions", R"({"character":"x"})", 400},
        {"POST", "/v1/sessions", R"({"character":{"secrets":[1]}})", 400},
        {"POST", "/v1/sessions", R"({"character":{"shared_prefix":"missing"}})", 400},
        {"GET", "/v1/sessions/unknown", "", 404},
        {"DELETE", "/v1/sessions/unknown", "", 404},
        {"GET", "/v1/sessions/unknown/events", "", 404},
        {"POST", "/v1/sessions/unknown/messages", R"({"content":"hi"})", 404},
        {"POST", "/v1/sessions/s1/messages", "nope", 400},
        {"POST", "/v1/sessions/s1/messages", R"({"content":7})", 400},
        {"POST", "/v1/sessions/s1/messages", R"({"text":"hi"})", 400},
        {"POST", "/v1/sessions/s1/messages", R"({"content":"hi","role":"assistant"})", 400},
        {"POST", "/v1/sessions/s1/messages", std::string(R"({"content":")") + "\xFF\xFE" + R"("})", 400},
        {"PUT", "/v1/sessions/s1/events", "", 405},
        {"GET", "/nowhere", "", 404},
        {"POST", "/healthz", "", 405},
    };
    check_bad_requests(f.port, cases);
    // Oversized body: 413.
    auto big = request(f.port, "POST", "/v1/chat/completions", std::string(100 * 1024, 'x'));
    CHECK(big.status == 413);
    CHECK(is_error_json(big));
    // Garbage instead of HTTP: 400.
    auto garbage = raw_exchange(f.port, "\x01\x02 not http at all\r\n\r\n");
    CHECK(garbage.status == 400);
    // A prompt longer than the context is attended sparsely (nothing is cut), not refused.
    json huge = {{"messages", {{{"role", "user"}, {"content", std::string(20000, 'a') + " b c d e f g"}}}},
                 {"max_tokens", 2}};
    auto longp = request(f.port, "POST", "/v1/chat/completions", huge.dump());
    CHECK(longp.status == 200);
    CHECK(longp.j()["mnemos"]["context"]["attention"] == "sparse");
    CHECK(longp.j()["usage"]["prompt_tokens"].get<int>() > 1024);
    // Still serving, and the session is usable (no turn left busy).
    CHECK(request(f.port, "GET", "/healthz").status == 200);
    CHECK(request(f.port, "POST", "/v1/sessions/s1/messages", R"({"content":"hi","max_tokens":2})").status == 200);
}

TEST_CASE("server: API keys limit what a key can reach", "[agent][server][auth]") {
    auto cfg = agent::parse_auth_config(R"({"keys":[
        {"key":"sk-gm","name":"gm","admin":true},
        {"key":"sk-p1","name":"player1","sessions":["npc-*"]},
        {"key":"sk-p2","name":"player2","create":true}]})");
    REQUIRE(cfg.ok());
    CHECK(!agent::parse_auth_config(R"({"keys":[{"name":"x"}]})").ok());
    CHECK(!agent::parse_auth_config("nope").ok());
    fixture f(cfg.value());
    json create = {
        {"id", "npc-maid"},
        {"character", {{"name", "Maid"}, {"persona", "A maid."}, {"secrets", {"The key is under the mat."}}}}};
    CHECK(request(f.port, "POST", "/v1/sessions", create.dump()).status == 401);
    CHECK(request(f.port, "POST", "/v1/sessions", create.dump(), "sk-wrong").status == 401);
    CHECK(request(f.port, "POST", "/v1/sessions", create.dump(), "sk-p1").status == 403);
    REQUIRE(request(f.port, "POST", "/v1/sessions", create.dump(), "sk-gm").status == 201);
    CHECK(request(f.port, "GET", "/healthz").status == 200);
    CHECK(request(f.port, "GET", "/v1/models").status == 401);

    // player1 may talk to the NPC, and see its public fields only.
    CHECK(request(f.port, "POST", "/v1/sessions/npc-maid/messages", R"({"content":"Hi","max_tokens":2})", "sk-p1")
              .status == 200);
    auto g = request(f.port, "GET", "/v1/sessions/npc-maid", "", "sk-p1");
    REQUIRE(g.status == 200);
    CHECK(!g.j()["character"].contains("secrets"));
    CHECK(g.body.find("under the mat") == std::string::npos);
    auto ev = request(f.port, "GET", "/v1/sessions/npc-maid/events", "", "sk-p1");
    CHECK(ev.status == 403);
    CHECK(ev.body.find("under the mat") == std::string::npos);
    CHECK(request(f.port, "DELETE", "/v1/sessions/npc-maid", "", "sk-p1").status == 403);
    // player2 cannot even see it; its own session is its own.
    CHECK(request(f.port, "GET", "/v1/sessions/npc-maid", "", "sk-p2").status == 404);
    CHECK(request(f.port, "POST", "/v1/sessions/npc-maid/messages", R"({"content":"Hi"})", "sk-p2").status == 404);
    REQUIRE(request(f.port, "POST", "/v1/sessions", R"({"id":"mine"})", "sk-p2").status == 201);
    CHECK(request(f.port, "GET", "/v1/sessions/mine/events", "", "sk-p2").status == 200);
    CHECK(request(f.port, "GET", "/v1/sessions/mine", "", "sk-p1").status == 404);
    // The game master reads everything.
    auto gm = request(f.port, "GET", "/v1/sessions/npc-maid/events", "", "sk-gm");
    CHECK(gm.status == 200);
    CHECK(gm.body.find("under the mat") != std::string::npos);
}

TEST_CASE("server: open access only on loopback", "[agent][server][auth]") {
    fixture f;
    agent::server_options o;
    o.host = "0.0.0.0";
    o.port = 0;
    auto s = agent::server::start(o, *f.runner, *f.sessions);
    CHECK(!s.ok());
}

TEST_CASE("server: sessions survive a restart with the RocksDB store", "[agent][server][store]") {
    const auto db_dir = std::filesystem::temp_directory_path() / ("mnemos_agent_db_" + agent::random_hex(8));
    std::string first_reply;
    {
        fixture f({}, true, db_dir);
        REQUIRE(request(f.port, "POST", "/v1/sessions",
                        R"({"id":"comp","character":{"name":"Ada","persona":"A companion."}})")
                    .status == 201);
        auto r = request(f.port, "POST", "/v1/sessions/comp/messages",
                         R"({"content":"Remember the number 42.","max_tokens":4,"temperature":0})");
        REQUIRE(r.status == 200);
        first_reply = r.j()["choices"][0]["message"]["content"];
        f.db->flush();
    }
    {
        fixture f({}, true, db_dir);
        auto g = request(f.port, "GET", "/v1/sessions/comp");
        REQUIRE(g.status == 200);
        CHECK(g.j()["n_messages"] == 3);
        CHECK(g.j()["character"]["name"] == "Ada");
        auto e = request(f.port, "GET", "/v1/sessions/comp/events");
        REQUIRE(e.status == 200);
        CHECK(e.j()["data"][2]["content"] == first_reply);
        auto r = request(f.port, "POST", "/v1/sessions/comp/messages", R"({"content":"What was it?","max_tokens":4})");
        CHECK(r.status == 200);
        // The resumed prompt's blocks come back from the store instead of being recomputed.
        CHECK(r.j()["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>() > 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(db_dir, ec);
}

TEST_CASE("runtime: utf-8 validation and characters", "[agent]") {
    CHECK(agent::valid_utf8("plain"));
    CHECK(agent::valid_utf8("caf\xC3\xA9 \xF0\x9F\x98\x80"));
    CHECK(!agent::valid_utf8("\xC3\x28"));
    CHECK(!agent::valid_utf8("\xC0\xAF"));          // overlong
    CHECK(!agent::valid_utf8("\xED\xA0\x80"));      // surrogate
    CHECK(!agent::valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
    auto c = agent::character_from_json(json{{"name", "N"}, {"system_prompt", "P"}, {"goals", "win"}});
    REQUIRE(c.ok());
    CHECK(c->persona == "P");
    CHECK(c->goals.size() == 1);
    const std::string sys = agent::character_system_prompt(c.value(), "RULES");
    CHECK(sys.find("RULES") == 0);
    CHECK(sys.find("win") != std::string::npos);
}

// Each session is an actor: concurrent turns of one session (HTTP, chat
// completions with session_id, WebSocket) wait for each other and run in
// arrival order instead of being refused; the wait is bounded (queue length,
// timeout) and ends when the client disconnects or the server stops. The
// engine thread is held by a task (engine_runner::run_on_engine_thread) so the
// turns are known to overlap.

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/agent/server_fixture.h"
#include "tests/agent/ws_client.h"

using json = nlohmann::json;
using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

void create_innkeeper(uint16_t port, const std::string& id) {
    const json body = {{"id", id}, {"character", {{"name", "Innkeeper"}, {"persona", "You keep the inn."}}}};
    REQUIRE(request(port, "POST", "/v1/sessions", body.dump()).status == 201);
}

// A gauge from /metrics; -1 when missing.
int64_t gauge(uint16_t port, const std::string& name) {
    auto r = request(port, "GET", "/metrics");
    const std::string key = "\n" + name + " ";
    const size_t p = r.body.find(key);
    if (p == std::string::npos) return -1;
    return std::stoll(r.body.substr(p + key.size()));
}

// Polls until the gauge has the value (10 s at most).
bool wait_gauge(uint16_t port, const std::string& name, int64_t value) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        if (gauge(port, name) == value) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

// Holds the engine thread until released (or destroyed, so a failed REQUIRE does not hang the fixture).
struct engine_hold {
    std::promise<void> p;
    explicit engine_hold(agent::engine_runner& r) {
        auto f = p.get_future().share();
        r.run_on_engine_thread([f](engine::engine&) { f.wait(); });
    }
    bool released = false;
    void release() {
        if (!released) p.set_value();
        released = true;
    }
    ~engine_hold() { release(); }
};

// Posts a turn to session "inn" on its own thread (the result lands in out) and, when gauge is given, waits
// until the server reports it: "mnemos_active_turns" 1 (it runs) or "mnemos_waiting_turns" n (it waits).
std::thread post_turn(uint16_t port, http_result& out, const std::string& content, const std::string& gauge_name = {},
                      int64_t gauge_value = 1) {
    std::thread t([port, &out, content] {
        out = request(port, "POST", "/v1/sessions/inn/messages", json{{"content", content}, {"max_tokens", 4}}.dump());
    });
    // Failing here leaves t joinable, which aborts the binary: a loud failure rather than a hang on a
    // request that waits for the held engine.
    if (!gauge_name.empty()) REQUIRE(wait_gauge(port, gauge_name, gauge_value));
    return t;
}

json session_events(uint16_t port, const std::string& id) {
    auto r = request(port, "GET", "/v1/sessions/" + id + "/events");
    REQUIRE(r.status == 200);
    return r.j()["data"];
}

// The text of a session turn's reply (JSON or SSE).
std::string reply_text(const http_result& r) {
    if (r.headers.find("text/event-stream") == std::string::npos)
        return r.j()["choices"][0]["message"]["content"].get<std::string>();
    std::string text;
    for (const auto& d : sse_data(r.body)) {
        if (d == "[DONE]") continue;
        const json c = json::parse(d, nullptr, false);
        if (c.is_object() && c.contains("choices") && c["choices"][0]["delta"].contains("content"))
            text += c["choices"][0]["delta"]["content"].get<std::string>();
    }
    return text;
}

}  // namespace

TEST_CASE("server queue: concurrent turns of one session run one at a time, in arrival order",
          "[agent][server][queue]") {
    fixture f;
    create_innkeeper(f.port, "inn");
    constexpr int n = 4;
    std::vector<http_result> res(n);
    std::vector<std::thread> threads;
    {
        engine_hold hold(*f.runner);
        for (int i = 0; i < n; ++i) {
            const std::string q = "Question " + std::to_string(i) + "?";
            threads.emplace_back([&f, &res, i, q] {
                if (i == 2) {
                    json body = {
                        {"session_id", "inn"}, {"messages", {{{"role", "user"}, {"content", q}}}}, {"max_tokens", 6}};
                    res[i] = request(f.port, "POST", "/v1/chat/completions", body.dump());
                } else {
                    json body = {{"content", q}, {"max_tokens", 6}, {"stream", i == 1}};
                    res[i] = request(f.port, "POST", "/v1/sessions/inn/messages", body.dump());
                }
            });
            // Arrival order is known: the first turn runs, the others wait in turn.
            if (i == 0)
                REQUIRE(wait_gauge(f.port, "mnemos_active_turns", 1));
            else
                REQUIRE(wait_gauge(f.port, "mnemos_waiting_turns", i));
        }
        CHECK(gauge(f.port, "mnemos_active_turns") == 1);
        hold.release();
        for (auto& t : threads) t.join();
    }
    for (int i = 0; i < n; ++i) {
        INFO("turn " << i << ": " << res[i].body);
        CHECK(res[i].status == 200);
    }
    CHECK(gauge(f.port, "mnemos_waiting_turns") == 0);
    const json evs = session_events(f.port, "inn");
    REQUIRE(evs.size() == 1 + 2 * n);
    CHECK(evs[0]["role"] == "system");
    for (int i = 0; i < n; ++i) {
        INFO("turn " << i);
        const json& u = evs[1 + 2 * i];
        const json& a = evs[2 + 2 * i];
        CHECK(u["role"] == "user");
        CHECK(u["content"] == "Question " + std::to_string(i) + "?");
        CHECK(a["role"] == "assistant");
        if (res[i].status == 200) CHECK(a["content"] == reply_text(res[i]));
    }
    auto g = request(f.port, "GET", "/v1/sessions/inn");
    CHECK(g.j()["n_turns"] == n);
    CHECK(g.j()["busy"] == false);
}

TEST_CASE("server queue: a full queue and a wait timeout get 409", "[agent][server][queue]") {
    SECTION("queue full") {
        fixture_sizes sz;
        sz.max_waiting_turns = 1;
        fixture f({}, false, {}, sz);
        create_innkeeper(f.port, "inn");
        http_result a, b;
        std::thread ta, tb;
        {
            engine_hold hold(*f.runner);
            ta = post_turn(f.port, a, "First.", "mnemos_active_turns");
            tb = post_turn(f.port, b, "Second.", "mnemos_waiting_turns");
            auto c = request(f.port, "POST", "/v1/sessions/inn/messages", R"({"content":"Third.","max_tokens":4})");
            CHECK(c.status == 409);
            CHECK(is_error_json(c));
            CHECK(c.j()["error"]["type"] == "invalid_request_error");
            CHECK(c.j()["error"]["code"] == "session_busy");
            CHECK(c.j()["error"]["message"].get<std::string>().find("busy") != std::string::npos);
            auto d = request(f.port, "POST", "/v1/chat/completions",
                             R"({"session_id":"inn","messages":[{"role":"user","content":"Fourth."}],"max_tokens":4})");
            CHECK(d.status == 409);
            hold.release();
            ta.join();
            tb.join();
        }
        CHECK(a.status == 200);
        CHECK(b.status == 200);
        CHECK(session_events(f.port, "inn").size() == 5);  // system + 2 x (user, assistant)
    }
    SECTION("wait timeout") {
        fixture_sizes sz;
        sz.turn_wait_timeout_ms = 200;
        fixture f({}, false, {}, sz);
        create_innkeeper(f.port, "inn");
        http_result a;
        std::thread ta;
        {
            engine_hold hold(*f.runner);
            ta = post_turn(f.port, a, "First.", "mnemos_active_turns");
            const auto t0 = std::chrono::steady_clock::now();
            auto b = request(f.port, "POST", "/v1/sessions/inn/messages", R"({"content":"Second.","max_tokens":4})");
            const auto waited = std::chrono::steady_clock::now() - t0;
            CHECK(b.status == 409);
            CHECK(b.j()["error"]["message"].get<std::string>().find("timed out") != std::string::npos);
            CHECK(waited >= std::chrono::milliseconds(150));
            CHECK(gauge(f.port, "mnemos_waiting_turns") == 0);
            hold.release();
            ta.join();
        }
        CHECK(a.status == 200);
        CHECK(session_events(f.port, "inn").size() == 3);
    }
}

TEST_CASE("server queue: a waiting turn whose client disconnects leaves the queue", "[agent][server][queue]") {
    fixture f;
    create_innkeeper(f.port, "inn");
    http_result a;
    std::thread ta;
    {
        engine_hold hold(*f.runner);
        ta = post_turn(f.port, a, "First.", "mnemos_active_turns");
        // A second turn from a raw socket that goes away while waiting.
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(f.port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        const std::string body = R"({"content":"Gone.","max_tokens":4})";
        const std::string req =
            "POST /v1/sessions/inn/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            "application/json\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body;
        REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
        REQUIRE(wait_gauge(f.port, "mnemos_waiting_turns", 1));
        ::close(fd);
        CHECK(wait_gauge(f.port, "mnemos_waiting_turns", 0));
        hold.release();
        ta.join();
    }
    CHECK(a.status == 200);
    const json evs = session_events(f.port, "inn");
    REQUIRE(evs.size() == 3);  // the gone turn never began
    CHECK(evs[1]["content"] == "First.");
}

TEST_CASE("server queue: a WebSocket turn and an HTTP turn on one session both run", "[agent][server][queue][ws]") {
    fixture f;
    create_innkeeper(f.port, "inn");
    ws_client c(f.port, "/v1/ws");
    REQUIRE(c.ok);
    http_result h;
    std::thread th;
    {
        engine_hold hold(*f.runner);
        c.send(json{{"type", "message"}, {"session_id", "inn"}, {"content", "Over the socket."}, {"max_tokens", 6}}
                   .dump());
        REQUIRE(wait_gauge(f.port, "mnemos_active_turns", 1));
        th = std::thread([&] {
            h = request(f.port, "POST", "/v1/sessions/inn/messages", R"({"content":"Over HTTP.","max_tokens":6})");
        });
        REQUIRE(wait_gauge(f.port, "mnemos_waiting_turns", 1));
        // A second frame on the same socket waits too (not an error frame).
        c.send(json{{"type", "message"}, {"session_id", "inn"}, {"content", "Again."}, {"max_tokens", 6}}.dump());
        REQUIRE(wait_gauge(f.port, "mnemos_waiting_turns", 2));
        hold.release();
        auto first = c.until("done");
        REQUIRE(!first.empty());
        CHECK(first.back()["type"] == "done");
        auto second = c.until("done");
        REQUIRE(!second.empty());
        CHECK(second.back()["type"] == "done");
        th.join();
    }
    CHECK(h.status == 200);
    const json evs = session_events(f.port, "inn");
    REQUIRE(evs.size() == 7);
    CHECK(evs[1]["content"] == "Over the socket.");
    CHECK(evs[2]["role"] == "assistant");
    CHECK(evs[3]["content"] == "Over HTTP.");
    CHECK(evs[4]["role"] == "assistant");
    CHECK(evs[4]["content"] == h.j()["choices"][0]["message"]["content"]);
    CHECK(evs[5]["content"] == "Again.");
    CHECK(evs[6]["role"] == "assistant");
}

TEST_CASE("server queue: stop answers waiting turns 503 and finishes in time", "[agent][server][queue]") {
    fixture f;
    create_innkeeper(f.port, "inn");
    http_result a, b;
    std::thread ta, tb;
    engine_hold hold(*f.runner);
    ta = post_turn(f.port, a, "First.", "mnemos_active_turns");
    tb = post_turn(f.port, b, "Second.", "mnemos_waiting_turns");
    const auto t0 = std::chrono::steady_clock::now();
    f.srv->stop();
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4));
    tb.join();
    CHECK(b.status == 503);
    CHECK(is_error_json(b));
    f.srv.reset();  // closes the running turn's connection (its coroutine is destroyed with the io_context)
    hold.release();
    ta.join();
    CHECK(a.status != 200);
}

// The engine thread drops turns cancelled at shutdown only when it gets to them, here after the server and its
// io_context are gone. Their callbacks must not own anything of the io side then (a channel or a strand dying on
// the engine thread touched the destroyed io_context: a heap-use-after-free that the ASan build of this test
// reports). One turn of each kind that waits for the engine: a plain one, a streamed one, and n choices (whose
// first choice waits for its prefill).
TEST_CASE("server queue: turns in flight when the server is destroyed end after its io_context",
          "[agent][server][queue]") {
    fixture f;
    std::vector<json> bodies;
    const json msgs = {{{"role", "user"}, {"content", "Hello?"}}};
    bodies.push_back({{"messages", msgs}, {"max_tokens", 4}});
    bodies.push_back({{"messages", msgs}, {"max_tokens", 4}, {"stream", true}});
    bodies.push_back({{"messages", msgs}, {"max_tokens", 4}, {"n", 3}});
    std::vector<http_result> res(bodies.size());
    std::vector<std::thread> threads;
    {
        engine_hold hold(*f.runner);
        for (size_t i = 0; i < bodies.size(); ++i) {
            threads.emplace_back(
                [&f, &res, &bodies, i] { res[i] = request(f.port, "POST", "/v1/chat/completions", bodies[i].dump()); });
            REQUIRE(wait_gauge(f.port, "mnemos_active_turns", static_cast<int64_t>(i + 1)));
        }
        f.srv.reset();  // cancels the turns, closes their connections, destroys the io_context
        hold.release();
        for (auto& t : threads) t.join();
    }
    for (size_t i = 0; i < res.size(); ++i) {
        INFO("turn " << i << ": " << res[i].body);
        if (bodies[i].contains("stream"))
            CHECK(res[i].body.find("[DONE]") == std::string::npos);  // its 200 may have been sent
        else
            CHECK(res[i].status != 200);
    }
    // The engine dropped the cancelled turns and serves a new server's turn on the same runner.
    agent::server_options opt;
    opt.port = 0;
    opt.default_max_tokens = 4;
    auto s = agent::server::start(opt, *f.runner, *f.sessions);
    REQUIRE(s.ok());
    f.srv = std::move(s.value());
    auto r = request(f.srv->port(), "POST", "/v1/chat/completions", bodies[0].dump());
    INFO(r.body);
    CHECK(r.status == 200);
}

// Untrusted input is bounded before it is walked (STYLE rule 14): JSON nested
// 100k deep in every field the server copies or dumps, huge chunked trailers
// and headers, oversized message/tool counts and schemas, and non-string
// types all get a 4xx (or an error frame), and the server keeps answering.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent/config/serve_config.h"
#include "agent/scenario/scenario.h"
#include "agent/tooling/agent_loop.h"
#include "tests/agent/deep_bodies.h"
#include "tests/agent/server_fixture.h"
#include "tests/agent/ws_client.h"
#include "tools/json_limits.h"

using json = nlohmann::json;
using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

constexpr size_t k_deep = 100000;

// k_deep arrays, one inside the other: "[[[...]]]".
std::string deep_array() { return std::string(k_deep, '[') + std::string(k_deep, ']'); }

// A server that accepts bodies large enough to carry the deep documents.
fixture_sizes big_bodies() {
    fixture_sizes s;
    s.max_body_bytes = 1 << 20;
    return s;
}

bool alive(uint16_t port) { return request(port, "GET", "/healthz").status == 200; }

std::string error_message(const http_result& r) {
    const json j = r.j();
    return j.is_object() && j.contains("error") && j["error"].is_object() ? j["error"].value("message", "") : "";
}

// POST body -> 400 whose message contains `says`; then /healthz still answers.
void expect_400(const fixture& f, const std::string& path, const std::string& body, const std::string& says) {
    auto r = request(f.port, "POST", path, body);
    CHECK(r.status == 400);
    CHECK(is_error_json(r));
    CHECK(r.j()["error"].value("type", "") == "invalid_request_error");
    CHECK_THAT(error_message(r), Catch::Contains(says));
    CHECK(alive(f.port));
}

}  // namespace

TEST_CASE("limits: JSON nested 100k deep in any field of a request gets 400", "[agent][limits]") {
    fixture f({}, false, {}, big_bodies());
    const std::string deep = deep_array();
    const std::string depth_says = "JSON nested deeper than 64 levels";
    // Every field the server copies, compares or dumps, each with the deep document in it.
    const std::vector<std::string> chat_bodies = deep_field_chat_bodies();
    for (const auto& b : chat_bodies) {
        INFO(b.substr(0, 200));
        expect_400(f, "/v1/chat/completions", with_deep(b, deep), depth_says);
    }
    // JSON inside JSON strings: tool-call arguments and a tool message's content are parsed again.
    const std::string deep_string = json(deep).dump();
    expect_400(f, "/v1/chat/completions",
               with_deep(R"({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                   "function": {"name": "f", "arguments": DEEP}}]}, {"role": "user", "content": "hi"}]})",
                         deep_string),
               "tool call arguments: " + depth_says);
    expect_400(f, "/v1/chat/completions",
               with_deep(R"({"messages": [{"role": "user", "content": "hi"},
                   {"role": "tool", "tool_call_id": "c", "content": DEEP}]})",
                         deep_string),
               "tool message content: " + depth_says);
    // The sessions API.
    expect_400(f, "/v1/sessions", with_deep(R"({"id": "s1", "character": {"name": DEEP}})", deep), depth_says);
    REQUIRE(request(f.port, "POST", "/v1/sessions", R"({"id": "s1"})").status == 201);
    expect_400(f, "/v1/sessions/s1/messages", with_deep(R"({"content": DEEP})", deep), depth_says);
    expect_400(f, "/v1/sessions/s1/messages",
               with_deep(R"({"messages": [{"role": "tool", "name": DEEP, "content": "x"}]})", deep), depth_says);
    // PUT routes parse bodies the same way.
    auto r = request(f.port, "PUT", "/v1/prefixes/p", with_deep(R"({"text": DEEP})", deep));
    CHECK(r.status == 400);
    CHECK_THAT(error_message(r), Catch::Contains(depth_says));
    CHECK(alive(f.port));
}

TEST_CASE("limits: a WebSocket frame nested 100k deep gets an error frame, the socket stays", "[agent][limits]") {
    fixture f({}, false, {}, big_bodies());
    ws_client c(f.port, "/v1/ws");
    REQUIRE(c.ok);
    const std::string deep = deep_array();
    for (const std::string& frame :
         {with_deep(R"({"type": "subscribe", "topic": DEEP})", deep), with_deep(R"({"type": DEEP})", deep), deep,
          with_deep(R"({"type": "message", "session_id": "x", "content": DEEP})", deep)}) {
        c.send(frame);
        auto e = c.next();
        REQUIRE(e);
        CHECK((*e)["type"] == "error");
        CHECK_THAT((*e).value("message", ""), Catch::Contains("JSON nested deeper than 64 levels"));
    }
    c.send(R"({"type": "subscribe", "topic": "events"})");
    auto ok = c.next();
    REQUIRE(ok);
    CHECK((*ok)["type"] == "subscribed");
    CHECK(alive(f.port));
}

TEST_CASE("limits: a chunked body with a huge trailer gets 431, the server lives", "[agent][limits]") {
    fixture f({}, false, {}, big_bodies());
    const std::string body = R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})";
    // One field of 66 KB: Beast 1.81 would throw std::length_error out of io_context::run.
    auto r =
        raw_exchange(f.port, chunked_post("/v1/chat/completions", body, "X-Big: " + std::string(66000, 'a') + "\r\n"));
    CHECK(r.status == 431);
    CHECK_THAT(error_message(r), Catch::Contains("request header fields too large"));
    CHECK(alive(f.port));
    // Many small fields, 40 KB in all.
    std::string many;
    for (int i = 0; i < 400; ++i) many += "X-T" + std::to_string(i) + ": " + std::string(90, 'b') + "\r\n";
    r = raw_exchange(f.port, chunked_post("/v1/chat/completions", body, many));
    CHECK(r.status == 431);
    CHECK_THAT(error_message(r), Catch::Contains("request header fields too large"));
    CHECK(alive(f.port));
    // One header field over the per-field limit, and a 70 KB header.
    r = raw_exchange(f.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'c') + "\r\n\r\n");
    CHECK(r.status == 431);
    CHECK_THAT(error_message(r), Catch::Contains("request header fields too large"));
    CHECK(alive(f.port));
    r = raw_exchange(f.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70000, 'c') + "\r\n\r\n");
    CHECK(r.status == 431);
    CHECK_THAT(error_message(r), Catch::Contains("request header fields too large"));
    CHECK(alive(f.port));
    // A small trailer is still fine (the request is parsed; the tiny model answers), and ignored: a trailing
    // Authorization changes nothing. Beast itself refuses a trailing Content-Length.
    r = raw_exchange(f.port, chunked_post("/v1/chat/completions", body, "X-Small: 1\r\nAuthorization: Bearer no\r\n"));
    CHECK(r.status == 200);
    r = raw_exchange(f.port, chunked_post("/v1/chat/completions", body, "Content-Length: 3\r\n"));
    CHECK(r.status == 400);
    CHECK(alive(f.port));
}

TEST_CASE("limits: message and tool counts and schema sizes get 400 naming the limit", "[agent][limits]") {
    fixture f({}, false, {}, big_bodies());
    json msgs = json::array();
    for (int i = 0; i < 5000; ++i) msgs.push_back({{"role", "user"}, {"content", "x"}});
    expect_400(f, "/v1/chat/completions", json{{"messages", msgs}}.dump(), "at most 1024 messages per request");
    REQUIRE(request(f.port, "POST", "/v1/sessions", R"({"id": "s1"})").status == 201);
    expect_400(f, "/v1/sessions/s1/messages", json{{"messages", msgs}}.dump(), "at most 1024 messages per request");

    const json hi = json::array({{{"role", "user"}, {"content", "hi"}}});
    auto tool = [](const std::string& name, json params, std::string description = "") {
        return json{{"type", "function"},
                    {"function", {{"name", name}, {"description", description}, {"parameters", std::move(params)}}}};
    };
    const json small = {{"type", "object"}, {"properties", json::object()}};
    json tools = json::array();
    for (size_t i = 0; i <= agent::k_max_tools; ++i) tools.push_back(tool("t" + std::to_string(i), small));
    expect_400(f, "/v1/chat/completions", json{{"messages", hi}, {"tools", tools}}.dump(),
               "at most 128 tools per request");

    json props = json::object();
    for (int i = 0; i < 2000; ++i)
        props["p" + std::to_string(i)] = {{"type", "string"}, {"description", "forty bytes"}};
    const json big = {{"type", "object"}, {"properties", props}};
    REQUIRE(big.dump().size() > agent::k_max_schema_bytes);
    expect_400(f, "/v1/chat/completions", json{{"messages", hi}, {"tools", {tool("f", big)}}}.dump(),
               "tools[0].function.parameters exceeds 65536 bytes");
    expect_400(
        f, "/v1/chat/completions",
        json{{"messages", hi}, {"response_format", {{"type", "json_schema"}, {"json_schema", {{"schema", big}}}}}}
            .dump(),
        "'response_format.json_schema.schema' exceeds 65536 bytes");
    expect_400(f, "/v1/chat/completions",
               json{{"messages", hi}, {"tools", {tool("f", small, std::string(200000, 'd'))}}}.dump(),
               "tools[0].function.description exceeds 16384 bytes");
    // At the limits, requests are still accepted.
    json ok_msgs = json::array();
    for (size_t i = 0; i < agent::k_max_messages; ++i) ok_msgs.push_back({{"role", "user"}, {"content", "x"}});
    auto r = request(f.port, "POST", "/v1/chat/completions", json{{"messages", ok_msgs}, {"max_tokens", 1}}.dump());
    CHECK(r.status != 0);
    CHECK_THAT(error_message(r), !Catch::Contains("messages per request"));
    CHECK(alive(f.port));
}

TEST_CASE("limits: non-string types get 400, not a dropped connection", "[agent][limits]") {
    fixture f({}, false, {}, big_bodies());
    const std::vector<std::string> bodies = {
        R"({"messages": [{"role": "user", "content": [{"type": 5, "text": "x"}]}]})",
        R"({"messages": [{"role": "user", "content": [{"type": ["text"], "text": "x"}]}]})",
        R"({"messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 5}}}]})",
        R"({"messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": {"a": 1}}}}]})",
        R"({"messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
            "properties": {"a": {"type": 7}}}}}]})",
        R"({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": 1}]})",
        R"({"messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": 1}})",
        R"({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": 1}})",
    };
    for (const auto& b : bodies) {
        INFO(b);
        auto r = request(f.port, "POST", "/v1/chat/completions", b);
        CHECK(r.status >= 400);
        CHECK(r.status < 500);
        CHECK(is_error_json(r));
        CHECK(alive(f.port));
    }
}

TEST_CASE("limits: config and scenario files are bounded and typed", "[agent][limits]") {
    agent::serve_settings s;
    auto st = agent::apply_serve_config(R"({"keys": [{"key": "k1", "name": 5}]})", s);
    CHECK_FALSE(st.ok());
    CHECK_THAT(st.message(), Catch::Contains("keys[0].name must be a string"));
    st = agent::apply_serve_config(R"({"keys": [{"key": "k1", "name": {"a": [1]}}]})", s);
    CHECK_THAT(st.message(), Catch::Contains("keys[0].name must be a string"));
    const std::string deep = deep_array();
    st = agent::apply_serve_config(R"({"server": {"port": )" + deep + "}}", s);
    CHECK_FALSE(st.ok());
    CHECK_THAT(st.message(), Catch::Contains("JSON nested deeper than 64 levels"));
    CHECK_THAT(agent::parse_auth_config(R"({"keys": )" + deep + "}").error().message(),
               Catch::Contains("JSON nested deeper than 64 levels"));
    auto sc = agent::parse_scenario(R"({"title": )" + deep + "}", "deep.json");
    REQUIRE_FALSE(sc.ok());
    CHECK_THAT(sc.error().message(), Catch::Contains("deep.json: JSON nested deeper than 64 levels"));
}

TEST_CASE("limits: trailer fields are ignored, so a trailing Authorization grants nothing", "[agent][limits]") {
    agent::auth_config auth;
    auth.keys.push_back({"admin-secret", "admin", true, true, {}, {}, {}});
    fixture f(auth);
    const std::string body = R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})";
    auto r = raw_exchange(f.port, chunked_post("/v1/chat/completions", body, "Authorization: Bearer admin-secret\r\n"));
    CHECK(r.status == 401);
    CHECK(request(f.port, "POST", "/v1/chat/completions", body, "admin-secret").status == 200);
}

TEST_CASE("limits: out of file descriptors, accept backs off instead of spinning, then serves again",
          "[agent][limits]") {
    fixture f;
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
    size_t open_fds = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++open_fds;
    rlimit low = old;
    low.rlim_cur = open_fds + 12;  // a few client sockets; the server's accepts take the rest, then fail
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(f.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::vector<int> clients;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    for (int i = 0; i < 12; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) break;
        clients.push_back(fd);
        (void)!::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);  // queued by the kernel
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the accept loop meets EMFILE meanwhile
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
    for (int fd : clients) ::close(fd);
    const auto metrics = request(f.port, "GET", "/metrics");
    REQUIRE(metrics.status == 200);
    const auto at = metrics.body.find("\nmnemos_accept_errors_total ");
    REQUIRE(at != std::string::npos);
    const long errors = std::stol(metrics.body.substr(at + 28));
    INFO("accept errors in about 1 s: " << errors);
    // Retrying every 100 ms gives about 10; retrying at once (spinning a core) gives thousands.
    CHECK(errors >= 1);
    CHECK(errors <= 40);
}

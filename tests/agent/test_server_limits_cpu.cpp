// The CPU a bad request costs the server is bounded: the inputs that crashed it or cost it seconds (JSON nested
// 100k deep in every field, huge trailers and headers, 5,000 messages, 129 tools, oversized schemas and
// descriptions, non-string types) are refused with a 4xx, and the server's CPU time over the whole batch,
// measured, stays far below a generous bound. The figure measured is stated in the README.
#include <sys/resource.h>
#include <time.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/tooling/agent_loop.h"
#include "tests/agent/deep_bodies.h"
#include "tests/agent/server_fixture.h"

using json = nlohmann::json;
using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

double seconds(const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; }

// CPU seconds of the whole process (user + system).
double process_cpu() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return seconds(u.ru_utime) + seconds(u.ru_stime);
}

// CPU seconds of the calling thread.
double thread_cpu() {
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}

std::string post(const std::string& path, const std::string& body) {
    return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n" +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Every bad input of the limits tests, as raw requests.
std::vector<std::string> bad_requests() {
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    const std::string deep_string = json(deep).dump();
    std::vector<std::string> out;
    for (const std::string& b : deep_field_chat_bodies())
        out.push_back(post("/v1/chat/completions", with_deep(b, deep)));
    out.push_back(post("/v1/chat/completions",
                       with_deep(R"({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                           "function": {"name": "f", "arguments": DEEP}}]}, {"role": "user", "content": "hi"}]})",
                                 deep_string)));
    out.push_back(post("/v1/chat/completions", with_deep(R"({"messages": [{"role": "user", "content": "hi"},
                           {"role": "tool", "tool_call_id": "c", "content": DEEP}]})",
                                                         deep_string)));
    out.push_back(post("/v1/sessions", with_deep(R"({"id": "s1", "character": {"name": DEEP}})", deep)));
    out.push_back(post("/v1/sessions/s1/messages", with_deep(R"({"content": DEEP})", deep)));
    // Trailers and headers over the parser's limits.
    const std::string small = R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})";
    out.push_back(chunked_post("/v1/chat/completions", small, "X-Big: " + std::string(66000, 'a') + "\r\n"));
    std::string many;
    for (int i = 0; i < 400; ++i) many += "X-T" + std::to_string(i) + ": " + std::string(90, 'b') + "\r\n";
    out.push_back(chunked_post("/v1/chat/completions", small, many));
    out.push_back("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70000, 'c') + "\r\n\r\n");
    // Counts and sizes: 5,000 messages, 129 tools, a 2,000-property schema, a 200 KB description.
    json msgs = json::array();
    for (int i = 0; i < 5000; ++i) msgs.push_back({{"role", "user"}, {"content", "x"}});
    out.push_back(post("/v1/chat/completions", json{{"messages", msgs}}.dump()));
    out.push_back(post("/v1/sessions/s1/messages", json{{"messages", msgs}}.dump()));
    const json hi = json::array({{{"role", "user"}, {"content", "hi"}}});
    auto tool = [](const std::string& name, json params, std::string description = "") {
        return json{{"type", "function"},
                    {"function", {{"name", name}, {"description", description}, {"parameters", std::move(params)}}}};
    };
    const json object = {{"type", "object"}, {"properties", json::object()}};
    json tools = json::array();
    for (size_t i = 0; i <= agent::k_max_tools; ++i) tools.push_back(tool("t" + std::to_string(i), object));
    out.push_back(post("/v1/chat/completions", json{{"messages", hi}, {"tools", tools}}.dump()));
    json props = json::object();
    for (int i = 0; i < 2000; ++i) props["p" + std::to_string(i)] = {{"type", "string"}, {"description", "forty"}};
    const json big = {{"type", "object"}, {"properties", props}};
    out.push_back(post("/v1/chat/completions", json{{"messages", hi}, {"tools", {tool("f", big)}}}.dump()));
    out.push_back(
        post("/v1/chat/completions",
             json{{"messages", hi}, {"response_format", {{"type", "json_schema"}, {"json_schema", {{"schema", big}}}}}}
                 .dump()));
    out.push_back(post("/v1/chat/completions",
                       json{{"messages", hi}, {"tools", {tool("f", object, std::string(200000, 'd'))}}}.dump()));
    // Non-string types.
    for (const char* b : {
             R"({"messages": [{"role": "user", "content": [{"type": 5, "text": "x"}]}]})",
             R"({"messages": [{"role": "user", "content": "hi"}],
                 "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": {"a": 1}}}}]})",
             R"({"messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": 1}})",
         })
        out.push_back(post("/v1/chat/completions", b));
    return out;
}

}  // namespace

TEST_CASE("limits: the server's CPU per bad request is bounded", "[agent][limits]") {
    fixture_sizes sizes;
    sizes.max_body_bytes = 1 << 20;
    fixture f({}, false, {}, sizes);
    REQUIRE(request(f.port, "POST", "/v1/sessions", R"({"id": "s1"})").status == 201);
    const std::vector<std::string> cases = bad_requests();  // built before the clock starts
    const int rounds = 3;
    // The server runs in this process: its CPU is the process's minus this (client) thread's.
    const double p0 = process_cpu(), t0 = thread_cpu();
    for (int round = 0; round < rounds; ++round)
        for (const auto& c : cases) {
            auto r = raw_exchange(f.port, c);
            INFO(c.substr(0, 160));
            CHECK(r.status >= 400);
            CHECK(r.status < 500);
        }
    const double server_cpu = (process_cpu() - p0) - (thread_cpu() - t0);
    const double per_request_ms = 1000.0 * server_cpu / double(rounds * cases.size());
    std::printf("limits: %zu bad requests x %d: server CPU %.3f s, %.2f ms per request\n", cases.size(), rounds,
                server_cpu, per_request_ms);
    // The issue measured 6.4-24.5 s for single requests before the limits; the bound is about 20x what is
    // measured now (1.3 ms, see README), so that a loaded machine cannot fail it, and far below seconds.
    CHECK(per_request_ms < 25.0);
    CHECK(request(f.port, "GET", "/healthz").status == 200);

    // At the limit a request is served: 1,024 messages (the issue's 1,000 cost 6.4 s of CPU), one token.
    json msgs = json::array();
    for (size_t i = 0; i < agent::k_max_messages; ++i) msgs.push_back({{"role", "user"}, {"content", "x"}});
    const std::string at_limit = json{{"messages", msgs}, {"max_tokens", 1}}.dump();
    const double p1 = process_cpu(), t1 = thread_cpu();
    auto r = request(f.port, "POST", "/v1/chat/completions", at_limit);
    const double served_cpu = (process_cpu() - p1) - (thread_cpu() - t1);
    std::printf("limits: %zu messages (%zu bytes), served with status %d: server CPU %.3f s\n", agent::k_max_messages,
                at_limit.size(), r.status, served_cpu);
    CHECK(r.status == 200);
    CHECK(served_cpu < 2.0);
}

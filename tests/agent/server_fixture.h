#pragma once
// Shared by the agent server tests: a raw-socket HTTP/1.1 client and a
// fixture running the server in-process on an ephemeral loopback port over a
// tiny gpt2-vocab model (optionally with a RocksDB store).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/runtime.h"
#include "agent/server/server.h"
#include "memory/store.h"
#include "tests/support/tiny_model.h"

// Internal linkage: each test file gets its own copy of these helpers.
namespace mnemos::test_agent {
namespace {

using json = nlohmann::json;
using namespace mnemos;

struct http_result {
    int status = 0;
    std::string headers;
    std::string body;
    json j() const { return json::parse(body, nullptr, false); }
};

// A TCP connection to 127.0.0.1:port; -1 when it cannot connect.
inline int connect_loopback(uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
    if (fd >= 0) ::close(fd);
    return -1;
}

// Sends every byte (false when the peer stopped reading).
inline bool send_all(int fd, const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

// Reads until the peer closes.
inline std::string recv_all(int fd) {
    std::string in;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
    }
    return in;
}

// Status, headers and body of a whole HTTP response; a chunked body is de-chunked.
inline http_result parse_response(const std::string& in) {
    http_result r;
    const size_t he = in.find("\r\n\r\n");
    if (in.size() < 12 || he == std::string::npos) return r;
    r.status = std::stoi(in.substr(9, 3));
    r.headers = in.substr(0, he);
    std::string body = in.substr(he + 4);
    std::string lower = r.headers;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.find("transfer-encoding: chunked") != std::string::npos) {
        std::string out;
        size_t p = 0;
        while (p < body.size()) {
            const size_t le = body.find("\r\n", p);
            if (le == std::string::npos) break;
            const size_t len = std::stoul(body.substr(p, le - p), nullptr, 16);
            if (len == 0) break;
            out += body.substr(le + 2, len);
            p = le + 2 + len + 2;
        }
        body = out;
    }
    r.body = body;
    return r;
}

// A raw chunked POST of `body` (one chunk) with `trailer` fields ("Name: value\r\n" each) after it.
inline std::string chunked_post(const std::string& path, const std::string& body, const std::string& trailer) {
    char len[32];
    std::snprintf(len, sizeof len, "%zx\r\n", body.size());
    return "POST " + path +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
           "Transfer-Encoding: chunked\r\n\r\n" +
           len + body + "\r\n0\r\n" + trailer + "\r\n";
}

// Sends raw bytes, reads until the server closes; de-chunks a chunked body.
inline http_result raw_exchange(uint16_t port, const std::string& bytes) {
    const int fd = connect_loopback(port);
    if (fd < 0) return {};
    send_all(fd, bytes);
    const std::string in = recv_all(fd);
    ::close(fd);
    return parse_response(in);
}

http_result request(uint16_t port, const std::string& method, const std::string& path, const std::string& body = "",
                    const std::string& key = "") {
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    if (!key.empty()) req += "Authorization: Bearer " + key + "\r\n";
    if (!body.empty() || method == "POST")
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    return raw_exchange(port, req);
}

// SSE "data: ..." payloads in order.
[[maybe_unused]] std::vector<std::string> sse_data(const std::string& body) {
    std::vector<std::string> out;
    size_t p = 0;
    while ((p = body.find("data: ", p)) != std::string::npos) {
        const size_t e = body.find("\n\n", p);
        out.push_back(body.substr(p + 6, e - p - 6));
        p = e == std::string::npos ? body.size() : e;
    }
    return out;
}

[[maybe_unused]] bool is_error_json(const http_result& r) {
    const json j = r.j();
    return !j.is_discarded() && j.contains("error") && j["error"].contains("message") && j["error"].contains("type");
}

// One bad request and the 4xx status it must get.
struct bad_request {
    std::string method, path, body;
    int status;
};

// Each bad request gets its status and a JSON error body.
[[maybe_unused]] void check_bad_requests(uint16_t port, const std::vector<bad_request>& cases,
                                         const std::string& key = "") {
    for (const auto& c : cases) {
        INFO(c.method << " " << c.path << " " << c.body);
        auto r = request(port, c.method, c.path, c.body, key);
        CHECK(r.status == c.status);
        CHECK(is_error_json(r));
    }
}

// Sizes and limits that differ between the test files.
struct fixture_sizes {
    int n_ctx = 1024;                   // model and engine context
    size_t max_body_bytes = 64 * 1024;  // server request limit
    int32_t requests_per_minute = 0;    // server default rate limit (0: none)
    bool log_requests = false;          // server request log on stderr
    agent::access_log_format log_format = agent::access_log_format::text;
    int32_t max_waiting_turns = 16;  // server: turns that may wait for their session
    int32_t turn_wait_timeout_ms = 120000;
    engine::attention_mode attention = engine::attention_mode::automatic;  // full: histories are cut to n_ctx
    std::vector<std::string> cors_origins = {};  // server: origins allowed by CORS (none: CORS off)
};

// A tiny model, a runner, sessions and a server on an ephemeral loopback port.
struct fixture {
    std::filesystem::path dir;
    std::shared_ptr<const engine::model> m;
    std::unique_ptr<memory::store> db;
    std::unique_ptr<agent::engine_runner> runner;
    std::unique_ptr<agent::session_store_i> store;
    std::unique_ptr<agent::session_manager> sessions;
    std::unique_ptr<agent::server> srv;
    uint16_t port = 0;

    explicit fixture(agent::auth_config auth = {}, bool durable = false, std::filesystem::path db_dir = {},
                     fixture_sizes sizes = {}) {
        dir = std::filesystem::temp_directory_path() / ("mnemos_agent_test_" + agent::random_hex(8));
        std::filesystem::create_directories(dir);
        const std::string path = (dir / "tiny.gguf").string();
        test::tiny_model_options o;
        o.tokenizer = "gpt2";
        o.n_embd = 64;
        o.n_ff = 128;
        o.n_ctx = sizes.n_ctx;
        REQUIRE(test::write_tiny_model(path, o));
        auto loaded = engine::model::load(path);
        REQUIRE(loaded.ok());
        m = std::move(loaded.value());
        engine::engine_options eo;
        eo.n_threads = 1;
        eo.n_ctx = sizes.n_ctx;
        eo.attention.mode = sizes.attention;
        eo.attention.n_sink = 16;  // a budget that fits the tiny models' context
        eo.attention.n_window = 64;
        eo.attention.n_pages = 2;
        auto r = agent::engine_runner::start(m, eo);
        REQUIRE(r.ok());
        runner = std::move(r.value());
        if (durable) {
            memory::store_options so;
            so.path = (db_dir.empty() ? dir / "db" : db_dir).string();
            auto opened = memory::store::open(so);
            REQUIRE(opened.ok());
            db = std::move(opened.value());
            memory::store* raw = db.get();
            runner->run_on_engine_thread([raw](engine::engine& e) { e.kv().set_store(&raw->blocks()); });
            store = agent::make_durable_session_store(*db, m->fingerprint(), 16);
        } else {
            store = agent::make_memory_session_store();
        }
        sessions = std::make_unique<agent::session_manager>(*m, *store);
        agent::server_options opt;
        opt.port = 0;
        opt.auth = std::move(auth);
        opt.max_body_bytes = sizes.max_body_bytes;
        opt.requests_per_minute = sizes.requests_per_minute;
        opt.log_requests = sizes.log_requests;
        opt.log_format = sizes.log_format;
        opt.max_waiting_turns = sizes.max_waiting_turns;
        opt.turn_wait_timeout_ms = sizes.turn_wait_timeout_ms;
        opt.default_max_tokens = 16;
        opt.cors_origins = sizes.cors_origins;
        auto s = agent::server::start(opt, *runner, *sessions);
        REQUIRE(s.ok());
        srv = std::move(s.value());
        port = srv->port();
    }
    ~fixture() {
        srv.reset();
        runner.reset();
        sessions.reset();
        store.reset();
        db.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

}  // namespace
}  // namespace mnemos::test_agent

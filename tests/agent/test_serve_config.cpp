// agent/serve_config.h: `mnemos serve` takes its settings from a JSON config
// file ("keys", "requests_per_minute", "server": {...}) plus flags, the flags
// overriding the file wherever they appear; unknown fields and wrong types
// are errors naming the field.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "agent/config/serve_config.h"
#include "agent/core/runtime.h"

namespace fs = std::filesystem;
using namespace mnemos;
using namespace mnemos::agent;

namespace {

// A config file in the temp directory, removed at the end.
struct config_file {
    fs::path path;
    explicit config_file(const std::string& text) {
        path = fs::temp_directory_path() / ("mnemos_serve_config_" + random_hex(8) + ".json");
        std::ofstream(path) << text;
    }
    ~config_file() {
        std::error_code ec;
        fs::remove(path, ec);
    }
};

// The error message of a config text (empty when it is accepted).
std::string config_error(const std::string& text) {
    serve_settings s;
    auto st = apply_serve_config(text, s);
    if (!st.ok()) CHECK(st.code() == errc::invalid_argument);
    return st.ok() ? std::string() : st.message();
}

std::string args_error(const std::vector<std::string>& args) {
    auto r = parse_serve_args(args);
    return r.ok() ? std::string() : r.error().message();
}

bool mentions(const std::string& message, const std::string& what) {
    INFO(message);
    return message.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("serve config: defaults without a file or flags", "[agent][serve_config]") {
    auto r = parse_serve_args({});
    REQUIRE(r.ok());
    const server_options defaults;
    CHECK(r->model.empty());
    CHECK(r->store.empty());
    CHECK(r->config_path.empty());
    CHECK(r->n_threads == 0);
    CHECK(r->n_ctx == 0);
    CHECK(r->server.host == defaults.host);
    CHECK(r->server.port == defaults.port);
    CHECK(r->server.n_io_threads == defaults.n_io_threads);
    CHECK(r->server.max_body_bytes == defaults.max_body_bytes);
    CHECK(r->server.default_max_tokens == defaults.default_max_tokens);
    CHECK(r->server.requests_per_minute == defaults.requests_per_minute);
    CHECK(!r->server.log_requests);
    CHECK(r->server.auth.keys.empty());
    CHECK(!r->help);
    CHECK(parse_serve_args({"--port", "9", "--help", "--bogus"})->help);
}

TEST_CASE("serve config: the file sets every setting, flags override it", "[agent][serve_config]") {
    config_file f(R"({
        "requests_per_minute": 30,
        "keys": [{"key": "sk-gm", "name": "gm", "admin": true}],
        "server": {"model": "m.gguf", "store": "db", "host": "0.0.0.0", "port": 9001, "ctx": 2048,
                   "threads": 3, "io_threads": 4, "max_body_bytes": 4096, "default_max_tokens": 64,
                   "requests_per_minute": 120, "log": true}})");
    const std::string cfg = f.path.string();

    auto only_file = parse_serve_args({"--config", cfg});
    INFO((only_file.ok() ? std::string() : only_file.error().message()));
    REQUIRE(only_file.ok());
    const serve_settings& a = only_file.value();
    CHECK(a.config_path == cfg);
    CHECK(a.model == "m.gguf");
    CHECK(a.store == "db");
    CHECK(a.server.host == "0.0.0.0");
    CHECK(a.server.port == 9001);
    CHECK(a.n_ctx == 2048);
    CHECK(a.n_threads == 3);
    CHECK(a.server.n_io_threads == 4);
    CHECK(a.server.max_body_bytes == 4096);
    CHECK(a.server.default_max_tokens == 64);
    CHECK(a.server.requests_per_minute == 120);
    CHECK(a.server.log_requests);
    REQUIRE(a.server.auth.keys.size() == 1);
    CHECK(a.server.auth.keys[0].name == "gm");
    CHECK(a.server.auth.keys[0].admin);
    CHECK(a.server.auth.requests_per_minute == 30);

    // Flags win, before or after --config; what no flag names stays from the file.
    auto both = parse_serve_args({"--port", "9100", "--model", "other.gguf", "--config", cfg, "--ctx", "512", "-t", "1",
                                  "--max-body", "100", "--requests-per-minute", "0", "--host", "127.0.0.1"});
    INFO((both.ok() ? std::string() : both.error().message()));
    REQUIRE(both.ok());
    const serve_settings& b = both.value();
    CHECK(b.server.port == 9100);
    CHECK(b.model == "other.gguf");
    CHECK(b.n_ctx == 512);
    CHECK(b.n_threads == 1);
    CHECK(b.server.max_body_bytes == 100);
    CHECK(b.server.requests_per_minute == 0);
    CHECK(b.server.host == "127.0.0.1");
    CHECK(b.store == "db");
    CHECK(b.server.n_io_threads == 4);
    CHECK(b.server.default_max_tokens == 64);
    CHECK(b.server.log_requests);
    CHECK(b.server.auth.keys.size() == 1);
}

TEST_CASE("serve config: a file with settings only, and flags alone", "[agent][serve_config]") {
    config_file f(R"({"server": {"port": 0, "log": false}})");
    auto r = parse_serve_args({"--config", f.path.string(), "--log", "--store", "dir", "-m", "x.gguf"});
    REQUIRE(r.ok());
    CHECK(r->server.port == 0);
    CHECK(r->server.log_requests);
    CHECK(r->store == "dir");
    CHECK(r->model == "x.gguf");
    CHECK(r->server.auth.keys.empty());  // settings only: open access
    CHECK(r->server.log_format == agent::access_log_format::text);
}

TEST_CASE("serve config: the access log's format from the file and the flag", "[agent][serve_config]") {
    config_file f(R"({"server": {"log": true, "log_format": "json"}})");
    auto from_file = parse_serve_args({"--config", f.path.string()});
    REQUIRE(from_file.ok());
    CHECK(from_file->server.log_format == agent::access_log_format::json);
    auto flag_wins = parse_serve_args({"--log-format", "text", "--config", f.path.string()});
    REQUIRE(flag_wins.ok());
    CHECK(flag_wins->server.log_format == agent::access_log_format::text);
    auto flag = parse_serve_args({"--log", "--log-format", "json"});
    REQUIRE(flag.ok());
    CHECK(flag->server.log_format == agent::access_log_format::json);
    CHECK(mentions(args_error({"--log-format", "xml"}), "log_format must be text or json, got 'xml'"));
    CHECK(mentions(config_error(R"({"server": {"log_format": "yaml"}})"), "server.log_format"));
    CHECK(
        mentions(config_error(R"({"server": {"log_format": true}})"), "server.log_format must be a non-empty string"));
}

TEST_CASE("serve config: unknown fields and wrong types are errors naming the field", "[agent][serve_config]") {
    CHECK(config_error(R"({"server": {"port": 8080}})").empty());
    CHECK(mentions(config_error("[]"), "not a JSON object"));
    CHECK(mentions(config_error("{"), "not a JSON object"));
    CHECK(mentions(config_error(R"({"sever": {}})"), "'sever'"));
    CHECK(mentions(config_error(R"({"server": []})"), "'server' must be an object"));
    CHECK(mentions(config_error(R"({"server": {"prot": 1}})"), "server.prot"));
    CHECK(mentions(config_error(R"({"server": {"port": "8080"}})"), "server.port must be an integer from 0 to 65535"));
    CHECK(mentions(config_error(R"({"server": {"port": 70000}})"), "server.port"));
    CHECK(mentions(config_error(R"({"server": {"port": -1}})"), "server.port"));
    CHECK(mentions(config_error(R"({"server": {"ctx": 1.5}})"), "server.ctx"));
    CHECK(mentions(config_error(R"({"server": {"threads": true}})"), "server.threads"));
    CHECK(mentions(config_error(R"({"server": {"io_threads": null}})"), "server.io_threads"));
    CHECK(mentions(config_error(R"({"server": {"max_body_bytes": "1M"}})"), "server.max_body_bytes"));
    CHECK(mentions(config_error(R"({"server": {"default_max_tokens": []}})"), "server.default_max_tokens"));
    CHECK(mentions(config_error(R"({"server": {"requests_per_minute": 2000000}})"), "server.requests_per_minute"));
    CHECK(mentions(config_error(R"({"server": {"log": "yes"}})"), "server.log must be true or false"));
    CHECK(mentions(config_error(R"({"server": {"model": 3}})"), "server.model must be a non-empty string"));
    CHECK(mentions(config_error(R"({"server": {"store": ""}})"), "server.store"));
    CHECK(mentions(config_error(R"({"server": {"host": {}}})"), "server.host"));
    CHECK(mentions(config_error(R"({"keys": []})"), "no keys"));
    CHECK(mentions(config_error(R"({"keys": [{"key": "k", "admn": true}]})"), "keys[0].admn"));
    CHECK(mentions(config_error(R"({"keys": [{"key": "k", "admin": "yes"}]})"), "keys[0].admin"));
    CHECK(mentions(config_error(R"({"requests_per_minute": "5"})"), "requests_per_minute"));
}

TEST_CASE("serve config: bad flags and unreadable files are errors naming them", "[agent][serve_config]") {
    CHECK(mentions(args_error({"--bogus"}), "unknown option '--bogus'"));
    CHECK(mentions(args_error({"--port"}), "--port needs a value"));
    CHECK(mentions(args_error({"--port", "x"}), "--port expects an integer from 0 to 65535, got 'x'"));
    CHECK(mentions(args_error({"--port", "65536"}), "--port"));
    CHECK(mentions(args_error({"--ctx", "-1"}), "--ctx"));
    CHECK(mentions(args_error({"--threads", "2x"}), "--threads"));
    CHECK(mentions(args_error({"--model", ""}), "--model"));
    CHECK(mentions(args_error({"--config"}), "--config needs a value"));
    auto missing = parse_serve_args({"--config", "/nonexistent/mnemos.json"});
    REQUIRE(!missing.ok());
    CHECK(missing.error().code() == errc::io_error);
    config_file bad(R"({"server": {"port": "x"}})");
    auto r = parse_serve_args({"--config", bad.path.string(), "--port", "1"});
    REQUIRE(!r.ok());
    CHECK(r.error().code() == errc::invalid_argument);
    CHECK(mentions(r.error().message(), bad.path.string()));
    CHECK(mentions(r.error().message(), "server.port"));
}

TEST_CASE("serve config: attention beyond the window and the pool size, in the file and as flags",
          "[agent][serve_config][sparse]") {
    serve_settings d;
    CHECK(d.attention.mode == engine::attention_mode::automatic);
    CHECK(d.kv_bytes == 0);
    config_file f(R"({"server": {"attention": "sparse", "sink_tokens": 32, "window_tokens": 512,
                                 "select_pages": 8, "kv_mb": 256}})");
    auto s = parse_serve_args({"--config", f.path.string()});
    REQUIRE(s.ok());
    CHECK(s->attention.mode == engine::attention_mode::sparse);
    CHECK(s->attention.n_sink == 32);
    CHECK(s->attention.n_window == 512);
    CHECK(s->attention.n_pages == 8);
    CHECK(s->kv_bytes == size_t(256) << 20);
    auto o = parse_serve_args({"--config", f.path.string(), "--attention", "full", "--select-pages", "0"});
    REQUIRE(o.ok());
    CHECK(o->attention.mode == engine::attention_mode::full);
    CHECK(o->attention.n_pages == 0);
    CHECK(config_error(R"({"server": {"attention": "half"}})").find("server.attention") != std::string::npos);
    CHECK(config_error(R"({"server": {"window_tokens": 0}})").find("server.window_tokens") != std::string::npos);
    auto bad = parse_serve_args({"--attention", "most"});
    REQUIRE(!bad.ok());
    CHECK(bad.error().message().find("--attention") != std::string::npos);
}

TEST_CASE("serve config: CORS origins from the file and repeated flags, checked", "[agent][serve_config][cors]") {
    CHECK(parse_serve_args({})->server.cors_origins.empty());  // off by default
    serve_settings s;
    REQUIRE(apply_serve_config(R"({"server": {"cors_origins": ["http://localhost:5173", "*"]}})", s).ok());
    CHECK(s.server.cors_origins == std::vector<std::string>{"http://localhost:5173", "*"});
    CHECK(mentions(config_error(R"({"server": {"cors_origins": "*"}})"), "server.cors_origins must be an array"));
    CHECK(mentions(config_error(R"({"server": {"cors_origins": [3]}})"), "server.cors_origins"));
    CHECK(mentions(config_error(R"({"server": {"cors_origins": ["http://a.test/app"]}})"), "has a path"));
    auto flags = parse_serve_args({"--cors-origin", "https://a.test", "--cors-origin", "http://b.test:8080"});
    REQUIRE(flags.ok());
    CHECK(flags->server.cors_origins == std::vector<std::string>{"https://a.test", "http://b.test:8080"});
    // Flags replace the file's list.
    config_file f(R"({"server": {"cors_origins": ["http://file.test"]}})");
    auto both = parse_serve_args({"--config", f.path.string(), "--cors-origin", "http://flag.test"});
    REQUIRE(both.ok());
    CHECK(both->server.cors_origins == std::vector<std::string>{"http://flag.test"});
    CHECK(parse_serve_args({"--config", f.path.string()})->server.cors_origins ==
          std::vector<std::string>{"http://file.test"});
    CHECK(mentions(args_error({"--cors-origin", "localhost"}), "--cors-origin"));
    CHECK(mentions(args_error({"--cors-origin"}), "--cors-origin needs a value"));
}

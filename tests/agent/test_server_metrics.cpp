// Observability: the Prometheus text of the labelled counters and histograms (agent/core/prometheus.h), GET /metrics
// after requests (histograms of request latency, time to first token, time per output token and queue wait with
// endpoint, status and model labels; requests by endpoint and status; mnemos_build_info), the turns of
// mnemos play counted on the same runner, and the access log line in both formats, which names the key but never
// holds it and keeps a path to one field.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "agent/core/build_info.h"
#include "agent/core/prometheus.h"
#include "agent/play/play.h"
#include "agent/scenario/scenario.h"
#include "tests/agent/scenario_util.h"
#include "tests/agent/server_fixture.h"
#include "tests/agent/stderr_capture.h"

using json = nlohmann::json;
using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

// The samples of a Prometheus text: "name{labels}" -> value, the labels as written.
std::map<std::string, double> samples_of(const std::string& text) {
    std::map<std::string, double> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        const size_t sp = line.rfind(' ');
        REQUIRE(sp != std::string::npos);
        out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    }
    return out;
}

// The sum of the samples of a family whose labels contain every one of `having` ("endpoint=\"/x\"").
double sum_of(const std::map<std::string, double>& s, const std::string& name,
              const std::vector<std::string>& having = {}) {
    double t = 0;
    for (const auto& [k, v] : s) {
        if (k.compare(0, name.size(), name) != 0 || (k.size() > name.size() && k[name.size()] != '{')) continue;
        bool all = true;
        for (const auto& h : having) all = all && k.find(h) != std::string::npos;
        if (all) t += v;
    }
    return t;
}

// Every series of histogram `name`: cumulative buckets never decrease, the +Inf bucket equals _count, and there is
// at least one series. Returns the total of _count.
double check_histogram(const std::map<std::string, double>& s, const std::string& name) {
    std::map<std::string, std::vector<std::pair<double, double>>> buckets;  // series labels -> (le, cumulative)
    for (const auto& [k, v] : s) {
        if (k.rfind(name + "_bucket{", 0) != 0) continue;
        const size_t le = k.find("le=\"");
        REQUIRE(le != std::string::npos);
        const std::string bound = k.substr(le + 4, k.find('"', le + 4) - le - 4);
        std::string series = k.substr(name.size() + 8);
        series.erase(series.find("le=\""));
        buckets[series].push_back({bound == "+Inf" ? 1e300 : std::stod(bound), v});
    }
    REQUIRE(!buckets.empty());
    double total = 0;
    for (auto& [series, bs] : buckets) {
        INFO(name << " " << series);
        std::sort(bs.begin(), bs.end());
        for (size_t i = 1; i < bs.size(); ++i) CHECK(bs[i].second >= bs[i - 1].second);
        CHECK(bs.back().first == 1e300);
        std::string labels = series;
        if (!labels.empty() && labels.back() == ',') labels.pop_back();
        const std::string count_key = name + "_count{" + labels + "}";
        REQUIRE(s.count(count_key) == 1);
        CHECK(bs.back().second == s.at(count_key));
        CHECK(s.count(name + "_sum{" + labels + "}") == 1);
        total += s.at(count_key);
    }
    return total;
}

const char* k_chat = R"({"model":"m","max_tokens":6,"temperature":0,"messages":[{"role":"user","content":"Hello"}]})";

std::vector<std::string> lines_of(const std::string& text, const std::string& containing) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.find(containing) != std::string::npos) out.push_back(line);
    return out;
}

}  // namespace

TEST_CASE("prometheus: histograms are cumulative with _sum and _count; label values are escaped", "[agent][metrics]") {
    agent::prom::histogram_family h("t_seconds", "a test", {"endpoint", "status"}, {0.125, 1});
    h.observe({"/a", "200"}, 0.0625);
    h.observe({"/a", "200"}, 0.5);
    h.observe({"/a", "200"}, 7);
    h.observe({"/a", "200"}, 0.125);  // on a bound: counted in it (le)
    h.observe({"q\"\\\n", "500"}, 2);
    h.observe({"too few labels"}, 1);  // ignored
    std::string out;
    h.write(out);
    CHECK(out.find("# HELP t_seconds a test\n# TYPE t_seconds histogram\n") == 0);
    CHECK(out.find("t_seconds_bucket{endpoint=\"/a\",status=\"200\",le=\"0.125\"} 2\n") != std::string::npos);
    CHECK(out.find("t_seconds_bucket{endpoint=\"/a\",status=\"200\",le=\"1\"} 3\n") != std::string::npos);
    CHECK(out.find("t_seconds_bucket{endpoint=\"/a\",status=\"200\",le=\"+Inf\"} 4\n") != std::string::npos);
    CHECK(out.find("t_seconds_sum{endpoint=\"/a\",status=\"200\"} 7.6875\n") != std::string::npos);
    CHECK(out.find("t_seconds_count{endpoint=\"/a\",status=\"200\"} 4\n") != std::string::npos);
    CHECK(out.find("t_seconds_count{endpoint=\"q\\\"\\\\\\n\",status=\"500\"} 1\n") != std::string::npos);
    CHECK(h.total_count() == 5);
    CHECK(h.count({"/a", "200"}) == 4);

    agent::prom::counter_family c("c_total", "a counter", {"endpoint"});
    c.add({"/x"});
    c.add({"/x"}, 2);
    c.add({"/y"}, -1);  // ignored: counters only grow
    std::string ct;
    c.write(ct);
    CHECK(ct == "# HELP c_total a counter\n# TYPE c_total counter\nc_total{endpoint=\"/x\"} 3\n");
    CHECK(c.total() == 3);
    CHECK(agent::prom::format_value(0.25) == "0.25");
    CHECK(agent::prom::format_value(3) == "3");
}

TEST_CASE("server metrics: request, first-token, per-token and queue histograms after requests; build info",
          "[agent][server][metrics]") {
    fixture f;
    int64_t n_generated = 0, n_prompt = 0;
    for (int i = 0; i < 3; ++i) {
        auto r = request(f.port, "POST", "/v1/chat/completions", k_chat);
        REQUIRE(r.status == 200);
        n_generated += r.j()["usage"]["completion_tokens"].get<int64_t>();
        n_prompt += r.j()["usage"]["prompt_tokens"].get<int64_t>();
    }
    json sj = json::parse(k_chat);
    sj["stream"] = true;
    auto s = request(f.port, "POST", "/v1/chat/completions", sj.dump());
    REQUIRE(s.status == 200);
    CHECK(request(f.port, "GET", "/v1/nothing").status == 404);
    CHECK(request(f.port, "POST", "/v1/chat/completions", "{").status == 400);

    auto mt = request(f.port, "GET", "/metrics");
    REQUIRE(mt.status == 200);
    const auto smp = samples_of(mt.body);
    const std::string chat = "endpoint=\"/v1/chat/completions\"";
    CHECK(sum_of(smp, "mnemos_http_requests_total", {chat, "status=\"200\""}) == 4);
    CHECK(sum_of(smp, "mnemos_http_requests_total", {chat, "status=\"400\""}) == 1);
    CHECK(sum_of(smp, "mnemos_http_requests_total", {"endpoint=\"none\"", "status=\"404\""}) == 1);
    // The /metrics request itself is counted when it has been answered: not in its own text.
    CHECK(sum_of(smp, "mnemos_http_requests_total", {"endpoint=\"/metrics\""}) == 0);

    CHECK(check_histogram(smp, "mnemos_http_request_duration_seconds") == 6);
    CHECK(sum_of(smp, "mnemos_http_request_duration_seconds_count", {chat, "status=\"200\"", "model=\""}) == 4);
    // Four generations: each has a queue wait and a first token; six tokens each (max_tokens) give a per-token time.
    CHECK(check_histogram(smp, "mnemos_turn_duration_seconds") == 4);
    CHECK(check_histogram(smp, "mnemos_time_to_first_token_seconds") == 4);
    CHECK(check_histogram(smp, "mnemos_queue_wait_seconds") == 4);
    CHECK(sum_of(smp, "mnemos_time_to_first_token_seconds_count", {chat}) == 4);
    CHECK(check_histogram(smp, "mnemos_time_per_output_token_seconds") >= 1);
    CHECK(sum_of(smp, "mnemos_turns_total", {chat}) == 4);
    CHECK(sum_of(smp, "mnemos_tokens_generated_total", {chat}) == n_generated + n_generated / 3);
    CHECK(sum_of(smp, "mnemos_prompt_tokens_total", {chat}) == n_prompt + n_prompt / 3);

    const auto& b = agent::this_build();
    CHECK(mt.body.find("# TYPE mnemos_build_info gauge\n") != std::string::npos);
    CHECK(mt.body.find("mnemos_build_info{version=\"" + b.version + "\",commit=\"" + b.commit + "\"") !=
          std::string::npos);
    CHECK(sum_of(smp, "mnemos_build_info") == 1);
}

TEST_CASE("server metrics: the turns and tokens of mnemos play count on the runner the server shows",
          "[agent][server][metrics][play]") {
    temp_dir dir("mnemos_metrics_play_");
    auto m = load_model(write_model(dir.path));
    auto sc = agent::load_scenario((scenarios_dir() / "ci_smoke.json").string());
    REQUIRE(sc.ok());
    agent::play_options o;
    o.max_tokens = 4;
    o.n_threads = 1;
    std::unique_ptr<agent::server> srv;
    std::string text;
    o.on_runtime = [&](agent::engine_runner& runner, agent::session_manager& sm) {
        agent::server_options so;
        so.port = 0;
        auto s = agent::server::start(so, runner, sm);
        if (s.ok()) srv = std::move(s.value());
    };
    o.on_teardown = [&] {
        if (srv) text = request(srv->port(), "GET", "/metrics").body;
        srv.reset();
    };
    auto rep = agent::play_scenario(sc.value(), m, o);
    REQUIRE(rep.ok());
    REQUIRE(!text.empty());
    const auto smp = samples_of(text);
    const double n_turns = sum_of(smp, "mnemos_turns_total", {"endpoint=\"play\""});
    CHECK(n_turns >= 1);
    CHECK(sum_of(smp, "mnemos_tokens_generated_total", {"endpoint=\"play\""}) >= n_turns);
    CHECK(sum_of(smp, "mnemos_time_to_first_token_seconds_count", {"endpoint=\"play\""}) >= 1);
    CHECK(sum_of(smp, "mnemos_turn_duration_seconds_count", {"endpoint=\"play\""}) == n_turns);
}

TEST_CASE("access log: one line per request, text and JSON, with tokens and the key's name, never the key",
          "[agent][server][metrics][log]") {
    auto cfg = agent::parse_auth_config(R"({"keys":[{"key":"sk-very-secret-1","name":"gamemaster","admin":true}]})");
    REQUIRE(cfg.ok());
    for (const auto format : {agent::access_log_format::text, agent::access_log_format::json}) {
        const bool as_json = format == agent::access_log_format::json;
        INFO((as_json ? "json" : "text"));
        stderr_capture cap;
        {
            fixture_sizes sizes;
            sizes.log_requests = true;
            sizes.log_format = format;
            fixture f(cfg.value(), false, {}, sizes);
            auto r = request(f.port, "POST", "/v1/chat/completions", k_chat, "sk-very-secret-1");
            REQUIRE(r.status == 200);
            const json usage = r.j()["usage"];
            CHECK(request(f.port, "GET", "/v1/models?key=sk-very-secret-1", "", "sk-wrong-secret").status == 401);
            CHECK(request(f.port, "GET", "/healthz").status == 200);
            // A path is one field of one line: '%' and what is not printable ASCII are %XX in the text line.
            CHECK(request(f.port, "GET", "/v1/no%0Athing%22", "", "sk-very-secret-1").status == 404);
            f.srv.reset();  // every line written
            const std::string log = cap.text();
            CHECK(log.find("secret") == std::string::npos);
            const auto chat = lines_of(log, "/v1/chat/completions");
            REQUIRE(chat.size() == 1);
            const auto models = lines_of(log, "/v1/models");
            REQUIRE(models.size() == 1);
            REQUIRE(lines_of(log, "/healthz").size() == 1);
            if (as_json) {
                const json c = json::parse(chat[0], nullptr, false);
                REQUIRE(c.is_object());
                CHECK(c["method"] == "POST");
                CHECK(c["path"] == "/v1/chat/completions");
                CHECK(c["endpoint"] == "/v1/chat/completions");
                CHECK(c["status"] == 200);
                CHECK(c["duration_ms"].get<double>() >= 0);
                CHECK(c["client"] == "127.0.0.1");
                CHECK(c["key"] == "gamemaster");
                CHECK(c["prompt_tokens"] == usage["prompt_tokens"]);
                CHECK(c["cached_tokens"] == usage["prompt_tokens_details"]["cached_tokens"]);
                CHECK(c["generated_tokens"] == usage["completion_tokens"]);
                const json mo = json::parse(models[0], nullptr, false);
                REQUIRE(mo.is_object());
                CHECK(mo["status"] == 401);
                CHECK(mo["path"] == "/v1/models");  // the query (and the key in it) left out
                CHECK(!mo.contains("key"));
                CHECK(!mo.contains("prompt_tokens"));
                const auto nothing = lines_of(log, "/v1/no");
                REQUIRE(nothing.size() == 1);
                const json no = json::parse(nothing[0], nullptr, false);
                REQUIRE(no.is_object());
                CHECK(no["path"] == "/v1/no%0Athing%22");
                CHECK(no["endpoint"] == "none");
                CHECK(no["status"] == 404);
            } else {
                const std::string want = "mnemos serve: POST /v1/chat/completions 200 ";
                CHECK(chat[0].rfind(want, 0) == 0);
                CHECK(chat[0].find(
                          "ms client=127.0.0.1 key=gamemaster prompt=" +
                          std::to_string(usage["prompt_tokens"].get<int>()) +
                          " cached=" + std::to_string(usage["prompt_tokens_details"]["cached_tokens"].get<int>()) +
                          " generated=" + std::to_string(usage["completion_tokens"].get<int>())) != std::string::npos);
                CHECK(models[0].rfind("mnemos serve: GET /v1/models 401 ", 0) == 0);
                CHECK(models[0].find("key=") == std::string::npos);
                CHECK(models[0].find("prompt=") == std::string::npos);
                const auto nothing = lines_of(log, "/v1/no");
                REQUIRE(nothing.size() == 1);
                CHECK(nothing[0].rfind("mnemos serve: GET /v1/no%250Athing%2522 404 ", 0) == 0);
                CHECK(nothing[0].find("key=gamemaster") != std::string::npos);
            }
        }
    }
}

// bench_serve: `mnemos serve` in-process on a loopback port, two parts.
// 1. Burst: 1, 8 and 64 concurrent sessions each stream one reply (POST /v1/chat/completions,
//    "stream": true) over raw sockets: aggregate tokens/s, p50/p99 time to first token, the
//    batched/single throughput ratio (the baseline in the same run).
// 2. Load (--rounds N, default 20): --sessions durable sessions (default 64) in a RocksDB store, each
//    taking one turn per round (POST /v1/sessions/{id}/messages); per round p50/p99 latency and the
//    process RSS; the last round's p99 against the first's and RSS after warm-up against its end.
// Prints the tables, then one JSON line.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/cli/args.h"
#include "agent/core/runtime.h"
#include "agent/server/server.h"

using namespace mnemos;
using clk = std::chrono::steady_clock;

namespace {

struct bench_options {
    std::string model = std::string(MNEMOS_SHARED_DIR) + "/models/stories260K-f32.gguf";
    int32_t max_tokens = 32;
    int32_t threads = 2;
    int32_t rounds = 20;
    int32_t sessions = 64;
    std::string store_dir;  // empty: a temporary directory, removed at the end
};

struct one_result {
    double ttft_ms = -1, total_ms = -1;
    int n_tokens = 0;
    bool ok = false;
};

// Sends one HTTP request on a fresh connection and returns the whole response (empty on failure);
// ttft_ms: when the second SSE "data: " arrived (the first content chunk), else -1.
std::string http_exchange(uint16_t port, const std::string& target, const std::string& body, double* ttft_ms) {
    const std::string req = "POST " + target +
                            " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                            "Content-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string in;
    const auto t0 = clk::now();
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
        char buf[4096];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
            in.append(buf, static_cast<size_t>(n));
            const size_t p = in.find("data: ");
            if (ttft_ms && *ttft_ms < 0 && p != std::string::npos && in.find("data: ", p + 1) != std::string::npos)
                *ttft_ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
        }
    }
    ::close(fd);
    return in;
}

int completion_tokens(const std::string& response) {
    const size_t u = response.find("\"completion_tokens\":");
    return u == std::string::npos ? 0 : std::atoi(response.c_str() + u + 20);
}

one_result stream_once(uint16_t port, int idx, int max_tokens) {
    one_result r;
    const std::string body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Session " + std::to_string(idx) +
                             ": tell me a story.\"}],\"max_tokens\":" + std::to_string(max_tokens) +
                             ",\"temperature\":0.8,\"seed\":" + std::to_string(idx) + ",\"stream\":true}";
    const std::string in = http_exchange(port, "/v1/chat/completions", body, &r.ttft_ms);
    r.n_tokens = completion_tokens(in);
    r.ok = in.find("data: [DONE]") != std::string::npos;
    return r;
}

one_result session_turn(uint16_t port, const std::string& id, int round, int max_tokens) {
    one_result r;
    const std::string body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Round " + std::to_string(round) +
                             ": what happened next?\"}],\"max_tokens\":" + std::to_string(max_tokens) +
                             ",\"temperature\":0.8}";
    const auto t0 = clk::now();
    const std::string in = http_exchange(port, "/v1/sessions/" + id + "/messages", body, nullptr);
    r.total_ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
    r.n_tokens = completion_tokens(in);
    r.ok = in.rfind("HTTP/1.1 200", 0) == 0;
    if (!r.ok) {  // the first few failures are shown: status line and the start of the body
        static std::atomic<int> n_shown{0};
        const size_t body = in.find("\r\n\r\n");
        const std::string what = in.substr(0, in.find("\r\n")) +
                                 (body == std::string::npos ? std::string() : " " + in.substr(body + 4, 300));
        if (n_shown.fetch_add(1) < 3)
            std::fprintf(stderr, "bench_serve: session %s round %d: %s\n", id.c_str(), round, what.c_str());
    }
    return r;
}

double pct(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5))];
}

double rss_mb() {
    std::ifstream f("/proc/self/statm");
    long pages = 0, resident = 0;
    f >> pages >> resident;
    return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1048576.0;
}

// Runs fn(i) for i in [0, n) on n threads; returns the results and the wall time in seconds.
template <class F>
std::pair<std::vector<one_result>, double> concurrently(int n, F fn) {
    std::vector<one_result> res(static_cast<size_t>(n));
    const auto t0 = clk::now();
    std::vector<std::thread> th;
    for (int i = 0; i < n; ++i) th.emplace_back([&, i] { res[static_cast<size_t>(i)] = fn(i); });
    for (auto& t : th) t.join();
    return {std::move(res), std::chrono::duration<double>(clk::now() - t0).count()};
}

std::string burst(uint16_t port, const bench_options& o) {
    std::printf("burst: concurrent streaming requests, %d tokens each\n", o.max_tokens);
    std::printf("%8s %10s %12s %10s %10s %6s\n", "sessions", "tokens", "tokens/s", "ttft_p50", "ttft_p99", "ok");
    std::string rows;
    double single_tps = 0;
    for (int n : {1, 8, 64}) {
        auto [res, secs] = concurrently(n, [&](int i) { return stream_once(port, i, o.max_tokens); });
        int tokens = 0, ok = 0;
        std::vector<double> ttft;
        for (const auto& r : res) {
            tokens += r.n_tokens, ok += r.ok;
            if (r.ttft_ms >= 0) ttft.push_back(r.ttft_ms);
        }
        const double tps = tokens / secs;
        if (n == 1) single_tps = tps;
        const double ratio = single_tps > 0 ? tps / single_tps : 0;
        std::printf("%8d %10d %12.1f %9.1fms %9.1fms %3d/%-3d  (x%.2f vs single)\n", n, tokens, tps, pct(ttft, 0.5),
                    pct(ttft, 0.99), ok, n, ratio);
        char row[256];
        std::snprintf(row, sizeof row,
                      "%s{\"sessions\":%d,\"tokens\":%d,\"tokens_per_s\":%.1f,\"ttft_p50_ms\":%.1f,\"ttft_p99_ms\":%."
                      "1f,\"ok\":%d,\"ratio\":%.2f}",
                      rows.empty() ? "" : ",", n, tokens, tps, pct(ttft, 0.5), pct(ttft, 0.99), ok, ratio);
        rows += row;
    }
    return rows;
}

std::string load(uint16_t port, const bench_options& o) {
    std::vector<std::string> ids;
    for (int i = 0; i < o.sessions; ++i) {
        ids.push_back("load" + std::to_string(i));
        http_exchange(port, "/v1/sessions",
                      "{\"id\":\"" + ids.back() + "\",\"character\":{\"name\":\"C" + std::to_string(i) +
                          "\",\"persona\":\"You are a character who remembers every round.\"}}",
                      nullptr);
    }
    std::printf("\nload: %d durable sessions, one turn each per round, %d tokens per reply\n", o.sessions,
                o.max_tokens);
    std::printf("%6s %8s %10s %10s %10s %6s\n", "round", "tokens", "p50", "p99", "RSS MB", "ok");
    std::string rows;
    std::vector<double> p99s, rss;
    for (int round = 0; round < o.rounds; ++round) {
        auto [res, secs] = concurrently(
            o.sessions, [&](int i) { return session_turn(port, ids[static_cast<size_t>(i)], round, o.max_tokens); });
        std::vector<double> lat;
        int tokens = 0, ok = 0;
        for (const auto& r : res) lat.push_back(r.total_ms), tokens += r.n_tokens, ok += r.ok;
        p99s.push_back(pct(lat, 0.99));
        rss.push_back(rss_mb());
        std::printf("%6d %8d %8.1fms %8.1fms %10.1f %3d/%-3d\n", round, tokens, pct(lat, 0.5), p99s.back(), rss.back(),
                    ok, o.sessions);
        char row[200];
        std::snprintf(row, sizeof row, "%s{\"round\":%d,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"rss_mb\":%.1f,\"ok\":%d}",
                      rows.empty() ? "" : ",", round, pct(lat, 0.5), p99s.back(), rss.back(), ok);
        rows += row;
        (void)secs;
    }
    if (p99s.empty()) return rows;
    const size_t warm = std::min<size_t>(2, rss.size() - 1);
    std::printf("last round p99 / first round p99: x%.2f; RSS after warm-up (round %zu) %.1f MB -> end %.1f MB\n",
                p99s.back() / std::max(1e-9, p99s.front()), warm, rss[warm], rss.back());
    return rows;
}

}  // namespace

int main(int argc, char** argv) {
    bench_options o;
    cli::arg_parser p("bench_serve [options]",
                      "The HTTP server in-process over loopback: a burst of 1, 8 and 64 concurrent streaming\n"
                      "requests (throughput against one request alone), then a load run of durable sessions\n"
                      "taking turns for several rounds (latency and RSS per round).");
    p.text("--model,-m", o.model, "FILE", "GGUF model (default ../shared/models/stories260K-f32.gguf)");
    p.integer("--max-tokens", o.max_tokens, 1, 4096, "N", "tokens per reply (default 32)");
    p.integer("--threads,-t", o.threads, 1, 1024, "N", "engine threads (default 2)");
    p.integer("--rounds", o.rounds, 0, 100000, "N", "load rounds (default 20; 0 skips the load run)");
    p.integer("--sessions", o.sessions, 1, 1024, "N", "sessions of the load run (default 64)");
    p.text("--store", o.store_dir, "DIR", "RocksDB directory of the load run (default: a temporary one)");
    if (const int rc = p.run(argc, argv); rc >= 0) return rc;
    auto loaded = engine::model::load(o.model);
    if (!loaded) {
        std::fprintf(stderr, "bench_serve: %s\n", loaded.error().to_string().c_str());
        return 1;
    }
    std::shared_ptr<const engine::model> m(std::move(loaded.value()));
    const bool temp_store = o.store_dir.empty();
    if (temp_store)
        o.store_dir = (std::filesystem::temp_directory_path() / ("bench_serve_" + agent::random_hex(8))).string();
    agent::runtime_options ro;
    ro.engine.max_seqs = 64;
    ro.engine.n_ctx = 512;
    ro.engine.n_threads = o.threads;
    ro.store_dir = o.store_dir;
    auto rt = agent::runtime::open(m, ro);
    if (!rt) {
        std::fprintf(stderr, "bench_serve: %s\n", rt.error().to_string().c_str());
        return 1;
    }
    agent::server_options so;
    so.port = 0;
    auto srv = agent::server::start(so, rt.value()->runner(), rt.value()->sessions());
    if (!srv) return 1;
    const uint16_t port = srv.value()->port();
    std::printf("model %s, %d engine threads, store %s\n\n", m->hp().name.c_str(), o.threads, o.store_dir.c_str());
    const std::string burst_rows = burst(port, o);
    const std::string load_rows = load(port, o);
    std::printf("{\"bench\":\"serve\",\"model\":\"%s\",\"threads\":%d,\"max_tokens\":%d,\"rows\":[%s],\"load\":[%s]}\n",
                m->hp().name.c_str(), o.threads, o.max_tokens, burst_rows.c_str(), load_rows.c_str());
    srv.value().reset();
    rt.value().reset();
    if (temp_store) std::filesystem::remove_all(o.store_dir);
    return 0;
}

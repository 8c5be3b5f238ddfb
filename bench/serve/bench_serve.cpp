// bench_serve: `mnemos serve` in-process on a loopback port; 1, 8 and 64 concurrent
// sessions each stream one reply (POST /v1/chat/completions, "stream": true) over
// raw sockets. Prints aggregate tokens/s, p50/p99 time to first token, the
// batched/single throughput ratio, then one JSON line.
// usage: bench_serve [MODEL_GGUF] [MAX_TOKENS]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/runtime.h"
#include "agent/server/server.h"

using namespace mnemos;
using clk = std::chrono::steady_clock;

namespace {

struct one_result {
    double ttft_ms = -1;
    int n_tokens = 0;
    bool ok = false;
};

// One streaming request; TTFT = arrival of the first content chunk (the second SSE event).
one_result stream_once(uint16_t port, int idx, int max_tokens) {
    one_result r;
    const std::string body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Session " + std::to_string(idx) +
                             ": tell me a story.\"}],\"max_tokens\":" + std::to_string(max_tokens) +
                             ",\"temperature\":0.8,\"seed\":" + std::to_string(idx) + ",\"stream\":true}";
    const std::string req =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return ::close(fd), r;
    const auto t0 = clk::now();
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return ::close(fd), r;
    std::string in;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
        if (r.ttft_ms < 0) {
            size_t p = in.find("data: ");
            if (p != std::string::npos && in.find("data: ", p + 1) != std::string::npos)
                r.ttft_ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
        }
    }
    ::close(fd);
    const size_t u = in.find("\"completion_tokens\":");
    if (u != std::string::npos) r.n_tokens = std::atoi(in.c_str() + u + 20);
    r.ok = in.find("data: [DONE]") != std::string::npos;
    return r;
}

double pct(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
    const std::string model_path = argc > 1 ? argv[1] : std::string(MNEMOS_SHARED_DIR) + "/models/stories260K-f32.gguf";
    const int max_tokens = argc > 2 ? std::atoi(argv[2]) : 32;
    auto loaded = engine::model::load(model_path);
    if (!loaded) {
        std::fprintf(stderr, "bench_serve: %s\n", loaded.error().to_string().c_str());
        return 1;
    }
    std::shared_ptr<const engine::model> m(std::move(loaded.value()));
    agent::runtime_options ro;
    ro.engine.max_seqs = 64;
    ro.engine.n_ctx = 512;
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

    std::printf("model %s, max_tokens %d\n", m->hp().name.c_str(), max_tokens);
    std::printf("%8s %10s %12s %10s %10s %6s\n", "sessions", "tokens", "tokens/s", "ttft_p50", "ttft_p99", "ok");
    std::string json_rows;
    double single_tps = 0, best_ratio = 0;
    for (int n : {1, 8, 64}) {
        std::vector<one_result> res(static_cast<size_t>(n));
        const auto t0 = clk::now();
        std::vector<std::thread> th;
        for (int i = 0; i < n; ++i)
            th.emplace_back([&, i] { res[static_cast<size_t>(i)] = stream_once(port, i, max_tokens); });
        for (auto& t : th) t.join();
        const double secs = std::chrono::duration<double>(clk::now() - t0).count();
        int tokens = 0, ok = 0;
        std::vector<double> ttft;
        for (const auto& r : res) {
            tokens += r.n_tokens;
            ok += r.ok;
            if (r.ttft_ms >= 0) ttft.push_back(r.ttft_ms);
        }
        const double tps = tokens / secs;
        if (n == 1) single_tps = tps;
        const double ratio = single_tps > 0 ? tps / single_tps : 0;
        best_ratio = std::max(best_ratio, ratio);
        std::printf("%8d %10d %12.1f %9.1fms %9.1fms %3d/%-3d  (x%.2f vs single)\n", n, tokens, tps, pct(ttft, 0.5),
                    pct(ttft, 0.99), ok, n, ratio);
        char row[256];
        std::snprintf(row, sizeof row,
                      "%s{\"sessions\":%d,\"tokens\":%d,\"tokens_per_s\":%.1f,\"ttft_p50_ms\":%.1f,\"ttft_p99_ms\":%."
                      "1f,\"ok\":%d,\"ratio\":%.2f}",
                      json_rows.empty() ? "" : ",", n, tokens, tps, pct(ttft, 0.5), pct(ttft, 0.99), ok, ratio);
        json_rows += row;
    }
    std::printf("{\"bench\":\"serve\",\"model\":\"%s\",\"max_tokens\":%d,\"rows\":[%s],\"batched_over_single\":%.2f}\n",
                m->hp().name.c_str(), max_tokens, json_rows.c_str(), best_ratio);
    srv.value().reset();
    return 0;
}

// bench_cluster: cluster mode (README "Cluster mode") on a 3-server nats-server cluster on loopback (JetStream,
// R=3; started by the bench, as the tests do), the mnemos nodes in-process (each its own runtime, local store,
// HTTP server and cluster node, as `mnemos serve --cluster` wires them). Three parts, each with its baseline:
// 1. Resume: two sessions with the same history (temperature 0) built on node A, which then drains (SIGTERM's
//    path). One resumes on node B (the shared KV tier), the other on node C, which has no shared tier and an
//    empty local store (a full prefill of the same history). Time to first token, prompt and cached tokens.
// 2. Append latency: one session's events appended one after another through a node's session store
//    (JetStream, R=3, fenced) vs the local RocksDB session store (synced); p50/p99.
// 3. Turns per second: --sessions concurrent sessions (default 64) spread over 1, 2 and 3 nodes, each turn sent
//    to the session's owner; and one node without a cluster (local RocksDB) as the baseline; ratio vs 1 node.
//    Every node runs in this process: on a machine with few cores they share them (the ratio shows what the
//    cluster costs, not what more machines would gain).
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
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/cli/args.h"
#include "agent/cluster/cluster_node.h"
#include "agent/core/runtime.h"
#include "agent/server/server.h"
#include "bench/serve/http_exchange.h"
#include "memory/store.h"
#include "tests/cluster/nats_cluster.h"

using namespace mnemos;
using mnemos::bench::http_exchange;
using clk = std::chrono::steady_clock;

namespace {

struct bench_options {
    std::string model = std::string(MNEMOS_SHARED_DIR) + "/models/stories260K-f32.gguf";
    int32_t max_tokens = 16;
    int32_t threads = 1;  // engine threads per node
    int32_t n_ctx = 512;
    int32_t history_turns = 10;
    int32_t appends = 300;
    int32_t sessions = 64;
    int32_t rounds = 4;
};

double ms_since(clk::time_point t0) { return std::chrono::duration<double, std::milli>(clk::now() - t0).count(); }

double pct(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5))];
}

bool ok_status(const std::string& response) {
    return response.rfind("HTTP/1.1 200", 0) == 0 || response.rfind("HTTP/1.1 201", 0) == 0;
}

// The integer after "name": in a response (usage fields), else 0.
long json_int(const std::string& response, const std::string& name) {
    const size_t u = response.find("\"" + name + "\":");
    return u == std::string::npos ? 0 : std::atol(response.c_str() + u + name.size() + 3);
}

std::string first_line(const std::string& response) {
    const size_t body = response.find("\r\n\r\n");
    return response.substr(0, response.find("\r\n")) +
           (body == std::string::npos ? std::string() : " " + response.substr(body + 4, 300));
}

engine::engine_options engine_opts(const engine::model& m, const bench_options& o) {
    engine::engine_options e;
    e.max_seqs = 64;
    e.n_ctx = o.n_ctx;
    e.n_threads = o.threads;
    const engine::hparams& hp = m.hp();
    const size_t page_bytes = size_t(hp.n_layer) * 2 * 16 * size_t(hp.kv_dim()) * sizeof(uint16_t);
    e.kv_bytes = size_t(std::max(o.sessions, 8)) * size_t(o.n_ctx / 16 + 2) * page_bytes;
    return e;
}

// One node: its cluster node (absent for the local baseline), runtime and HTTP server.
struct node {
    std::unique_ptr<agent::cluster_node> cluster;
    std::unique_ptr<agent::runtime> rt;
    std::unique_ptr<agent::server> srv;
    uint16_t port = 0;

    // Stops as SIGTERM does: the server, then the drain (uploads flushed, leases released), then the runtime.
    ~node() {
        srv.reset();
        if (cluster) cluster->drain();
        rt.reset();
        cluster.reset();
    }
};

// nats_urls empty: a single node on its local RocksDB. shared_tier false: a cluster node whose KV blocks stay in
// its own store (the full-prefill baseline).
std::unique_ptr<node> open_node(std::shared_ptr<const engine::model> m, const bench_options& o,
                                const std::vector<std::string>& nats_urls, const std::string& id,
                                const std::string& store_dir, bool shared_tier) {
    auto n = std::make_unique<node>();
    agent::runtime_options ro;
    ro.engine = engine_opts(*m, o);
    ro.store_dir = store_dir;
    agent::server_options so;
    so.port = 0;
    if (!nats_urls.empty()) {
        agent::cluster_options co;
        co.urls = nats_urls;
        co.node_id = id;
        auto cn = agent::cluster_node::open(co);
        if (!cn) {
            std::fprintf(stderr, "bench_cluster: node %s: %s\n", id.c_str(), cn.error().to_string().c_str());
            return nullptr;
        }
        n->cluster = std::move(*cn);
        agent::cluster_node* c = n->cluster.get();
        ro.make_session_store = [c] { return c->make_session_store(); };
        if (shared_tier) ro.make_block_store = [c](memory::store& local) { return c->make_block_store(local); };
        so.session_owner = [c](const std::string& sid) { return c->owner_url(sid); };
        so.cluster_status = [c] { return c->status_json(); };
    }
    auto rt = agent::runtime::open(m, ro);
    if (!rt) {
        std::fprintf(stderr, "bench_cluster: node %s: %s\n", id.c_str(), rt.error().to_string().c_str());
        return nullptr;
    }
    n->rt = std::move(*rt);
    auto srv = agent::server::start(so, n->rt->runner(), n->rt->sessions());
    if (!srv) return nullptr;
    n->srv = std::move(*srv);
    n->port = n->srv->port();
    if (n->cluster) n->cluster->attach(n->rt->sessions(), "http://127.0.0.1:" + std::to_string(n->port));
    return n;
}

bool create_session(uint16_t port, const std::string& id) {
    const std::string r = http_exchange(
        port, "POST", "/v1/sessions",
        "{\"id\":\"" + id +
            "\",\"character\":{\"name\":\"Teller\",\"persona\":\"You tell long stories and remember them.\"}}");
    if (!ok_status(r)) std::fprintf(stderr, "bench_cluster: create %s: %s\n", id.c_str(), first_line(r).c_str());
    return ok_status(r);
}

struct turn_result {
    bool ok = false;
    double ttft_ms = -1, total_ms = 0;
    long prompt_tokens = 0, cached_tokens = 0;
};

turn_result session_turn(uint16_t port, const std::string& id, const std::string& text, int max_tokens, bool stream) {
    turn_result t;
    const std::string body = "{\"content\":\"" + text + "\",\"max_tokens\":" + std::to_string(max_tokens) +
                             ",\"temperature\":0" +
                             (stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}" : "}");
    const auto t0 = clk::now();
    const std::string r =
        http_exchange(port, "POST", "/v1/sessions/" + id + "/messages", body, stream ? &t.ttft_ms : nullptr);
    t.total_ms = ms_since(t0);
    t.ok = ok_status(r);
    t.prompt_tokens = json_int(r, "prompt_tokens");
    t.cached_tokens = json_int(r, "cached_tokens");
    if (!t.ok) {
        static std::atomic<int> n_shown{0};
        if (n_shown.fetch_add(1) < 3)
            std::fprintf(stderr, "bench_cluster: %s: %s\n", id.c_str(), first_line(r).c_str());
    }
    return t;
}

std::string temp_dir(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("bench_cluster_" + name + "_" + agent::random_hex(6))).string();
}

// Part 1.
std::string resume(std::shared_ptr<const engine::model> m, const bench_options& o, const test::nats_cluster& nats,
                   std::vector<std::string>& dirs) {
    const auto urls = nats.url_list();
    auto dir = [&](const std::string& n) { return dirs.emplace_back(temp_dir(n)); };
    auto a = open_node(m, o, urls, "resume-a", dir("a"), true);
    auto b = open_node(m, o, urls, "resume-b", dir("b"), true);
    auto c = open_node(m, o, urls, "resume-c", dir("c"), false);
    if (!a || !b || !c) return "";
    const char* ids[] = {"resume-tier", "resume-prefill"};
    for (const char* id : ids)
        if (!create_session(a->port, id)) return "";
    for (int i = 0; i < o.history_turns; ++i)
        for (const char* id : ids)
            if (!session_turn(a->port, id, "Chapter " + std::to_string(i) + ": the fox and the crow went on walking",
                              o.max_tokens, false)
                     .ok)
                return "";
    a.reset();  // drained: its uploads flushed, its leases released
    const std::string next = "What happened at the end?";
    const auto before_b = b->rt->runner().stats();
    const turn_result on_b = session_turn(b->port, ids[0], next, o.max_tokens, true);
    const auto after_b = b->rt->runner().stats();
    const auto before_c = c->rt->runner().stats();
    const turn_result on_c = session_turn(c->port, ids[1], next, o.max_tokens, true);
    const auto after_c = c->rt->runner().stats();
    const long prefill_b = long(after_b.n_prefill_tokens - before_b.n_prefill_tokens);
    const long prefill_c = long(after_c.n_prefill_tokens - before_c.n_prefill_tokens);
    std::printf("resume: a session of %d turns built on node A (drained), its next turn on another node\n",
                o.history_turns);
    std::printf("%-36s %10s %10s %8s %8s %8s %4s\n", "", "ttft", "total", "prompt", "cached", "prefill", "ok");
    std::printf("%-36s %8.1fms %8.1fms %8ld %8ld %8ld %4s\n", "node B, shared KV tier", on_b.ttft_ms, on_b.total_ms,
                on_b.prompt_tokens, on_b.cached_tokens, prefill_b, on_b.ok ? "yes" : "NO");
    std::printf("%-36s %8.1fms %8.1fms %8ld %8ld %8ld %4s\n", "node C, full prefill (baseline)", on_c.ttft_ms,
                on_c.total_ms, on_c.prompt_tokens, on_c.cached_tokens, prefill_c, on_c.ok ? "yes" : "NO");
    const double speedup = on_b.ttft_ms > 0 ? on_c.ttft_ms / on_b.ttft_ms : 0;
    std::printf("time to first token: x%.2f faster with the shared tier\n\n", speedup);
    char row[512];
    std::snprintf(row, sizeof row,
                  "{\"history_turns\":%d,\"tier_ttft_ms\":%.1f,\"tier_prompt\":%ld,\"tier_cached\":%ld,"
                  "\"prefill_ttft_ms\":%.1f,\"prefill_prompt\":%ld,\"prefill_cached\":%ld,\"speedup\":%.2f}",
                  o.history_turns, on_b.ttft_ms, on_b.prompt_tokens, on_b.cached_tokens, on_c.ttft_ms,
                  on_c.prompt_tokens, on_c.cached_tokens, speedup);
    return row;
}

// Part 2: appends through one node's session store; p50/p99 in ms (empty when one failed).
std::vector<double> append_latencies(agent::session_store_i& store, const std::string& sid, int n) {
    std::vector<double> lat;
    if (!store.put_session(sid, "{\"id\":\"" + sid + "\"}").ok()) return {};
    for (int i = 0; i < n; ++i) {
        const std::string ev = "{\"role\":\"user\",\"content\":\"event " + std::to_string(i) +
                               " of the append benchmark, about the length of a short chat message\"}";
        const auto t0 = clk::now();
        auto r = store.append_event(sid, ev);
        lat.push_back(ms_since(t0));
        if (!r) {
            std::fprintf(stderr, "bench_cluster: append: %s\n", r.error().to_string().c_str());
            return {};
        }
    }
    return lat;
}

std::string appends(std::shared_ptr<const engine::model> m, const bench_options& o, const test::nats_cluster& nats,
                    std::vector<std::string>& dirs) {
    auto clustered = open_node(m, o, nats.url_list(), "append", dirs.emplace_back(temp_dir("append")), true);
    auto local = open_node(m, o, {}, "local", dirs.emplace_back(temp_dir("local")), false);
    if (!clustered || !local) return "";
    const auto lc = append_latencies(clustered->rt->session_store(), "append-bench", o.appends);
    const auto ll = append_latencies(local->rt->session_store(), "append-bench", o.appends);
    if (lc.empty() || ll.empty()) return "";
    std::printf("append: %d events appended one after another (acknowledged / synced before the next)\n", o.appends);
    std::printf("%-36s %10s %10s %10s\n", "", "p50", "p99", "max");
    std::printf("%-36s %8.2fms %8.2fms %8.2fms\n", "JetStream, R=3, fenced", pct(lc, 0.5), pct(lc, 0.99), pct(lc, 1.0));
    std::printf("%-36s %8.2fms %8.2fms %8.2fms\n", "local RocksDB, synced (baseline)", pct(ll, 0.5), pct(ll, 0.99),
                pct(ll, 1.0));
    std::printf("p50: x%.1f the local store's\n\n", pct(lc, 0.5) / std::max(1e-9, pct(ll, 0.5)));
    char row[256];
    std::snprintf(row, sizeof row,
                  "{\"n\":%d,\"cluster_p50_ms\":%.3f,\"cluster_p99_ms\":%.3f,\"local_p50_ms\":%.3f,\"local_p99_ms\":%."
                  "3f}",
                  o.appends, pct(lc, 0.5), pct(lc, 0.99), pct(ll, 0.5), pct(ll, 0.99));
    return row;
}

// Part 3: one row. Sessions i is created on and talked to through node i % N; the first round (sessions
// created, leases taken, prompts cached) is not timed.
struct throughput_row {
    std::string label;
    int nodes = 0;
    double turns_per_s = 0, p50_ms = 0, p99_ms = 0;
    int ok = 0, total = 0;
};

throughput_row throughput(const std::vector<std::unique_ptr<node>>& nodes, const bench_options& o,
                          const std::string& tag) {
    throughput_row row;
    row.nodes = int(nodes.size());
    auto port_of = [&](int i) { return nodes[size_t(i) % nodes.size()]->port; };
    auto id_of = [&](int i) { return tag + "-" + std::to_string(i); };
    for (int i = 0; i < o.sessions; ++i)
        if (!create_session(port_of(i), id_of(i))) return row;
    std::vector<double> lat;
    std::mutex mu;
    double secs = 0;
    for (int round = 0; round < o.rounds + 1; ++round) {
        std::vector<std::thread> th;
        const auto t0 = clk::now();
        for (int i = 0; i < o.sessions; ++i)
            th.emplace_back([&, i] {
                const turn_result t =
                    session_turn(port_of(i), id_of(i), "Round " + std::to_string(round) + ": what happened next?",
                                 o.max_tokens, false);
                if (round == 0) return;
                std::lock_guard lk(mu);
                lat.push_back(t.total_ms);
                row.ok += t.ok;
                ++row.total;
            });
        for (auto& t : th) t.join();
        if (round > 0) secs += ms_since(t0) / 1000.0;
    }
    row.turns_per_s = secs > 0 ? row.ok / secs : 0;
    row.p50_ms = pct(lat, 0.5);
    row.p99_ms = pct(lat, 0.99);
    return row;
}

std::string throughputs(std::shared_ptr<const engine::model> m, const bench_options& o, const test::nats_cluster& nats,
                        std::vector<std::string>& dirs) {
    std::vector<throughput_row> rows;
    {
        std::vector<std::unique_ptr<node>> one;
        one.push_back(open_node(m, o, {}, "local", dirs.emplace_back(temp_dir("tp-local")), false));
        if (!one.back()) return "";
        rows.push_back(throughput(one, o, "local"));
        rows.back().label = "local RocksDB, no cluster";
    }
    for (int n = 1; n <= 3; ++n) {
        std::vector<std::unique_ptr<node>> nodes;
        for (int i = 0; i < n; ++i) {
            const std::string id = "tp" + std::to_string(n) + "-" + std::to_string(i);
            nodes.push_back(open_node(m, o, nats.url_list(), id, dirs.emplace_back(temp_dir(id)), true));
            if (!nodes.back()) return "";
        }
        rows.push_back(throughput(nodes, o, "tp" + std::to_string(n)));
        rows.back().label = std::to_string(n) + (n == 1 ? " node" : " nodes");
    }
    std::printf("throughput: %d concurrent sessions, %d rounds of one turn each (%d tokens), %u cores here\n",
                o.sessions, o.rounds, o.max_tokens, std::thread::hardware_concurrency());
    std::printf("%-28s %12s %10s %10s %10s %9s\n", "", "turns/s", "p50", "p99", "ok", "vs 1 node");
    const double one_node = rows[1].turns_per_s;
    std::string out;
    for (const auto& r : rows) {
        const double ratio = one_node > 0 ? r.turns_per_s / one_node : 0;
        std::printf("%-28s %12.1f %8.1fms %8.1fms %5d/%-5d x%.2f\n", r.label.c_str(), r.turns_per_s, r.p50_ms, r.p99_ms,
                    r.ok, r.total, ratio);
        char row[256];
        std::snprintf(row, sizeof row,
                      "%s{\"nodes\":%d,\"cluster\":%s,\"turns_per_s\":%.1f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"ok\":%d,"
                      "\"total\":%d,\"ratio\":%.2f}",
                      out.empty() ? "" : ",", r.nodes, &r == &rows[0] ? "false" : "true", r.turns_per_s, r.p50_ms,
                      r.p99_ms, r.ok, r.total, ratio);
        out += row;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    bench_options o;
    cli::arg_parser p("bench_cluster [options]",
                      "Cluster mode on a 3-server nats-server cluster on loopback (nats-server on PATH), nodes\n"
                      "in-process: a session resumed on another node with the shared KV tier vs a full prefill;\n"
                      "append latency with R=3 vs the local RocksDB; turns per second with 1, 2 and 3 nodes.");
    p.text("--model,-m", o.model, "FILE", "GGUF model (default ../shared/models/stories260K-f32.gguf)");
    p.integer("--max-tokens", o.max_tokens, 1, 4096, "N", "tokens per reply (default 16)");
    p.integer("--threads,-t", o.threads, 1, 1024, "N", "engine threads per node (default 1)");
    p.integer("--ctx", o.n_ctx, 64, 1 << 16, "N", "context length (default 512)");
    p.integer("--history-turns", o.history_turns, 1, 1000, "N", "turns of the resumed session (default 10)");
    p.integer("--appends", o.appends, 10, 1000000, "N", "events appended in the append part (default 300)");
    p.integer("--sessions", o.sessions, 1, 1024, "N", "concurrent sessions of the throughput part (default 64)");
    p.integer("--rounds", o.rounds, 1, 10000, "N", "timed rounds of the throughput part (default 4)");
    if (const int rc = p.run(argc, argv); rc >= 0) return rc;
    if (!test::nats_cluster::available()) {
        std::fprintf(stderr, "bench_cluster: nats-server is not on PATH (scripts/install-deps.sh installs it)\n");
        return 1;
    }
    auto loaded = engine::model::load(o.model);
    if (!loaded) {
        std::fprintf(stderr, "bench_cluster: %s\n", loaded.error().to_string().c_str());
        return 1;
    }
    std::shared_ptr<const engine::model> m(std::move(loaded.value()));
    const auto t0 = clk::now();
    test::nats_cluster nats(3);
    std::printf("model %s, 3 nats-servers (JetStream, R=3) started in %.1f s, %d engine thread(s) per node\n\n",
                m->hp().name.c_str(), ms_since(t0) / 1000.0, o.threads);
    std::vector<std::string> dirs;
    const std::string resume_row = resume(m, o, nats, dirs);
    const std::string append_row = appends(m, o, nats, dirs);
    const std::string tp_rows = throughputs(m, o, nats, dirs);
    for (const auto& d : dirs) std::filesystem::remove_all(d);
    if (resume_row.empty() || append_row.empty() || tp_rows.empty()) return 1;
    std::printf(
        "{\"bench\":\"cluster\",\"model\":\"%s\",\"threads\":%d,\"max_tokens\":%d,\"resume\":%s,\"append\":%s,"
        "\"throughput\":[%s]}\n",
        m->hp().name.c_str(), o.threads, o.max_tokens, resume_row.c_str(), append_row.c_str(), tp_rows.c_str());
    return 0;
}

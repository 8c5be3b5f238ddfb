// bench_serve: `mnemos serve` in-process on a loopback port, two parts.
// 1. Burst: 1, 8 and 64 concurrent sessions each stream one reply (POST /v1/chat/completions,
//    "stream": true) over raw sockets: aggregate tokens/s, p50/p99 time to first token, the
//    batched/single throughput ratio (the baseline in the same run).
// 2. Load (--rounds N, default 20): --sessions durable sessions (default 64) in a RocksDB store, each
//    taking one turn per round (POST /v1/sessions/{id}/messages). Every character's system prompt starts
//    with a shared game script (--script-tokens, a shared prefix: its KV computed once for all, by one
//    untimed turn of another session before round 1) long enough that attention is sparse from round 1, so
//    round 1 costs what later rounds cost (without it round 1's histories are ~90 tokens and the per-turn
//    attention grows until sparse attention caps it). Per round
//    p50/p99 latency, the history blocks read back from the store, and the process RSS (with the live and
//    free malloc heap and RocksDB's memory beside it); whether the last round's p99 is within 2x of the
//    first's and of the first warm round's (the first whose mean prompt exceeds the context), and whether
//    anonymous RSS is flat after round 5.
// Prints the tables, then one JSON line.
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/resource.h>
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
#include "bench/serve/http_exchange.h"
#include "memory/store.h"

using namespace mnemos;
using mnemos::bench::http_exchange;
using clk = std::chrono::steady_clock;

namespace {

struct bench_options {
    std::string model = std::string(MNEMOS_SHARED_DIR) + "/models/stories260K-f32.gguf";
    int32_t max_tokens = 32;
    int32_t threads = 2;
    int32_t rounds = 20;
    int32_t sessions = 64;
    std::string store_dir;        // empty: a temporary directory, removed at the end
    int32_t kv_mb = 0;            // KV pool; 0: every session's context fits at once (sessions x (n_ctx/16 + 2) pages)
    int32_t script_tokens = 640;  // the shared game script every character's system prompt starts with; 0: none
};

struct one_result {
    double ttft_ms = -1, total_ms = -1;
    int n_tokens = 0;
    bool ok = false;
};

// The reply's completion_tokens (a streamed reply has them only in its usage chunk: stream_options.include_usage).
int completion_tokens(const std::string& response) {
    const size_t u = response.find("\"completion_tokens\":");
    return u == std::string::npos ? 0 : std::atoi(response.c_str() + u + 20);
}

one_result stream_once(uint16_t port, int idx, int max_tokens) {
    one_result r;
    const std::string body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Session " + std::to_string(idx) +
                             ": tell me a story.\"}],\"max_tokens\":" + std::to_string(max_tokens) +
                             ",\"temperature\":0.8,\"seed\":" + std::to_string(idx) +
                             ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    const std::string in = http_exchange(port, "POST", "/v1/chat/completions", body, &r.ttft_ms);
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
    const std::string in = http_exchange(port, "POST", "/v1/sessions/" + id + "/messages", body, nullptr);
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

// User + system CPU seconds of the process.
double process_cpu_s() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// /proc/self/status field `name` ("RssAnon:") in MB.
double status_mb(const char* name) {
    std::ifstream f("/proc/self/status");
    std::string key;
    long kb = 0;
    while (f >> key) {
        if (key == name && f >> kb) return static_cast<double>(kb) / 1024.0;
        f.ignore(1 << 20, '\n');
    }
    return 0;
}

// Where the process memory is, per round: the resident set, split into anonymous memory (heap, stacks, the KV
// pool) and file pages mapped in (RocksDB reads its SST and blob files through mmap: clean page-cache pages the
// kernel reclaims under pressure); what malloc has handed out and not freed (live objects: a structure that
// grows without bound shows here); and RocksDB's own accounting (memtables, block cache, table readers: each
// grows to its configured cap).
struct memory_sample {
    double rss_mb = 0, anon_mb = 0, file_mb = 0, heap_mb = 0, free_mb = 0, rocks_mb = 0;
};

memory_sample sample_memory(agent::runtime& rt) {
    memory_sample m;
    m.rss_mb = rss_mb();
    m.anon_mb = status_mb("RssAnon:");
    m.file_mb = status_mb("RssFile:");
    const struct mallinfo2 mi = ::mallinfo2();
    m.heap_mb = static_cast<double>(mi.uordblks + mi.hblkhd) / 1048576.0;
    m.free_mb = static_cast<double>(mi.fordblks) / 1048576.0;  // freed, kept by malloc in its arenas
    if (memory::store* st = rt.store()) {
        const auto u = st->memory_usage();
        m.rocks_mb = static_cast<double>(u.memtables + u.block_cache + u.table_readers) / 1048576.0;
    }
    return m;
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

// The bounds the load run is held to (the issue's: p99 steady, RSS flat after warm-up).
constexpr double k_p99_bound = 2.0;     // last round's p99 at most this times the first round's
constexpr size_t k_warm_round = 4;      // round 5 (0-based 4): sessions, pool and caches are warm
constexpr double k_rss_bound = 1.10;    // anonymous RSS: the last rounds' <= rounds 5-9's x this
constexpr double k_rss_slack_mb = 4.0;  // ... plus this (allocator noise on a small process)
constexpr size_t k_window = 5;          // rounds per window of the windowed checks

struct round_row {
    double p50 = 0, p99 = 0, mean_prompt = 0;  // latency (ms); prompt tokens per turn (the history it attends)
    memory_sample mem;
};

// Whether the run stayed within the bounds: the last round's p99 against the first's and against the first
// warm round's (the first whose mean prompt exceeds the context: attention is sparse from there, so a turn's
// attention costs the budget, not the history; before it, a round of short histories is cheaper than any
// later one whatever the engine does); anonymous RSS after warm-up; then where the rest of the memory is.
void print_bounds(const std::vector<round_row>& rows, int32_t n_ctx) {
    if (rows.empty()) return;
    const double last = rows.back().p99;
    auto verdict = [](double r) { return r <= k_p99_bound ? "within" : "OUTSIDE"; };
    const double first_ratio = last / std::max(1e-9, rows.front().p99);
    std::printf("p99: last round %.1f ms / round 1 %.1f ms = x%.2f (bound x%.1f): %s\n", last, rows.front().p99,
                first_ratio, k_p99_bound, verdict(first_ratio));
    size_t warm = 0;
    while (warm < rows.size() && rows[warm].mean_prompt <= n_ctx) ++warm;
    if (warm >= rows.size()) {
        std::printf("p99: no round's mean prompt exceeded the %d-token context (no warm round)\n", n_ctx);
        return;
    }
    const double warm_ratio = last / std::max(1e-9, rows[warm].p99);
    std::printf(
        "p99: last round %.1f ms / round %zu %.1f ms (the first warm round: mean prompt %.0f tokens > the "
        "%d-token context) = x%.2f (bound x%.1f): %s\n",
        last, warm + 1, rows[warm].p99, rows[warm].mean_prompt, n_ctx, warm_ratio, k_p99_bound, verdict(warm_ratio));
    // One round's p99 on a shared machine is noisy: the same check on the median of k_window rounds.
    auto window = [&](size_t from, auto get, bool max) {
        std::vector<double> v;
        for (size_t r = from; r < std::min(rows.size(), from + k_window); ++r) v.push_back(get(rows[r]));
        return max ? *std::max_element(v.begin(), v.end()) : pct(v, 0.5);
    };
    auto p99_of = [](const round_row& r) { return r.p99; };
    if (rows.size() >= warm + 2 * k_window) {
        const size_t tail = rows.size() - k_window;
        const double a = window(warm, p99_of, false), b = window(tail, p99_of, false);
        std::printf(
            "p99, median of %zu rounds: rounds %zu-%zu %.1f ms, rounds %zu-%zu %.1f ms = x%.2f (bound x%.1f): %s\n",
            k_window, warm + 1, warm + k_window, a, tail + 1, rows.size(), b, b / std::max(1e-9, a), k_p99_bound,
            verdict(b / std::max(1e-9, a)));
    }
    if (rows.size() < k_warm_round + 2 * k_window) return;
    // RSS after warm-up: RSS samples swing by 10-30 MB between rounds (memtable flushes, the 64 client
    // threads' buffers), so the bound is on a window's largest sample: the last k_window rounds against the
    // k_window rounds after warm-up; the same less RocksDB's own memory (memtables flushed every 5 s, a 64 MiB
    // block cache: it grows to its caps).
    const size_t tail = rows.size() - k_window;
    auto anon_of = [](const round_row& r) { return r.mem.anon_mb; };
    auto rest_of = [](const round_row& r) { return r.mem.anon_mb - r.mem.rocks_mb; };
    for (int rest = 0; rest < 2; ++rest) {
        const double a = rest ? window(k_warm_round, rest_of, true) : window(k_warm_round, anon_of, true);
        const double b = rest ? window(tail, rest_of, true) : window(tail, anon_of, true);
        const double bound = a * k_rss_bound + k_rss_slack_mb;
        std::printf(
            "%s, largest of %zu rounds: rounds %zu-%zu %.1f MB, rounds %zu-%zu %.1f MB (bound %.1f MB: "
            "x%.2f + %.0f MB): %s\n",
            rest ? "anonymous RSS less RocksDB's own memory" : "anonymous RSS", k_window, k_warm_round + 1,
            k_warm_round + k_window, a, tail + 1, rows.size(), b, bound, k_rss_bound, k_rss_slack_mb,
            b <= bound ? "flat" : "GROWING");
    }
    const memory_sample& w = rows[k_warm_round].mem;
    const memory_sample& e = rows.back().mem;
    std::printf(
        "round %zu -> last round: RSS %.1f -> %.1f MB, of which file pages mapped (the store's files, read through "
        "mmap: clean page cache) %.1f -> %.1f MB; live heap (malloc) %.1f -> %.1f MB, free in malloc's arenas %.1f "
        "-> %.1f MB; RocksDB memtables + block cache + table readers %.1f -> %.1f MB; the live heap outside "
        "RocksDB (sessions, server, engine) %.1f -> %.1f MB\n",
        k_warm_round + 1, w.rss_mb, e.rss_mb, w.file_mb, e.file_mb, w.heap_mb, e.heap_mb, w.free_mb, e.free_mb,
        w.rocks_mb, e.rocks_mb, w.heap_mb - w.rocks_mb, e.heap_mb - e.rocks_mb);
    ::malloc_trim(0);  // how much of the free memory is whole pages malloc could give back
    std::printf("anonymous RSS after malloc_trim: %.1f MB\n", status_mb("RssAnon:"));
}

// A game script of about n_tokens tokens (plain story sentences, which a small story model's vocabulary
// covers), for a shared prefix every character's system prompt starts with.
std::string game_script(const engine::model& m, int32_t n_tokens) {
    static const char* names[] = {"Lily", "Tom", "Sam", "Mia", "Ben", "Anna", "Max", "Sue"};
    static const char* places[] = {"the park", "the garden", "the big house", "the river", "the shop", "the forest"};
    static const char* things[] = {"a red ball", "a small key", "a blue box", "a old map", "a shiny coin", "a toy car"};
    std::string text = "The rules of the game. ";
    for (int i = 0; int32_t(m.tok().encode(text, false, false).size()) < n_tokens; ++i)
        text +=
            std::string(names[i % 8]) + " went to " + places[(i / 8) % 6] + " and found " + things[(i / 3) % 6] + ". ";
    return text;
}

std::string load(uint16_t port, const bench_options& o, agent::runtime& rt) {
    std::string shared;
    if (o.script_tokens > 0) {
        if (auto st = rt.sessions().put_shared_prefix("script", game_script(rt.model(), o.script_tokens)); !st.ok()) {
            std::fprintf(stderr, "bench_serve: %s\n", st.to_string().c_str());
            return {};
        }
        shared = ",\"shared_prefix\":\"script\"";
    }
    std::vector<std::string> ids;
    auto create = [&](const std::string& id, const std::string& name) {
        http_exchange(port, "POST", "/v1/sessions",
                      "{\"id\":\"" + id + "\",\"character\":{\"name\":\"" + name + "\",\"persona\":\"You are " + name +
                          ", a character who remembers every round.\"" + shared + "}}",
                      nullptr);
    };
    for (int i = 0; i < o.sessions; ++i) {
        ids.push_back("load" + std::to_string(i));
        create(ids.back(), "C" + std::to_string(i));
    }
    if (o.script_tokens > 0) {
        // As in a server that has been running: the shared script's KV exists before round 1 (one session
        // outside the load run takes one turn), so round 1 does not also compute it once for everyone.
        create("warmup", "W");
        session_turn(port, "warmup", 0, o.max_tokens);
    }
    std::printf(
        "\nload: %d durable sessions, one turn each per round, %d tokens per reply; shared game script: %d "
        "tokens; context %d tokens (attention is sparse past it)\n",
        o.sessions, o.max_tokens, o.script_tokens, rt.runner().n_ctx());
    std::printf("%5s %6s %7s %7s %8s %9s %9s %6s %6s %6s %6s %6s %6s %6s %6s %4s\n", "round", "prompt", "prefill",
                "reused", "reads", "p50", "p99", "CPU s", "RSS", "anon", "file", "heap", "free", "rocks", "preemp",
                "ok");
    std::string rows;
    std::vector<round_row> table;
    engine::engine_stats before = rt.runner().stats();
    engine::kv_cache_stats kv_before = rt.runner().kv_stats();
    double cpu_before = process_cpu_s();
    for (int round = 0; round < o.rounds; ++round) {
        auto [res, secs] = concurrently(
            o.sessions, [&](int i) { return session_turn(port, ids[static_cast<size_t>(i)], round, o.max_tokens); });
        std::vector<double> lat;
        int tokens = 0, ok = 0;
        for (const auto& r : res) lat.push_back(r.total_ms), tokens += r.n_tokens, ok += r.ok;
        const auto es = rt.runner().stats();
        const auto ks = rt.runner().kv_stats();
        // Prompt tokens computed and reused from the prefix cache (pool or store) this round; history blocks
        // sparse attention read back from the store (a page it had parked and the pool had since reused).
        const long long prefill = es.n_prefill_tokens - before.n_prefill_tokens;
        const long long reused = es.n_reused_tokens - before.n_reused_tokens;
        const long long reads = ks.n_fetch_loads - kv_before.n_fetch_loads;
        before = es, kv_before = ks;
        round_row row;
        row.p50 = pct(lat, 0.5), row.p99 = pct(lat, 0.99);
        row.mean_prompt = static_cast<double>(prefill + reused) / std::max(1, o.sessions);
        row.mem = sample_memory(rt);
        table.push_back(row);
        const memory_sample& m = row.mem;
        const double cpu = process_cpu_s() - cpu_before;  // the whole process: server, engine, store, clients
        cpu_before += cpu;
        std::printf(
            "%5d %6.0f %7lld %7lld %8lld %7.1fms %7.1fms %6.2f %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %6lld %3d/%-3d\n",
            round + 1, row.mean_prompt, prefill, reused, reads, row.p50, row.p99, cpu, m.rss_mb, m.anon_mb, m.file_mb,
            m.heap_mb, m.free_mb, m.rocks_mb, static_cast<long long>(es.n_preemptions), ok, o.sessions);
        std::fflush(stdout);
        char buf[400];
        std::snprintf(buf, sizeof buf,
                      "%s{\"round\":%d,\"mean_prompt\":%.0f,\"store_reads\":%lld,\"p50_ms\":%.1f,\"p99_ms\":%.1f,"
                      "\"rss_mb\":%.1f,\"anon_mb\":%.1f,\"file_mb\":%.1f,\"heap_mb\":%.1f,\"free_mb\":%.1f,"
                      "\"rocks_mb\":%.1f,\"preemptions\":%lld,\"ok\":%d}",
                      rows.empty() ? "" : ",", round + 1, row.mean_prompt, reads, row.p50, row.p99, m.rss_mb, m.anon_mb,
                      m.file_mb, m.heap_mb, m.free_mb, m.rocks_mb, static_cast<long long>(es.n_preemptions), ok);
        rows += buf;
        (void)secs;
    }
    std::printf(
        "(prompt: mean prompt tokens per turn, the history a turn attends; reads: history blocks read back "
        "from the store; RSS, anon(ymous), file(-mapped), live heap, free in malloc's arenas and RocksDB's "
        "own memory in MB)\n");
    print_bounds(table, rt.runner().n_ctx());
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
    p.integer("--script-tokens", o.script_tokens, 0, 1 << 20, "N",
              "a shared game script of about N tokens that every character's system prompt starts with (default "
              "640: attention is sparse from round 1; 0: none, round 1's histories are short)");
    p.text("--store", o.store_dir, "DIR", "RocksDB directory of the load run (default: a temporary one)");
    p.integer("--kv-mb", o.kv_mb, 0, 1 << 20, "N",
              "KV pool in MiB (default 0: every session's 512-token context at once; smaller pools preempt)");
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
    const engine::hparams& hp = m->hp();
    const size_t page_bytes = size_t(hp.n_layer) * 2 * 16 * size_t(hp.kv_dim()) * sizeof(uint16_t);
    ro.engine.kv_bytes =
        o.kv_mb > 0 ? size_t(o.kv_mb) << 20 : size_t(o.sessions) * size_t(ro.engine.n_ctx / 16 + 2) * page_bytes;
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
    std::printf("model %s, %d engine threads, KV pool %d pages, store %s\n\n", m->hp().name.c_str(), o.threads,
                rt.value()->runner().kv_stats().n_pages, o.store_dir.c_str());
    const std::string burst_rows = burst(port, o);
    const std::string load_rows = load(port, o, *rt.value());
    std::printf("{\"bench\":\"serve\",\"model\":\"%s\",\"threads\":%d,\"max_tokens\":%d,\"rows\":[%s],\"load\":[%s]}\n",
                m->hp().name.c_str(), o.threads, o.max_tokens, burst_rows.c_str(), load_rows.c_str());
    srv.value().reset();
    rt.value().reset();
    if (temp_store) std::filesystem::remove_all(o.store_dir);
    return 0;
}

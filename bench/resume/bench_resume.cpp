// bench_resume: for histories of several lengths, time to the first new token
// when resuming from the store (KV blocks read, checked and decoded) vs a full
// prefill of the same history, for the fp16 and int8 codecs; bytes per token
// on disk; the cost of writing blocks behind during prefill (the same prefill
// with and without a store attached); and the resume broken down into the
// store read, the verify+decode, and the rest (the one-token forward), with
// the ratio of read+decode to a sequential read of the same files.
//
// Histories longer than --prefill-max are not prefilled (it would take too
// long on a small machine): their KV blocks are synthetic (random f16 values)
// written under the correct chained block hashes of the history's tokens, so
// the resume path is exactly the real one, and the prefill column says "not
// run". The model is a random-weight Q8_0 GGUF generated once into
// --model-dir. Prints a table, then one JSON line.
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "memory/store.h"
#include "tests/support/tiny_model.h"

using namespace mnemos;
using clk = std::chrono::steady_clock;

namespace {

double secs(clk::time_point a, clk::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct bench_options {
    test::tiny_model_options model;
    std::vector<int> lengths = {512, 2048};
    std::vector<memory::kv_codec> codecs = {memory::kv_codec::fp16, memory::kv_codec::int8};
    int threads = 2;
    int prefill_max = 8192;   // longer histories get synthetic blocks
    int overhead_max = 2048;  // up to here, one prefill per codec; beyond, one prefill writing both codecs
    int repeat = 3;           // resumes and sequential reads per row (the median is reported)
    bool cold = false;        // evict the database's files from the page cache before each read
    int load_threads = 2;     // store_options::load_threads
    size_t chunk_kb = 1024;   // store_options::load_chunk_bytes / 1024
    bool mmap_reads = true;   // store_options::mmap_reads
    std::string model_dir = "/tmp";
    std::string db_dir = std::filesystem::temp_directory_path().string();
};

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: bench_resume [--preset 1b] [--lengths 512,2048] [--codecs fp16,int8]\n"
                 "                    [--layers 8] [--dim 1024] [--heads 16] [--kv-heads 4] [--ffn 4096]\n"
                 "                    [--threads 2] [--prefill-max 8192] [--overhead-max 2048] [--repeat 3]\n"
                 "                    [--load-threads 2] [--chunk-kb 1024] [--mmap 1] [--cold] [--model-dir /tmp] "
                 "[--db-dir /tmp]\n\n"
                 "Generates a random Q8_0 model of that shape once (in --model-dir; --preset 1b is\n"
                 "Llama-3.2-1B's shape: 16 layers, dim 2048, 32 heads, 8 KV heads, ffn 8192), then for each\n"
                 "history length:\n"
                 "  - a full prefill without a store, and with a write-behind store attached (one per codec\n"
                 "    up to --overhead-max tokens; beyond, only one prefill, writing both codecs at once);\n"
                 "    histories longer than --prefill-max are not prefilled: their blocks are synthetic\n"
                 "    (random values under the real chained hashes) and the prefill column says \"not run\";\n"
                 "  - --repeat resumes from a reopened store (median reported): time to the first token, split\n"
                 "    into the store's load (wall; within it RocksDB MultiGet and verify+decode, summed over\n"
                 "    --load-threads threads) and the rest (one-token forward);\n"
                 "  - before each resume, a sequential read of the database's files: store load / seqread.\n"
                 "Reads are warm (page cache) unless --cold, which evicts the database's files first\n"
                 "(posix_fadvise DONTNEED) for both the resume and the sequential read. --mmap 0: the store\n"
                 "reads with pread instead of mmap; --load-threads, --chunk-kb: store_options of load_many.\n"
                 "The generated model's vocabulary is tiny (a few hundred tokens): a real 1B model's output\n"
                 "layer (128k x 2048) would add to the one-token forward, not to the store's part.\n"
                 "Prints a table, then one JSON line.\n");
}

std::vector<std::string> split(const std::string& v) {
    std::vector<std::string> out;
    for (size_t p = 0; p <= v.size();) {
        size_t q = v.find(',', p);
        if (q == std::string::npos) q = v.size();
        if (q > p) out.push_back(v.substr(p, q - p));
        p = q + 1;
    }
    return out;
}

// 0 = ok, 1 = --help printed, 2 = bad flag.
int parse(int argc, char** argv, bench_options& o) {
    auto& mo = o.model;
    mo.n_layer = 8;
    mo.n_embd = 1024;
    mo.n_head = 16;
    mo.n_head_kv = 4;
    mo.n_ff = 4096;
    mo.weight_type = kernels::ggml_type::q8_0;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (k == "--help" || k == "-h") {
            usage(stdout);
            return 1;
        }
        if (k == "--cold") {
            o.cold = true;
            continue;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "bench_resume: %s needs a value\n", k.c_str());
            return 2;
        }
        const std::string v = argv[++i];
        if (k == "--preset") {
            if (v != "1b") {
                std::fprintf(stderr, "bench_resume: unknown preset %s (known: 1b)\n", v.c_str());
                return 2;
            }
            mo.n_layer = 16;
            mo.n_embd = 2048;
            mo.n_head = 32;
            mo.n_head_kv = 8;
            mo.n_ff = 8192;
        } else if (k == "--layers")
            mo.n_layer = std::atoi(v.c_str());
        else if (k == "--dim")
            mo.n_embd = std::atoi(v.c_str());
        else if (k == "--heads")
            mo.n_head = std::atoi(v.c_str());
        else if (k == "--kv-heads")
            mo.n_head_kv = std::atoi(v.c_str());
        else if (k == "--ffn")
            mo.n_ff = std::atoi(v.c_str());
        else if (k == "--threads")
            o.threads = std::atoi(v.c_str());
        else if (k == "--prefill-max")
            o.prefill_max = std::atoi(v.c_str());
        else if (k == "--overhead-max")
            o.overhead_max = std::atoi(v.c_str());
        else if (k == "--repeat")
            o.repeat = std::max(1, std::atoi(v.c_str()));
        else if (k == "--load-threads")
            o.load_threads = std::max(1, std::atoi(v.c_str()));
        else if (k == "--mmap")
            o.mmap_reads = std::atoi(v.c_str()) != 0;
        else if (k == "--chunk-kb")
            o.chunk_kb = size_t(std::max(1, std::atoi(v.c_str())));
        else if (k == "--model-dir")
            o.model_dir = v;
        else if (k == "--db-dir")
            o.db_dir = v;
        else if (k == "--lengths") {
            o.lengths.clear();
            for (const auto& s : split(v)) o.lengths.push_back(std::atoi(s.c_str()));
        } else if (k == "--codecs") {
            o.codecs.clear();
            for (const auto& s : split(v)) {
                if (s == "fp16")
                    o.codecs.push_back(memory::kv_codec::fp16);
                else if (s == "int8")
                    o.codecs.push_back(memory::kv_codec::int8);
                else {
                    std::fprintf(stderr, "bench_resume: unknown codec %s\n", s.c_str());
                    return 2;
                }
            }
        } else {
            std::fprintf(stderr, "bench_resume: unknown flag %s\n", k.c_str());
            return 2;
        }
    }
    for (int l : o.lengths)
        if (l < 16) {
            std::fprintf(stderr, "bench_resume: lengths must be >= 16\n");
            return 2;
        }
    return o.lengths.empty() || o.codecs.empty() ? 2 : 0;
}

double process_cpu_s() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

struct run_timing {
    double ttft_s = 0;
    int32_t n_reused = 0;
};

// Submits prompt with max_tokens 1 and times submit -> first token.
run_timing run_once(engine::engine& eng, const std::vector<engine::token_id>& prompt) {
    run_timing t;
    engine::request r;
    r.prompt = prompt;
    r.max_tokens = 1;
    r.sampling.temperature = 0;
    r.ignore_eos = true;
    clk::time_point first{};
    bool got = false;
    r.on_token = [&](engine::token_id, std::string_view) {
        if (!got) first = clk::now();
        got = true;
    };
    r.on_finish = [&](const engine::finish_info& f) {
        if (!got) first = clk::now();
        got = true;
        t.n_reused = f.n_reused;
    };
    const auto t0 = clk::now();
    eng.submit(std::move(r));
    eng.run_until_idle();
    t.ttft_s = secs(t0, first);
    return t;
}

struct timed_prefill {
    double wall_s = 0, cpu_s = 0;  // submit -> first token; CPU time of the whole process meanwhile
};

// A full prefill of prompt on a fresh engine, with store (may be null) attached.
timed_prefill prefill(std::unique_ptr<engine::engine> eng, const std::vector<engine::token_id>& prompt,
                      engine::block_store_i* store) {
    eng->kv().set_store(store);
    const double c0 = process_cpu_s();
    timed_prefill t;
    t.wall_s = run_once(*eng, prompt).ttft_s;
    t.cpu_s = process_cpu_s() - c0;
    return t;
}

// Drops dir's files from the page cache (they are re-read from the disk).
void evict_files(const std::string& dir) {
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (!e.is_regular_file()) continue;
        const int fd = ::open(e.path().c_str(), O_RDONLY);
        if (fd < 0) continue;
        ::fdatasync(fd);
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    }
}

double thread_cpu_s() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

struct seq_read {
    double wall_s = 0, cpu_s = 0;
    uint64_t bytes = 0;
};

// Reads every blob and sst file under dir sequentially (read(2) into one
// 8 MiB buffer) on this thread.
seq_read read_files(const std::string& dir) {
    std::vector<char> buf(8 << 20);
    uint64_t n = 0;
    const double c0 = thread_cpu_s();
    const auto t0 = clk::now();
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const auto name = e.path().filename().string();
        if (!name.ends_with(".blob") && !name.ends_with(".sst")) continue;
        const int fd = ::open(e.path().c_str(), O_RDONLY);
        if (fd < 0) continue;
        for (ssize_t r; (r = ::read(fd, buf.data(), buf.size())) > 0;) n += uint64_t(r);
        ::close(fd);
    }
    return {secs(t0, clk::now()), thread_cpu_s() - c0, n};
}

// Persists every block to two stores (one prefill writes both codecs).
class tee_store final : public engine::block_store_i {
  public:
    tee_store(engine::block_store_i& a, engine::block_store_i& b) : a_(a), b_(b) {}
    bool load(const engine::block_hash&, std::span<uint8_t>) override { return false; }
    void persist(const engine::block_hash& hash, const engine::block_hash& parent,
                 std::span<const engine::token_id> tokens, std::span<const uint8_t> page_bytes) override {
        a_.persist(hash, parent, tokens, page_bytes);
        b_.persist(hash, parent, tokens, page_bytes);
    }

  private:
    engine::block_store_i& a_;
    engine::block_store_i& b_;
};

// Writes the history's blocks without computing them: random f16 values
// (|x| < 2) under the chained hashes of prompt's full blocks, as write-behind
// would have written them. For timing the resume path only.
void write_synthetic(memory::store& st, const engine::block_hash& fingerprint,
                     const std::vector<engine::token_id>& history, size_t page_bytes) {
    constexpr int ps = 16;
    std::vector<std::vector<uint8_t>> pages(8, std::vector<uint8_t>(page_bytes));
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (auto& p : pages)
        for (size_t i = 0; i + 1 < p.size(); i += 2) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            const uint16_t h = kernels::fp32_to_fp16(float(int64_t(x % 4001) - 2000) / 1000.0f);
            std::memcpy(p.data() + i, &h, 2);
        }
    const auto hashes = memory::store::block_hashes(fingerprint, history, ps);
    engine::block_hash parent = fingerprint;
    for (size_t k = 0; k < hashes.size(); ++k) {
        st.blocks().persist(hashes[k], parent, std::span(history).subspan(k * ps, ps), pages[k % pages.size()]);
        parent = hashes[k];
    }
    st.flush();
}

std::unique_ptr<memory::store> open_store(const bench_options& o, const std::string& path, memory::kv_codec codec,
                                          int kv_dim, bool fresh) {
    if (fresh) std::filesystem::remove_all(path);
    memory::store_options so;
    so.path = path;
    so.codec = codec;
    so.int8_group = kv_dim;
    so.load_threads = o.load_threads;
    so.load_chunk_bytes = o.chunk_kb << 10;
    so.mmap_reads = o.mmap_reads;
    auto st = memory::store::open(so);
    if (!st) {
        std::fprintf(stderr, "bench_resume: %s\n", st.error().to_string().c_str());
        std::exit(1);
    }
    return std::move(st.value());
}

struct row {
    int tokens = 0;
    memory::kv_codec codec = memory::kv_codec::fp16;
    bool synthetic = false;
    double prefill_s = NAN, prefill_store_s = NAN;
    bool store_tee = false;  // one prefill wrote both codecs: prefill_s == prefill_store_s, write-behind included
    double prefill_cpu_s = NAN, prefill_store_cpu_s = NAN;  // process CPU time during those prefills
    double persist_s = NAN;  // engine thread time inside the store's persist() (page copies, back-pressure)
    double flush_s = NAN;    // after the prefill with a store: until every block was written (not in +store_s)
    double ttft_s = 0, store_s = 0, read_s = 0, decode_s = 0, load_s = 0, rest_s = 0, seqread_s = 0;
    double store_cpu_s = 0, seqread_cpu_s = 0;
    double ratio = 0, cpu_ratio = 0;  // medians over the repetitions of store_s / seqread_s and of the CPU times
    double bytes_per_token = 0;
    uint64_t loaded_bytes = 0, file_bytes = 0;
    int32_t n_reused = 0;
};

std::string fmt(double v, const char* f = "%.3f") {
    if (std::isnan(v)) return "not run";
    char b[32];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

std::string jnum(double v, const char* f = "%.4f") { return std::isnan(v) ? "null" : fmt(v, f); }

}  // namespace

int main(int argc, char** argv) {
    bench_options o;
    if (const int r = parse(argc, argv, o); r != 0) {
        if (r == 2) usage(stderr);
        return r == 1 ? 0 : 2;
    }
    auto& mo = o.model;
    int max_len = 0;
    for (int l : o.lengths) max_len = std::max(max_len, l);
    mo.n_ctx = 65536;
    char name[320];
    std::snprintf(name, sizeof name, "%s/mnemos-bench-resume-l%d-d%d-h%d-kv%d-f%d-c%d-q8_0.gguf", o.model_dir.c_str(),
                  mo.n_layer, mo.n_embd, mo.n_head, mo.n_head_kv, mo.n_ff, mo.n_ctx);
    if (!std::filesystem::exists(name)) {
        std::fprintf(stderr, "generating %s ...\n", name);
        const auto t0 = clk::now();
        if (!test::write_tiny_model(name, mo)) {
            std::fprintf(stderr, "bench_resume: cannot write %s\n", name);
            return 1;
        }
        std::fprintf(stderr, "generated in %.1f s\n", secs(t0, clk::now()));
    }
    auto ml = engine::model::load(name);
    if (!ml) {
        std::fprintf(stderr, "bench_resume: %s\n", ml.error().to_string().c_str());
        return 1;
    }
    std::shared_ptr<const engine::model> m(std::move(ml.value()));
    const int kv_dim = m->hp().n_head_kv * m->hp().head_dim;
    const size_t bytes_per_token_f16 = size_t(m->hp().n_layer) * 2 * size_t(kv_dim) * 2;
    const size_t page_bytes = 16 * bytes_per_token_f16;
    auto make_engine = [&](int len) {
        engine::engine_options eo;
        eo.n_threads = o.threads;
        eo.n_ctx = max_len + 64;
        eo.kv_bytes = size_t(len / 16 + 8) * page_bytes;
        auto e = engine::engine::create(m, eo);
        if (!e) {
            std::fprintf(stderr, "bench_resume: %s\n", e.error().to_string().c_str());
            std::exit(1);
        }
        return std::move(e.value());
    };
    double load0[3] = {0, 0, 0}, load1[3] = {0, 0, 0};
    getloadavg(load0, 3);
    std::printf(
        "model: %d layers, dim %d, %d heads, %d kv heads (head dim %d), ffn %d, vocab %d, q8_0, %.0f MB "
        "weights; %d threads; KV %zu bytes/token as f16; reads %s; load average %.2f\n",
        mo.n_layer, mo.n_embd, mo.n_head, mo.n_head_kv, m->hp().head_dim, mo.n_ff, m->hp().n_vocab,
        double(m->n_weight_bytes()) / 1e6, o.threads, bytes_per_token_f16, o.cold ? "cold" : "warm (page cache)",
        load0[0]);
    std::printf("%7s %5s %9s %9s %9s %6s %6s %8s %8s %8s %8s %8s %8s %8s %6s %6s %8s %9s %8s\n", "tokens", "codec",
                "history", "prefill_s", "+store_s", "ovh%", "cpu+%", "resume_s", "store_s", "read_s", "decode_s",
                "other_s", "fwd_s", "seqrd_s", "ratio", "cpu_r", "speedup", "bytes/tok", "MB");
    {
        // Warm-up, untimed: the weights are paged in and the kernels' buffers exist before the first prefill.
        std::vector<engine::token_id> warm(64, engine::token_id(3));
        run_once(*make_engine(64), warm);
    }
    std::vector<row> rows;
    const std::string root = o.db_dir + "/mnemos-bench-resume-db";
    for (int len : o.lengths) {
        std::mt19937 rng{uint32_t(len)};
        std::vector<engine::token_id> prompt(size_t(len) + 1);  // the history, then the new turn's token
        for (auto& t : prompt) t = engine::token_id(3 + rng() % uint32_t(m->hp().n_vocab - 3));
        const std::vector<engine::token_id> history(prompt.begin(), prompt.end() - 1);
        auto db_of = [&](memory::kv_codec c) {
            return root + "-" + std::to_string(len) + "-" + memory::kv_codec_name(c);
        };
        std::vector<row> rs(o.codecs.size());
        for (size_t c = 0; c < rs.size(); ++c) {
            rs[c].tokens = len;
            rs[c].codec = o.codecs[c];
            rs[c].synthetic = len > o.prefill_max;
        }
        if (len <= o.prefill_max && (len <= o.overhead_max || rs.size() == 1)) {
            // The same prefill without a store, then with one store per codec.
            const timed_prefill plain = prefill(make_engine(len), prompt, nullptr);
            for (auto& r : rs) {
                r.prefill_s = plain.wall_s;
                r.prefill_cpu_s = plain.cpu_s;
                auto st = open_store(o, db_of(r.codec), r.codec, kv_dim, true);
                const timed_prefill p = prefill(make_engine(len), prompt, &st->blocks());
                r.prefill_store_s = p.wall_s;
                r.prefill_store_cpu_s = p.cpu_s;
                const auto f0 = clk::now();
                st->flush();
                r.flush_s = secs(f0, clk::now());
                r.persist_s = double(st->counters().persist_ns) * 1e-9;
            }
        } else if (len <= o.prefill_max) {
            // One prefill writing both codecs (a long prefill, run once): its time includes write-behind.
            auto a = open_store(o, db_of(rs[0].codec), rs[0].codec, kv_dim, true);
            auto b = open_store(o, db_of(rs[1].codec), rs[1].codec, kv_dim, true);
            tee_store tee(a->blocks(), b->blocks());
            const timed_prefill p = prefill(make_engine(len), prompt, &tee);
            const auto f0 = clk::now();
            a->flush();
            b->flush();
            const double f = secs(f0, clk::now());
            const double persist_s = double(a->counters().persist_ns + b->counters().persist_ns) * 1e-9;
            for (auto& r : rs) {
                r.prefill_s = r.prefill_store_s = p.wall_s;
                r.prefill_cpu_s = r.prefill_store_cpu_s = p.cpu_s;
                r.flush_s = f;
                r.persist_s = persist_s;
                r.store_tee = true;
            }
        } else {
            for (auto& r : rs) {
                auto st = open_store(o, db_of(r.codec), r.codec, kv_dim, true);
                write_synthetic(*st, m->fingerprint(), history, page_bytes);
            }
        }
        for (auto& r : rs) {
            const std::string db = db_of(r.codec);
            std::vector<row> reps;
            std::vector<double> ratios, cpu_ratios;
            for (int k = 0; k < o.repeat; ++k) {
                // A sequential read of the same files right before each resume, so that both see the same load.
                if (o.cold) evict_files(db);
                const seq_read sr = read_files(db);
                row t = r;
                auto eng = make_engine(len);
                if (o.cold) evict_files(db);
                auto st = open_store(o, db, r.codec, kv_dim, false);
                eng->kv().set_store(&st->blocks());
                const auto res = run_once(*eng, prompt);
                const auto ks = eng->kv().stats();
                const auto ss = st->counters();
                t.ttft_s = res.ttft_s;
                t.n_reused = res.n_reused;
                t.store_s = double(ss.load_wall_ns) * 1e-9;
                t.store_cpu_s = double(ss.load_cpu_ns) * 1e-9;
                t.read_s = double(ss.load_read_ns) * 1e-9;
                t.decode_s = double(ss.load_decode_ns) * 1e-9;
                t.load_s = double(ks.match_ns) * 1e-9;
                t.rest_s = t.ttft_s - t.load_s;
                t.loaded_bytes = ss.load_value_bytes;
                t.seqread_s = sr.wall_s;
                t.seqread_cpu_s = sr.cpu_s;
                t.file_bytes = sr.bytes;
                ratios.push_back(t.store_s / sr.wall_s);
                cpu_ratios.push_back(t.store_cpu_s / sr.cpu_s);
                reps.push_back(t);
            }
            std::sort(reps.begin(), reps.end(), [](const row& a, const row& b) { return a.ttft_s < b.ttft_s; });
            std::sort(ratios.begin(), ratios.end());
            std::sort(cpu_ratios.begin(), cpu_ratios.end());
            r = reps[reps.size() / 2];
            r.ratio = ratios[ratios.size() / 2];
            r.cpu_ratio = cpu_ratios[cpu_ratios.size() / 2];
            r.bytes_per_token = open_store(o, db, r.codec, kv_dim, false)->stats().bytes_per_token;
            std::filesystem::remove_all(db);

            const double ovh = r.store_tee ? NAN : 100.0 * (r.prefill_store_s - r.prefill_s) / r.prefill_s;
            const double cpu_ovh =
                r.store_tee ? NAN : 100.0 * (r.prefill_store_cpu_s - r.prefill_cpu_s) / r.prefill_cpu_s;
            std::printf(
                "%7d %5s %9s %9s %9s %6s %6s %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %6.2f %6.2f %8s %9.0f %8.1f\n",
                len, memory::kv_codec_name(r.codec), r.synthetic ? "synthetic" : "prefill",
                (fmt(r.prefill_s) + (r.store_tee ? "*" : "")).c_str(),
                r.store_tee ? "-" : fmt(r.prefill_store_s).c_str(), r.store_tee ? "-" : fmt(ovh, "%.1f").c_str(),
                r.store_tee ? "-" : fmt(cpu_ovh, "%.1f").c_str(), r.ttft_s, r.store_s, r.read_s, r.decode_s,
                r.load_s - r.store_s, r.rest_s, r.seqread_s, r.ratio, r.cpu_ratio,
                r.synthetic ? "-" : (fmt(r.prefill_s / r.ttft_s, "%.0f") + "x").c_str(), r.bytes_per_token,
                double(r.loaded_bytes) / 1e6);
            std::fflush(stdout);
            rows.push_back(r);
        }
    }
    getloadavg(load1, 3);
    std::printf(
        "history: prefill = the KV was computed by a timed prefill; synthetic = random blocks written under the real\n"
        "  chained hashes (prefill not run: nothing about prefill is measured for those rows).\n"
        "prefill_s: submit -> first token of a full prefill on a fresh engine, no store (* = with a store writing\n"
        "  fp16 and int8 behind at once: one long prefill, run once). +store_s: the same prefill with one store\n"
        "  writing behind; ovh%%: its extra wall time; cpu+%%: its extra CPU time of the whole process.\n"
        "resume_s: submit -> first token from a reopened store, median of %d.\n"
        "  store_s: wall time of the store's load_many (read, verify, decode into the KV pages) with %d thread(s);\n"
        "  read_s / decode_s: its RocksDB MultiGet / CRC-32C+decode time, summed over those threads;\n"
        "  other_s: the rest of the prefix match (block hashing, lookups); fwd_s: the rest of resume_s (the\n"
        "  one-token forward over the whole history, scheduling). seqrd_s: read(2) of the database's .sst and\n"
        "  .blob files in 8 MiB chunks by one thread, just before each resume; ratio: median of store_s / seqrd_s;\n"
        "  cpu_r: median of the store's CPU time (all its threads) / the sequential read's CPU time.\n"
        "  MB: value bytes the store read. load average %.2f -> %.2f.\n",
        o.repeat, o.load_threads, load0[0], load1[0]);
    std::string json = "{\"bench\":\"resume\",\"model\":{\"layers\":" + std::to_string(mo.n_layer) +
                       ",\"dim\":" + std::to_string(mo.n_embd) + ",\"heads\":" + std::to_string(mo.n_head) +
                       ",\"kv_heads\":" + std::to_string(mo.n_head_kv) + ",\"ffn\":" + std::to_string(mo.n_ff) +
                       ",\"vocab\":" + std::to_string(m->hp().n_vocab) +
                       ",\"weights\":\"q8_0\"},\"threads\":" + std::to_string(o.threads) +
                       ",\"cold\":" + (o.cold ? "true" : "false") + ",\"repeat\":" + std::to_string(o.repeat) +
                       ",\"load_threads\":" + std::to_string(o.load_threads) + ",\"load_avg\":[" +
                       fmt(load0[0], "%.2f") + "," + fmt(load1[0], "%.2f") + "],\"results\":[";
    for (size_t i = 0; i < rows.size(); ++i) {
        const row& r = rows[i];
        char buf[1536];
        std::snprintf(
            buf, sizeof buf,
            "%s{\"tokens\":%d,\"codec\":\"%s\",\"history\":\"%s\",\"prefill_s\":%s,\"prefill_with_store_s\":%s,"
            "\"one_prefill_wrote_both_codecs\":%s,\"resume_s\":%.4f,\"store_s\":%.4f,\"read_s\":%.4f,\"decode_s\":%.4f,"
            "\"match_s\":%.4f,\"forward_s\":%.4f,\"seq_read_s\":%.4f,\"store_over_seq_read\":%.3f,"
            "\"store_cpu_s\":%.4f,\"seq_read_cpu_s\":%.4f,\"store_over_seq_read_cpu\":%.3f,\"flush_s\":%s,"
            "\"prefill_cpu_s\":%s,\"prefill_with_store_cpu_s\":%s,\"persist_s\":%s,"
            "\"speedup\":%s,\"bytes_per_token\":%.1f,\"loaded_bytes\":%llu,\"file_bytes\":%llu,\"n_reused\":%d}",
            i ? "," : "", r.tokens, memory::kv_codec_name(r.codec), r.synthetic ? "synthetic" : "prefill",
            jnum(r.prefill_s).c_str(), jnum(r.prefill_store_s).c_str(), r.store_tee ? "true" : "false", r.ttft_s,
            r.store_s, r.read_s, r.decode_s, r.load_s, r.rest_s, r.seqread_s, r.ratio, r.store_cpu_s, r.seqread_cpu_s,
            r.cpu_ratio, jnum(r.flush_s).c_str(), jnum(r.prefill_cpu_s).c_str(), jnum(r.prefill_store_cpu_s).c_str(),
            jnum(r.persist_s).c_str(), r.synthetic ? "null" : fmt(r.prefill_s / r.ttft_s, "%.1f").c_str(),
            r.bytes_per_token, (unsigned long long)r.loaded_bytes, (unsigned long long)r.file_bytes, r.n_reused);
        json += buf;
    }
    json += "]}";
    std::printf("%s\n", json.c_str());
    return 0;
}

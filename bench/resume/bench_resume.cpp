// bench_resume: for histories of several lengths, time to the first new token
// when resuming from the store (KV blocks read, checked and decoded) vs a full
// prefill of the same history, for the fp16 and int8 codecs; bytes per token
// on disk; and the time to read the same bytes sequentially from the files.
// The model is a random-weight GGUF generated once into /tmp (shape set by
// flags). Prints a table, then one JSON line.
//
// usage: bench_resume [--layers 8] [--dim 1024] [--heads 16] [--kv-heads 4] [--ffn 4096]
//                     [--lengths 512,2048] [--threads 2] [--model-dir /tmp]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
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

struct run_timing {
    double ttft_s = 0;
    int32_t n_reused = 0;
};

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

// Reads every blob and sst file under dir sequentially; returns (seconds, bytes).
std::pair<double, uint64_t> read_files(const std::string& dir) {
    std::vector<char> buf(8 << 20);
    uint64_t n = 0;
    const auto t0 = clk::now();
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const auto name = e.path().filename().string();
        if (!name.ends_with(".blob") && !name.ends_with(".sst")) continue;
        std::ifstream f(e.path(), std::ios::binary);
        while (f.read(buf.data(), std::streamsize(buf.size())) || f.gcount() > 0) n += uint64_t(f.gcount());
    }
    return {secs(t0, clk::now()), n};
}

}  // namespace

int main(int argc, char** argv) {
    test::tiny_model_options mo;
    mo.n_layer = 8;
    mo.n_embd = 1024;
    mo.n_head = 16;
    mo.n_head_kv = 4;
    mo.n_ff = 4096;
    mo.weight_type = kernels::ggml_type::q8_0;
    std::vector<int> lengths = {512, 2048};
    int threads = 2;
    std::string model_dir = "/tmp";
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
            std::printf(
                "usage: bench_resume [--lengths 512,2048] [--layers 8] [--dim 1024] [--heads 16] [--kv-heads 4]\n"
                "                    [--ffn 4096] [--threads 2] [--model-dir /tmp]\n\n"
                "Generates a random Q8_0 model of that shape once (in --model-dir), then for each history\n"
                "length times a full prefill against resuming from the RocksDB store (fp16 and int8 blocks),\n"
                "and a sequential read of the same bytes. Prints a table, then one JSON line.\n");
            return 0;
        }
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--layers") mo.n_layer = std::atoi(v.c_str());
        else if (k == "--dim") mo.n_embd = std::atoi(v.c_str());
        else if (k == "--heads") mo.n_head = std::atoi(v.c_str());
        else if (k == "--kv-heads") mo.n_head_kv = std::atoi(v.c_str());
        else if (k == "--ffn") mo.n_ff = std::atoi(v.c_str());
        else if (k == "--threads") threads = std::atoi(v.c_str());
        else if (k == "--model-dir") model_dir = v;
        else if (k == "--lengths") {
            lengths.clear();
            for (size_t p = 0; p < v.size();) {
                size_t q = v.find(',', p);
                if (q == std::string::npos) q = v.size();
                lengths.push_back(std::atoi(v.substr(p, q - p).c_str()));
                p = q + 1;
            }
        } else {
            std::fprintf(stderr, "bench_resume: unknown flag %s\n", k.c_str());
            return 2;
        }
    }
    int max_len = 0;
    for (int l : lengths) max_len = std::max(max_len, l);
    mo.n_ctx = std::max(4096, max_len + 64);
    char name[256];
    std::snprintf(name, sizeof name, "%s/mnemos-bench-resume-l%d-d%d-h%d-kv%d-f%d-q8_0.gguf", model_dir.c_str(),
                  mo.n_layer, mo.n_embd, mo.n_head, mo.n_head_kv, mo.n_ff);
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
    engine::engine_options eo;
    eo.n_threads = threads;
    eo.n_ctx = max_len + 64;
    eo.kv_bytes = size_t(max_len + 64) * size_t(m->hp().n_layer) * 2 * size_t(kv_dim) * 2 * 2;
    auto make_engine = [&] {
        auto e = engine::engine::create(m, eo);
        if (!e) {
            std::fprintf(stderr, "bench_resume: %s\n", e.error().to_string().c_str());
            std::exit(1);
        }
        return std::move(e.value());
    };
    std::printf("model: %d layers, dim %d, %d heads, %d kv heads, ffn %d, q8_0, %.0f MB weights; %d threads\n",
                mo.n_layer, mo.n_embd, mo.n_head, mo.n_head_kv, mo.n_ff, double(m->n_weight_bytes()) / 1e6, threads);
    std::printf("%7s %6s %10s %10s %10s %9s %10s %10s %9s %8s\n", "tokens", "codec", "prefill_s", "prefill+st",
                "resume_s", "speedup", "bytes/tok", "seqread_s", "MB", "reused");
    std::string json = "{\"bench\":\"resume\",\"results\":[";
    bool first_json = true;
    const std::string root = (std::filesystem::temp_directory_path() / "mnemos-bench-resume-db").string();
    for (int len : lengths) {
        std::mt19937 rng{uint32_t(len)};
        std::vector<engine::token_id> prompt(size_t(len) + 1);
        for (auto& t : prompt) t = engine::token_id(3 + rng() % uint32_t(m->hp().n_vocab - 3));
        double prefill_s;
        {
            auto eng = make_engine();
            prefill_s = run_once(*eng, prompt).ttft_s;
        }
        for (memory::kv_codec codec : {memory::kv_codec::fp16, memory::kv_codec::int8}) {
            const std::string db = root + "-" + std::to_string(len) + "-" + memory::kv_codec_name(codec);
            std::filesystem::remove_all(db);
            memory::store_options so;
            so.path = db;
            so.codec = codec;
            so.int8_group = kv_dim;
            double prefill_store_s;
            {
                auto st = memory::store::open(so);
                if (!st) {
                    std::fprintf(stderr, "bench_resume: %s\n", st.error().to_string().c_str());
                    return 1;
                }
                auto eng = make_engine();
                eng->kv().set_store(&(*st)->blocks());
                prefill_store_s = run_once(*eng, prompt).ttft_s;
                (*st)->flush();
            }
            auto st = memory::store::open(so);
            auto eng = make_engine();
            eng->kv().set_store(&(*st)->blocks());
            const auto r = run_once(*eng, prompt);
            const auto s = (*st)->stats();
            eng.reset();
            st.value().reset();
            const auto [read_s, read_bytes] = read_files(db);
            std::printf("%7d %6s %10.3f %10.3f %10.3f %8.1fx %10.0f %10.3f %9.1f %8d\n", len,
                        memory::kv_codec_name(codec), prefill_s, prefill_store_s, r.ttft_s, prefill_s / r.ttft_s,
                        s.bytes_per_token, read_s, double(read_bytes) / 1e6, r.n_reused);
            char buf[512];
            std::snprintf(buf, sizeof buf,
                          "%s{\"tokens\":%d,\"codec\":\"%s\",\"prefill_s\":%.4f,\"prefill_with_store_s\":%.4f,"
                          "\"resume_s\":%.4f,\"speedup\":%.2f,\"bytes_per_token\":%.1f,\"seq_read_s\":%.4f,"
                          "\"read_bytes\":%llu,\"n_reused\":%d}",
                          first_json ? "" : ",", len, memory::kv_codec_name(codec), prefill_s, prefill_store_s,
                          r.ttft_s, prefill_s / r.ttft_s, s.bytes_per_token, read_s, (unsigned long long)read_bytes,
                          r.n_reused);
            json += buf;
            first_json = false;
            std::filesystem::remove_all(db);
        }
    }
    json += "]}";
    std::printf("%s\n", json.c_str());
    return 0;
}

// Not run by default: `test_memory "[.bench_flush]"` measures what the periodic KV flush
// (store_options::kv_flush_interval_ms) costs the writer. A prefill-like stream of blocks (192 KiB each: a
// 0.5B-class model's 24 layers x K/V x 16 tokens x kv_dim 128 in f16) is persisted at a steady rate; printed per
// setting: the time the caller spent in persist() (the engine thread's cost), the process CPU time, the wall
// time to write and flush everything, and the files made.
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "memory/store.h"
#include "tests/memory/util.h"

using namespace mnemos;
using namespace mnemos::memory;

namespace {

double cpu_s() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace

TEST_CASE("periodic KV flush: cost to the writer", "[.bench_flush]") {
    const size_t page_elems = 24 * 2 * 16 * 128;  // 192 KiB
    const uint32_t n_blocks = 1200;               // 225 MiB: several 64 MiB memtables
    const int rate = 200;                         // blocks per second (3,200 tokens/s of prefill)
    std::vector<std::vector<uint8_t>> pages;
    for (uint32_t i = 0; i < 16; ++i) pages.push_back(test::random_page(page_elems, i));
    std::printf("%-14s %12s %10s %10s %8s %8s\n", "flush", "persist ms", "cpu s", "wall s", "flushes", "blobs");
    for (int64_t interval : {int64_t(0), int64_t(5000), int64_t(1000)}) {
        test::temp_dir dir("flush-bench");
        store_options o;
        o.path = dir.sub("db");
        o.kv_flush_interval_ms = interval;
        auto st = store::open(o);
        REQUIRE(st.ok());
        const double c0 = cpu_s();
        const auto t0 = std::chrono::steady_clock::now();
        for (uint32_t i = 0; i < n_blocks; ++i) {
            const auto due = t0 + std::chrono::microseconds(int64_t(i) * 1000000 / rate);
            std::this_thread::sleep_until(due);
            (*st)->blocks().persist(test::hash_of(i), test::hash_of(i + 1000000), test::tokens_of(i),
                                    pages[i % pages.size()]);
        }
        (*st)->flush();
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double cpu = cpu_s() - c0;
        const auto c = (*st)->counters();
        size_t n_blob = 0;
        for (const auto& e : std::filesystem::directory_iterator(o.path)) n_blob += e.path().extension() == ".blob";
        std::printf("%-14s %12.1f %10.2f %10.2f %8llu %8zu\n",
                    interval ? (std::to_string(interval) + " ms").c_str() : "off (memtable)",
                    double(c.persist_ns) / 1e6, cpu, wall, (unsigned long long)(*st)->n_periodic_flushes(), n_blob);
    }
}

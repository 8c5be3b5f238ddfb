// Crash safety with real processes: a child (this test binary, re-executed
// with a hidden test case) appends events and writes KV blocks in a loop and
// reports each acknowledged event's seq through a pipe; the parent kills it
// with SIGKILL at random moments. After each kill the store must open
// cleanly, hold every acknowledged event in order, and serve no block whose
// content is wrong (a torn or lost block is a miss, never garbage).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "memory/store.h"
#include "tests/memory/util.h"

using namespace mnemos;
using namespace mnemos::memory;

namespace {

constexpr size_t crash_page_elems = 8192;  // 16 KiB blocks: blob files

std::vector<engine::token_id> crash_tokens(uint32_t i) {
    std::vector<engine::token_id> t(16);
    for (int k = 0; k < 16; ++k) t[k] = engine::token_id(i + k);
    return t;
}

}  // namespace

// The child. Does nothing unless started by the crash test below.
TEST_CASE("crash child: append events and blocks until killed", "[.crash_child]") {
    const char* db = std::getenv("MNEMOS_CRASH_DB");
    const char* fd_s = std::getenv("MNEMOS_CRASH_FD");
    if (!db || !fd_s) return;
    const int fd = std::atoi(fd_s);
    store_options o;
    o.path = db;
    auto st = store::open(o);
    if (!st) std::_Exit(3);
    for (;;) {
        const auto next = (*st)->read_events("crash-session", 0)->size();
        const std::string ev =
            nlohmann::json{{"role", "user"}, {"i", next}, {"pad", std::string(next % 300, 'x')}}.dump();
        auto seq = (*st)->append_event("crash-session", ev);
        if (!seq) std::_Exit(4);
        const uint64_t s = *seq;
        if (::write(fd, &s, sizeof s) != sizeof s) std::_Exit(5);  // acknowledged
        (*st)->blocks().persist(test::hash_of(uint32_t(s)), test::hash_of(uint32_t(s) + 1000000),
                                crash_tokens(uint32_t(s)), test::random_page(crash_page_elems, uint32_t(s)));
        if (s % 7 == 0) (*st)->flush();
    }
}

TEST_CASE("crash test: SIGKILL at random moments loses no acknowledged event, serves no bad block", "[memory][crash]") {
    test::temp_dir dir("crash");
    const std::string db = dir.sub("db");
    std::mt19937 rng(12345);
    uint64_t n_acked_total = 0;  // every seq < this was acknowledged by some child
    uint64_t n_blocks_served = 0;
    const int n_kills = 15;
    for (int k = 0; k < n_kills; ++k) {
        const auto [pid, read_fd] =
            test::spawn_test_child("[.crash_child]", "MNEMOS_CRASH_FD", {{"MNEMOS_CRASH_DB", db}}, true);
        std::this_thread::sleep_for(std::chrono::milliseconds(60 + rng() % 250));
        REQUIRE(::kill(pid, SIGKILL) == 0);
        int wstatus = 0;
        REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
        CHECK(WIFSIGNALED(wstatus));  // it was still running: killed, not failed
        // Everything the child acknowledged before it died is in the pipe.
        uint64_t s = 0;
        size_t got = 0;
        std::vector<uint64_t> acked;
        char buf[8];
        for (;;) {
            const ssize_t r = ::read(read_fd, buf + got, sizeof buf - got);
            if (r <= 0) break;
            got += size_t(r);
            if (got == sizeof buf) {
                std::memcpy(&s, buf, 8);
                acked.push_back(s);
                got = 0;
            }
        }
        ::close(read_fd);
        for (size_t i = 0; i < acked.size(); ++i) REQUIRE(acked[i] == n_acked_total + i);  // consecutive
        n_acked_total += acked.size();

        // The store opens cleanly and holds every acknowledged event, in order.
        store_options o;
        o.path = db;
        auto st = store::open(o);
        INFO("kill " << k << ": " << (st.ok() ? std::string("ok") : st.error().to_string()));
        REQUIRE(st.ok());
        auto evs = (*st)->read_events("crash-session");
        REQUIRE(evs.ok());
        REQUIRE(evs->size() >= n_acked_total);
        for (size_t i = 0; i < evs->size(); ++i) {
            REQUIRE((*evs)[i].seq == i);
            auto j = nlohmann::json::parse((*evs)[i].json, nullptr, false);
            REQUIRE_FALSE(j.is_discarded());
            REQUIRE(j["i"] == i);
        }
        n_acked_total = evs->size();  // unacknowledged but durable events count as written from here on
        // Every block that loads has exactly the content it was written with.
        std::vector<uint8_t> out(crash_page_elems * 2);
        for (uint32_t i = 0; i < uint32_t(evs->size()); ++i) {
            if (!(*st)->blocks().load(test::hash_of(i), out)) continue;
            ++n_blocks_served;
            REQUIRE(out == test::random_page(crash_page_elems, i));
        }
        CHECK((*st)->stats().n_load_corrupt == 0);
    }
    INFO("acknowledged events " << n_acked_total << ", blocks served " << n_blocks_served);
    CHECK(n_acked_total > uint64_t(n_kills));  // the children did real work
    CHECK(n_blocks_served > 0);
}

// KV durability: blocks are written without the WAL, so before the periodic flush (kv_flush_interval_ms) a
// SIGKILL lost every block since the kv memtable last filled. The child writes blocks, reports through the pipe
// that the write-behind queue is drained, then waits to be killed.
TEST_CASE("kv durability child: write blocks, then wait to be killed", "[.kv_durable_child]") {
    const char* db = std::getenv("MNEMOS_CRASH_DB");
    const char* fd_s = std::getenv("MNEMOS_CRASH_FD");
    const char* interval = std::getenv("MNEMOS_KV_FLUSH_MS");
    if (!db || !fd_s || !interval) return;
    store_options o;
    o.path = db;
    o.kv_flush_interval_ms = std::atoll(interval);
    auto st = store::open(o);
    if (!st) std::_Exit(3);
    for (uint32_t i = 0; i < 40; ++i)
        (*st)->blocks().persist(test::hash_of(i), test::hash_of(i + 1000000), crash_tokens(i),
                                test::random_page(crash_page_elems, i));
    (*st)->blocks().wait_persisted();  // in the memtable
    const char c = 1;
    if (::write(std::atoi(fd_s), &c, 1) != 1) std::_Exit(5);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

namespace {

// Runs the child above with the given flush interval, waits wait_ms after it reported its blocks written, kills
// it with SIGKILL, and returns how many of its 40 blocks the store then holds (each checked byte for byte).
int blocks_after_kill(const std::string& db, int64_t interval_ms, int wait_ms) {
    const auto [pid, read_fd] =
        test::spawn_test_child("[.kv_durable_child]", "MNEMOS_CRASH_FD",
                               {{"MNEMOS_CRASH_DB", db}, {"MNEMOS_KV_FLUSH_MS", std::to_string(interval_ms)}});
    char c = 0;
    const ssize_t r = ::read(read_fd, &c, 1);
    ::close(read_fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    ::kill(pid, SIGKILL);
    int wstatus = 0;
    ::waitpid(pid, &wstatus, 0);
    REQUIRE(r == 1);  // the child wrote its blocks
    REQUIRE(WIFSIGNALED(wstatus));
    store_options o;
    o.path = db;
    auto st = store::open(o);
    INFO((st.ok() ? std::string() : st.error().to_string()));
    REQUIRE(st.ok());
    int n = 0;
    std::vector<uint8_t> out(crash_page_elems * 2);
    for (uint32_t i = 0; i < 40; ++i) {
        if (!(*st)->blocks().load(test::hash_of(i), out)) continue;
        REQUIRE(out == test::random_page(crash_page_elems, i));
        ++n;
    }
    return n;
}

}  // namespace

TEST_CASE("kv durability: blocks survive a SIGKILL once the flush interval has passed", "[memory][crash]") {
    test::temp_dir dir("kv-durable");
    // With a 300 ms interval, 1.5 s after the blocks reached the memtable they are all on disk.
    CHECK(blocks_after_kill(dir.sub("periodic"), 300, 1500) == 40);
    // Without the periodic flush the same kill loses them all (they were only in the memtable): the bound is
    // what the flush adds.
    CHECK(blocks_after_kill(dir.sub("off"), 0, 1500) == 0);
}

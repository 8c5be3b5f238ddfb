// The corruption matrix: a real store (sessions with events in table files
// and in the WAL, session records, KV blocks in blob files, page summaries,
// references) is built and closed, then for each kind of file and each kind
// of damage a fresh copy is damaged and opened. Every case must either be
// refused at open (errc::corrupt or io_error, with a message), or open and
// report every damaged key (reading it gives errc::corrupt; a KV block fails
// its check and is recomputed) while every other key reads back exactly as
// written. Zero crashes, zero silent losses: nothing reads back different,
// shorter or missing. `mnemos store check` (check_store) must find the damage
// in every case where data was damaged.
//
// The store, as built (see build_store below):
//   phase 1: 3 sessions x 24 events, their session records, 24 KV blocks of
//            16 KiB (fp16: blob files), 24 page summaries, references; then
//            flush() and close: all of it in table (.sst) and blob files.
//   phase 2: reopened, 6 more events per session (and their session records),
//            closed without a flush: these live only in the WAL (.log), which
//            a clean close keeps when every write went through it.
// The damages, each on a fresh copy of that store:
//   flip      16 bytes in the middle of the file XORed with 0xff
//   zero      64 bytes from the middle of the file set to 0 (to its end when shorter)
//   truncate  the file cut to half its length
// The files: every table file (.sst: one per family), every blob file, the
// WAL, the MANIFEST, CURRENT, OPTIONS.
// References have no per-key reader: the test runs garbage collection, which
// must delete no block (all are referenced), damaged references or not.
// A damaged OPTIONS file holds no data (RocksDB writes a new one at open), so
// there the store opens with every key intact and check is not required to
// find anything.
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "memory/codec.h"
#include "memory/store.h"
#include "memory/store_check.h"
#include "tests/memory/util.h"

using namespace mnemos;
using namespace mnemos::memory;
namespace fs = std::filesystem;

namespace {

constexpr size_t k_page_elems = 8192;  // 16 KiB blocks: blob files
constexpr uint32_t k_blocks = 24;
const std::vector<std::string> k_sessions = {"alice", "bob", "carol"};

struct expected_store {
    std::map<std::string, std::vector<std::string>> events;  // per session, by seq
    std::map<std::string, std::string> character;
    std::vector<uint32_t> blocks;  // test::hash_of(i) -> random_page(k_page_elems, i)
};

std::vector<uint8_t> summary_bytes(uint32_t i) {
    std::vector<uint8_t> b(256);
    for (size_t k = 0; k < b.size(); ++k) b[k] = uint8_t(i * 31 + k * 7);
    return b;
}

std::string event_json(const std::string& id, size_t seq) {
    return nlohmann::json{{"role", seq % 2 ? "assistant" : "user"},
                          {"session", id},
                          {"i", seq},
                          {"text", std::string(40 + seq % 50, char('a' + seq % 26))}}
        .dump();
}

expected_store build_store(const std::string& path) {
    expected_store ex;
    {
        auto st = test::open_store(path);
        for (const auto& id : k_sessions) {
            session_meta m;
            m.id = id;
            m.character = "character of " + id;
            REQUIRE(st->put_session(m).ok());
            ex.character[id] = m.character;
            for (size_t i = 0; i < 24; ++i) {
                const std::string e = event_json(id, i);
                REQUIRE(st->append_event(id, e).ok());
                ex.events[id].push_back(e);
            }
        }
        std::vector<engine::block_hash> hashes;
        for (uint32_t i = 0; i < k_blocks; ++i) {
            const auto h = test::hash_of(i);
            st->blocks().persist(h, test::hash_of(i + 1000), test::tokens_of(i), test::random_page(k_page_elems, i));
            const auto sb = summary_bytes(i);
            st->blocks().persist_summary(h, sb);
            hashes.push_back(h);
            ex.blocks.push_back(i);
        }
        REQUIRE(st->add_block_refs("alice", hashes).ok());
        st->flush();
    }
    {
        auto st = test::open_store(path);
        for (const auto& id : k_sessions)
            for (size_t i = 24; i < 30; ++i) {
                const std::string e = event_json(id, i);
                REQUIRE(st->append_event(id, e).ok());
                ex.events[id].push_back(e);
            }
    }
    return ex;
}

enum class damage { flip, zero, truncate };
const char* damage_name(damage d) { return d == damage::flip ? "flip" : d == damage::zero ? "zero" : "truncate"; }

void damage_file(const std::string& file, damage d) {
    std::string bytes;
    {
        std::ifstream in(file, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    const size_t n = bytes.size(), mid = n / 2;
    REQUIRE(n > 0);
    if (d == damage::flip) {
        for (size_t i = mid; i < std::min(n, mid + 16); ++i) bytes[i] = char(bytes[i] ^ 0xff);
    } else if (d == damage::zero) {
        for (size_t i = mid; i < std::min(n, mid + 64); ++i) bytes[i] = 0;
    } else {
        bytes.resize(mid);
    }
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    REQUIRE(out.good());
}

struct outcome {
    bool refused = false;
    size_t n_reported = 0;  // keys reported damaged
    size_t n_intact = 0;    // keys read back exactly
};

// Opens the damaged copy and reads every key. Fails the test on a crash-free but wrong answer: a key that reads
// back different, shorter or missing.
outcome open_and_read(const std::string& path, const expected_store& ex) {
    outcome oc;
    store_options o;
    o.path = path;
    o.create_if_missing = false;
    auto opened = store::open(o);
    if (!opened) {
        INFO(opened.error().to_string());
        CHECK((opened.error().code() == errc::corrupt || opened.error().code() == errc::io_error));
        CHECK_FALSE(opened.error().message().empty());
        oc.refused = true;
        return oc;
    }
    auto& st = **opened;
    auto reported = [&](const status& s, const std::string& what) {
        INFO(what << ": " << s.to_string());
        CHECK(s.code() == errc::corrupt);  // never not_found: that would be a silent loss
        ++oc.n_reported;
    };
    for (const auto& id : k_sessions) {
        const auto& want = ex.events.at(id);
        auto evs = st.read_events(id);
        if (!evs) {
            reported(evs.error(), "events of " + id);
        } else {
            INFO("session " << id);
            REQUIRE(evs->size() == want.size());
            for (size_t i = 0; i < want.size(); ++i) {
                REQUIRE((*evs)[i].seq == i);
                REQUIRE((*evs)[i].json == want[i]);
            }
            ++oc.n_intact;
        }
        auto m = st.get_session(id);
        if (!m) {
            reported(m.error(), "session record " + id);
        } else {
            CHECK(m->character == ex.character.at(id));
            CHECK(m->n_events == want.size());
            ++oc.n_intact;
        }
    }
    auto list = st.list_sessions();
    if (!list) {
        reported(list.error(), "list_sessions");
    } else {
        REQUIRE(list->size() == k_sessions.size());
    }
    std::vector<uint8_t> out(k_page_elems * 2);
    for (uint32_t i : ex.blocks) {
        const auto h = test::hash_of(i);
        const auto want = test::random_page(k_page_elems, i);
        auto raw = st.raw_block(h);
        if (!raw) {
            reported(raw.error(), "kv block " + std::to_string(i));
        } else if (auto s = decode_block(h, *raw, out); !s.ok()) {
            reported(s, "kv block " + std::to_string(i) + " (our checksum)");
        } else {
            REQUIRE(out == want);
            ++oc.n_intact;
        }
        // The engine's path: a block that fails is a miss (recomputed), never wrong bytes.
        std::fill(out.begin(), out.end(), uint8_t(0));
        if (st.blocks().load(h, out)) REQUIRE(out == want);
        auto sum = st.raw_summary(h);
        if (!sum) {
            reported(sum.error(), "summary " + std::to_string(i));
        } else {
            std::vector<uint8_t> sb(256);
            if (!decode_summary(h, *sum, sb)) {
                reported(make_error(errc::corrupt, "summary fails its check"), "summary " + std::to_string(i));
            } else {
                REQUIRE(sb == summary_bytes(i));
                ++oc.n_intact;
            }
        }
    }
    // References (family refs) have no per-key reader: garbage collection is their reader. Every block is
    // referenced by alice, so it must delete none, also when the references cannot be read (it keeps a block
    // it cannot prove unreferenced) or the scan stops at a damaged block (an error, nothing deleted).
    auto gc = st.collect_garbage(0);
    if (gc) CHECK(gc->n_blocks_deleted == 0);
    return oc;
}

}  // namespace

TEST_CASE("corruption matrix: every damaged store is refused or reports exactly the damaged keys",
          "[memory][corrupt]") {
    test::temp_dir dir("corrupt");
    const std::string golden = dir.sub("golden");
    const expected_store ex = build_store(golden);
    // The undamaged store: opens, every key intact, check finds nothing.
    {
        const std::string copy = dir.sub("clean");
        fs::copy(golden, copy, fs::copy_options::recursive);
        auto chk = check_store(copy);
        REQUIRE(chk.ok());
        INFO(format_check_report(*chk));
        CHECK(chk->ok());
        const outcome oc = open_and_read(copy, ex);
        CHECK_FALSE(oc.refused);
        CHECK(oc.n_reported == 0);
        CHECK(oc.n_intact == k_sessions.size() * 2 + 2 * ex.blocks.size());
    }

    std::vector<std::string> targets;  // file names in the golden store
    size_t n_sst = 0, n_blob = 0, n_log = 0;
    for (const auto& e : fs::directory_iterator(golden)) {
        const std::string n = e.path().filename().string();
        const bool is_log = n.ends_with(".log") && fs::file_size(e.path()) > 0;
        if (n.ends_with(".sst") || n.ends_with(".blob") || is_log || n.starts_with("MANIFEST-") || n == "CURRENT" ||
            n.starts_with("OPTIONS-"))
            targets.push_back(n);
        n_sst += n.ends_with(".sst");
        n_blob += n.ends_with(".blob");
        n_log += is_log;
    }
    std::sort(targets.begin(), targets.end());
    if (std::getenv("MNEMOS_TEST_VERBOSE")) {
        const std::string keep = "/tmp/mnemos-corruption-golden";
        fs::remove_all(keep);
        fs::copy(golden, keep, fs::copy_options::recursive);
        std::printf("golden store kept in %s\n", keep.c_str());
    }
    INFO("files: " << n_sst << " sst, " << n_blob << " blob, " << n_log << " non-empty WAL");
    REQUIRE(n_sst >= 4);   // events, sessions, kv, refs, summaries families flushed
    REQUIRE(n_blob >= 1);  // the KV blocks
    REQUIRE(n_log == 1);   // phase 2's events

    size_t n_cases = 0, n_refused = 0, n_reported_cases = 0, n_clean = 0, case_no = 0;
    for (const auto& file : targets) {
        for (damage d : {damage::flip, damage::zero, damage::truncate}) {
            const std::string copy = dir.sub("case" + std::to_string(case_no++));
            fs::copy(golden, copy, fs::copy_options::recursive);
            damage_file(copy + "/" + file, d);
            INFO("case: " << damage_name(d) << " " << file);
            ++n_cases;
            // store check runs first (store::open may write to the copy: a new WAL, OPTIONS, MANIFEST).
            auto chk = check_store(copy);
            REQUIRE(chk.ok());
            const outcome oc = open_and_read(copy, ex);
            const bool options_file = file.starts_with("OPTIONS-");
            if (oc.refused) {
                ++n_refused;
            } else if (oc.n_reported > 0) {
                ++n_reported_cases;
            } else {
                ++n_clean;
                // Opened with nothing reported: every key read back exactly, checked above. Only a damaged
                // OPTIONS file may do so: everything else holds data (or, for a table file, a block that the
                // keys read above did not need is still found by check).
                if (!options_file) {
                    INFO(format_check_report(*chk));
                    CHECK_FALSE(chk->ok());
                }
            }
            if (!options_file) {
                INFO(format_check_report(*chk));
                CHECK_FALSE(chk->ok());
            }
            if (std::getenv("MNEMOS_TEST_VERBOSE"))
                std::printf("%-9s %-22s %s, check: %s\n", damage_name(d), file.c_str(),
                            oc.refused      ? "refused"
                            : oc.n_reported ? ("opened, " + std::to_string(oc.n_reported) + " keys reported").c_str()
                                            : "opened intact",
                            chk->ok() ? "ok" : chk->problems.front().c_str());
            std::error_code ec;
            fs::remove_all(copy, ec);
        }
    }
    std::printf(
        "corruption matrix: %zu cases (%zu files x 3 damages): %zu refused at open, %zu opened reporting the "
        "damaged keys, %zu opened intact\n",
        n_cases, targets.size(), n_refused, n_reported_cases, n_clean);
    CHECK(n_cases == targets.size() * 3);
}

TEST_CASE("store repair: recovers into a copy, never touches the original, reports the lost events",
          "[memory][corrupt]") {
    test::temp_dir dir("repair");
    const std::string orig = dir.sub("orig");
    const expected_store ex = build_store(orig);
    // Damage the events table: the middle of its data (the block holding the middle sessions' events).
    std::string events_sst;
    for (const auto& e : fs::directory_iterator(orig)) {
        const std::string n = e.path().filename().string();
        if (!n.ends_with(".sst")) continue;
        std::ifstream in(e.path(), std::ios::binary);
        const std::string b((std::istreambuf_iterator<char>(in)), {});
        if (b.find("\"session\":\"bob\"") != std::string::npos || b.find("bob") != std::string::npos) {
            if (b.find("\"role\"") != std::string::npos) events_sst = e.path().string();
        }
    }
    REQUIRE_FALSE(events_sst.empty());
    damage_file(events_sst, damage::flip);
    auto snapshot = [&] {
        std::map<std::string, std::string> files;
        for (const auto& e : fs::directory_iterator(orig)) {
            std::ifstream in(e.path(), std::ios::binary);
            files[e.path().filename().string()] = std::string((std::istreambuf_iterator<char>(in)), {});
        }
        return files;
    };
    const auto before = snapshot();
    auto chk = check_store(orig);
    REQUIRE(chk.ok());
    CHECK_FALSE(chk->ok());
    const std::string out = dir.sub("out");
    auto r = repair_store(orig, out);
    INFO((r.ok() ? format_repair_report(*r) : r.error().to_string()));
    REQUIRE(r.ok());
    CHECK(snapshot() == before);  // the original is untouched (check and repair write nothing there)
    // The copy opens with the store's strict options, verifies clean apart from the events that are gone,
    // and every event it serves is the one written.
    auto st = test::open_store(out);
    size_t n_kept = 0;
    for (const auto& id : k_sessions) {
        auto evs = st->read_events(id);
        REQUIRE(evs.ok());
        for (const auto& e : *evs) {
            REQUIRE(e.seq < ex.events.at(id).size());
            CHECK(e.json == ex.events.at(id)[e.seq]);
            ++n_kept;
        }
    }
    const size_t n_written = k_sessions.size() * 30;
    CHECK(n_kept < n_written);                 // the damaged block's events are gone ...
    CHECK_FALSE(r->damaged_sessions.empty());  // ... and the report names their sessions
    CHECK(n_kept >= n_written / 2);            // one 4 KiB block of events lost, the rest salvaged
    // KV blocks (in blob files, which RepairDB does not carry over) are rebuilt from the original.
    std::vector<uint8_t> page(k_page_elems * 2);
    for (uint32_t i : ex.blocks) {
        REQUIRE(st->blocks().load(test::hash_of(i), page));
        CHECK(page == test::random_page(k_page_elems, i));
    }
    // A non-empty output directory is refused.
    auto again = repair_store(orig, out);
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().code() == errc::already_exists);
}

// `mnemos sessions ls|show|rm` and `mnemos store stats|gc|check|repair`:
// inspect and maintain the RocksDB store (memory/store.h, memory/store_check.h).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>

#include "agent/cli/args.h"
#include "agent/cli/commands.h"
#include "agent/core/runtime.h"
#include "memory/store.h"
#include "memory/store_check.h"

namespace mnemos::cli {

namespace {

// --db PATH, else $MNEMOS_DB, else ./mnemos-db. Removes the flag from the arguments it returns.
std::string db_path(int& argc, char** argv) {
    std::string path;
    int w = 1;
    for (int i = 1; i < argc; ++i) {
        if ((std::strcmp(argv[i], "--db") == 0 || std::strcmp(argv[i], "--store") == 0) && i + 1 < argc) {
            path = argv[++i];
        } else {
            argv[w++] = argv[i];
        }
    }
    argc = w;
    if (path.empty()) {
        const char* env = std::getenv("MNEMOS_DB");
        path = env ? env : "mnemos-db";
    }
    return path;
}

std::unique_ptr<memory::store> open_existing(const std::string& path) {
    memory::store_options o;
    o.path = path;
    o.create_if_missing = false;
    auto st = memory::store::open(o);
    if (!st) {
        if (st.error().code() == errc::not_found || st.error().code() == errc::busy)
            std::fprintf(stderr, "mnemos: %s%s\n", st.error().message().c_str(),
                         st.error().code() == errc::not_found ? " (give --db PATH or set MNEMOS_DB)" : "");
        else
            std::fprintf(stderr, "mnemos: cannot open store '%s': %s\n", path.c_str(), st.error().to_string().c_str());
        return nullptr;
    }
    return std::move(st.value());
}

std::string fmt_time(int64_t ms) {
    if (ms <= 0) return "-";
    const time_t t = time_t(ms / 1000);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::gmtime(&t));
    return buf;
}

void sessions_usage(FILE* out) {
    std::fprintf(out,
                 "usage: mnemos sessions ls [--db PATH]\n"
                 "       mnemos sessions show ID [--events N] [--db PATH]\n"
                 "       mnemos sessions rm ID [--db PATH]\n"
                 "The store is --db PATH (or --store PATH, as for serve), else $MNEMOS_DB, else ./mnemos-db.\n");
}

}  // namespace

int cmd_sessions(int argc, char** argv) {
    const std::string path = db_path(argc, argv);
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0) {
        sessions_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const std::string_view sub = argv[1];
    if (sub != "ls" && sub != "show" && sub != "rm") {
        sessions_usage(stderr);
        return 2;
    }
    if ((sub == "show" || sub == "rm") && argc < 3) {
        sessions_usage(stderr);
        return 2;
    }
    auto st = open_existing(path);
    if (!st) return 1;
    if (sub == "ls") {
        auto list = st->list_sessions();
        if (!list) {
            std::fprintf(stderr, "mnemos: %s\n", list.error().to_string().c_str());
            return 1;
        }
        std::printf("%-32s %-20s %8s %10s  %s\n", "id", "character", "events", "tokens", "updated (UTC)");
        for (const auto& m : *list) {
            // The server keeps its shared prefixes (PUT /v1/prefixes) in one reserved log.
            const char* chr = m.id == agent::k_prefix_log_id ? "(shared prefixes)"
                              : m.character.empty()          ? "-"
                                                             : m.character.c_str();
            std::printf("%-32s %-20s %8llu %10lld  %s\n", m.id.c_str(), chr, (unsigned long long)m.n_events,
                        (long long)m.n_tokens, fmt_time(m.updated_ms).c_str());
        }
        return 0;
    }
    const std::string id = argv[2];
    if (sub == "rm") {
        const status s = st->delete_session(id);
        if (!s.ok()) {
            std::fprintf(stderr, "mnemos: %s\n", s.to_string().c_str());
            return 1;
        }
        std::printf("deleted session %s\n", id.c_str());
        return 0;
    }
    uint64_t n_show = 20;
    for (int i = 3; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--events") == 0) n_show = std::strtoull(argv[i + 1], nullptr, 10);
    auto m = st->get_session(id);
    if (!m) {
        std::fprintf(stderr, "mnemos: %s\n", m.error().to_string().c_str());
        return 1;
    }
    std::printf(
        "id                 %s\ncharacter          %s\nmodel fingerprint  %s\ntokens             %lld\n"
        "last block hash    %s\nevents             %llu\ncreated (UTC)      %s\nupdated (UTC)      %s\n",
        m->id.c_str(), m->character.c_str(), m->model_fingerprint.c_str(), (long long)m->n_tokens,
        m->last_block_hash.c_str(), (unsigned long long)m->n_events, fmt_time(m->created_ms).c_str(),
        fmt_time(m->updated_ms).c_str());
    if (!m->extra_json.empty()) std::printf("extra              %s\n", m->extra_json.c_str());
    const uint64_t from = m->n_events > n_show ? m->n_events - n_show : 0;
    auto evs = st->read_events(id, from);
    if (evs) {
        std::printf("last %zu events:\n", evs->size());
        for (const auto& e : *evs) std::printf("  %6llu  %s\n", (unsigned long long)e.seq, e.json.c_str());
    }
    return 0;
}

namespace {

// `store check`: every file and record verified (memory::check_store); exit 0 when intact, 1 when damaged.
int store_check(int argc, char** argv) {
    std::string path;
    arg_parser p("mnemos store check --store DIR",
                 "Verifies every file and record of a store without writing to it: CURRENT, the MANIFEST and the "
                 "WAL record by record, every table file's block checksums, RocksDB's VerifyChecksum and "
                 "VerifyFileChecksums, then every record of every column family decoded (events, session records, "
                 "KV blocks with their CRC-32C, references, page summaries) and every session's event log checked "
                 "for gaps. Prints a summary and each problem. Exit status: 0 intact, 1 damaged or unreadable. Stop "
                 "the server using the store first.");
    p.text("--store,--db", path, "DIR", "the store (default: $MNEMOS_DB, else ./mnemos-db)");
    if (const int rc = p.run(argc, argv); rc >= 0) return rc;
    if (path.empty()) path = db_path(argc, argv);
    auto r = memory::check_store(path);
    if (!r) {
        std::fprintf(stderr, "mnemos: %s\n", r.error().to_string().c_str());
        return 1;
    }
    std::fputs(memory::format_check_report(*r).c_str(), stdout);
    return r->ok() ? 0 : 1;
}

// `store repair`: RepairDB on a copy (memory::repair_store), never on the original.
int store_repair(int argc, char** argv) {
    std::string path, out;
    arg_parser p("mnemos store repair --store DIR --out DIR2",
                 "Copies the store DIR to DIR2 (which must not exist or be empty), runs RocksDB's RepairDB on the "
                 "copy (the original is never written), and reports what was lost: records per column family before "
                 "and after, and the sessions whose event logs have gaps or lost their end. Check the copy, then "
                 "serve it in place of the original if the losses are acceptable. Exit status: 0 repaired with "
                 "nothing lost, 1 repaired with losses or failed.");
    p.text("--store,--db", path, "DIR", "the damaged store (default: $MNEMOS_DB, else ./mnemos-db)");
    p.text("--out", out, "DIR2", "where the repaired copy goes (required)");
    if (const int rc = p.run(argc, argv); rc >= 0) return rc;
    if (out.empty()) {
        std::fprintf(stderr, "mnemos store repair: --out is required (see --help)\n");
        return 2;
    }
    if (path.empty()) path = db_path(argc, argv);
    auto r = memory::repair_store(path, out);
    if (!r) {
        std::fprintf(stderr, "mnemos: %s\n", r.error().to_string().c_str());
        return 1;
    }
    std::fputs(memory::format_repair_report(*r).c_str(), stdout);
    bool lost = !r->damaged_sessions.empty() || !r->damaged_logs.empty() || !r->after_check.ok();
    for (const auto& b : r->before)
        for (const auto& a : r->after)
            if (a.name == b.name && a.n_records < b.n_records) lost = true;
    return lost ? 1 : 0;
}

}  // namespace

int cmd_store(int argc, char** argv) {
    if (argc >= 2 && std::strcmp(argv[1], "check") == 0) return store_check(argc - 1, argv + 1);
    if (argc >= 2 && std::strcmp(argv[1], "repair") == 0) return store_repair(argc - 1, argv + 1);
    const std::string path = db_path(argc, argv);
    if (argc < 2 || (std::strcmp(argv[1], "stats") != 0 && std::strcmp(argv[1], "gc") != 0)) {
        std::fprintf(argc >= 2 && std::strcmp(argv[1], "--help") == 0 ? stdout : stderr,
                     "usage: mnemos store stats [--db PATH]\n"
                     "       mnemos store gc [--min-age-s N] [--db PATH]   delete unreferenced KV blocks\n"
                     "       mnemos store check --store DIR               verify every file and record\n"
                     "       mnemos store repair --store DIR --out DIR2   RepairDB on a copy, report losses\n"
                     "The store is --db PATH (or --store PATH, as for serve), else $MNEMOS_DB, else ./mnemos-db.\n"
                     "`mnemos store check --help` and `mnemos store repair --help` describe those two.\n");
        return argc >= 2 && std::strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    auto st = open_existing(path);
    if (!st) return 1;
    if (std::strcmp(argv[1], "gc") == 0) {
        int64_t min_age_s = 0;
        for (int i = 2; i + 1 < argc; ++i)
            if (std::strcmp(argv[i], "--min-age-s") == 0) min_age_s = std::strtoll(argv[i + 1], nullptr, 10);
        auto r = st->collect_garbage(min_age_s * 1000);
        if (!r) {
            std::fprintf(stderr, "mnemos: %s\n", r.error().to_string().c_str());
            return 1;
        }
        std::printf("scanned %llu blocks, deleted %llu (%llu bytes)\n", (unsigned long long)r->n_blocks_scanned,
                    (unsigned long long)r->n_blocks_deleted, (unsigned long long)r->bytes_deleted);
        return 0;
    }
    const auto s = st->stats();
    std::printf("store            %s\n", path.c_str());
    std::printf("sessions         %llu\n", (unsigned long long)s.n_sessions);
    std::printf("events           %llu\n", (unsigned long long)s.n_events);
    std::printf("kv blocks        %llu (%llu tokens, %llu refs)\n", (unsigned long long)s.n_blocks,
                (unsigned long long)s.block_tokens, (unsigned long long)s.n_refs);
    std::printf("kv bytes         %llu (%.1f bytes per token)\n", (unsigned long long)s.block_bytes, s.bytes_per_token);
    std::printf("disk bytes       %llu (sst + blob + wal)\n", (unsigned long long)s.disk_bytes);
    // A CLI process loads nothing itself: the hit rates are the store's lifetime counters, which every
    // process that used the store (serve, chat, play) added to when it closed.
    std::printf("block loads      %llu: %llu hits, %llu missing, %llu corrupt (hit rate %.1f%%, lifetime)\n",
                (unsigned long long)s.lifetime_loads, (unsigned long long)s.lifetime_load_hits,
                (unsigned long long)s.lifetime_load_missing, (unsigned long long)s.lifetime_load_corrupt,
                100.0 * s.lifetime_hit_rate());
    std::printf("block writes     %llu: %llu already stored (dedup rate %.1f%%, lifetime)\n",
                (unsigned long long)s.lifetime_persists, (unsigned long long)s.lifetime_persist_skipped,
                100.0 * s.lifetime_dedup_rate());
    return 0;
}

}  // namespace mnemos::cli

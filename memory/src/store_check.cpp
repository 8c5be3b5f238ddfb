// `mnemos store check` and `mnemos store repair`: offline verification of
// every file and record of a store, and RepairDB on a copy. See
// memory/store_check.h.
#include "memory/store_check.h"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_checksum.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_reader.h>

#include <algorithm>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "memory/codec.h"
#include "memory/src/store_internal.h"
#include "memory/store.h"

namespace mnemos::memory {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr size_t k_max_problems = 200;  // per report; the rest are counted

// RocksDB's info log would go into the store's directory (renaming its LOG): these tools write nothing there.
class null_logger final : public rocksdb::Logger {
  public:
    using rocksdb::Logger::Logv;
    void Logv(const char*, va_list) override {}
};

struct problems_sink {
    std::vector<std::string>* out;
    uint64_t n_dropped = 0;
    void add(std::string line) {
        if (out->size() < k_max_problems) {
            out->push_back(std::move(line));
        } else {
            ++n_dropped;
        }
    }
    void finish() {
        if (n_dropped) out->push_back("... and " + std::to_string(n_dropped) + " more problems");
    }
};

std::string hex(std::string_view b) {
    static const char* d = "0123456789abcdef";
    std::string s;
    for (char c : b) {
        s += d[uint8_t(c) >> 4];
        s += d[uint8_t(c) & 15];
    }
    return s;
}

std::string printable(std::string_view b) {
    std::string s;
    for (char c : b) s += (uint8_t(c) >= 0x20 && uint8_t(c) < 0x7f) ? c : '?';
    return s;
}

rocksdb::DBOptions base_options(bool strict) {
    rocksdb::DBOptions o;
    o.create_if_missing = false;
    o.paranoid_checks = strict;
    o.wal_recovery_mode =
        strict ? rocksdb::WALRecoveryMode::kAbsoluteConsistency : rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords;
    o.file_checksum_gen_factory = rocksdb::GetFileChecksumGenCrc32cFactory();
    o.info_log = std::make_shared<null_logger>();
    return o;
}

std::vector<rocksdb::ColumnFamilyDescriptor> descriptors(const std::vector<std::string>& names) {
    std::vector<rocksdb::ColumnFamilyDescriptor> d;
    for (const auto& n : names) {
        rocksdb::ColumnFamilyOptions o;
        if (n == "kv") {  // as store::open: values in blob files (what RepairDB writes from a WAL)
            o.enable_blob_files = true;
            o.min_blob_size = 4096;
        }
        d.emplace_back(n, o);
    }
    return d;
}

struct read_only_db {
    std::unique_ptr<rocksdb::DB> db;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    std::vector<std::string> names;
    ~read_only_db() {
        for (auto* h : handles)
            if (db && h) db->DestroyColumnFamilyHandle(h);
        if (db) db->Close().PermitUncheckedError();
    }
};

result<std::unique_ptr<read_only_db>> open_read_only(const std::string& path, bool strict) {
    auto r = std::make_unique<read_only_db>();
    auto s = rocksdb::DB::ListColumnFamilies(base_options(strict), path, &r->names);
    if (!s.ok()) return make_error(s.IsCorruption() ? errc::corrupt : errc::io_error, "list families: " + s.ToString());
    rocksdb::DB* raw = nullptr;
    s = rocksdb::DB::OpenForReadOnly(base_options(strict), path, descriptors(r->names), &r->handles, &raw, false);
    if (!s.ok())
        return make_error(s.IsCorruption() ? errc::corrupt : errc::io_error, "open read-only: " + s.ToString());
    r->db.reset(raw);
    return r;
}

struct session_info {
    bool has_record = false;
    uint64_t record_n_events = 0;
    uint64_t n_events = 0;
    uint64_t next = 0;                                // the seq expected next
    std::vector<std::pair<uint64_t, uint64_t>> gaps;  // [from, to] missing
};

struct scan_result {
    std::vector<family_count> families;
    std::map<std::string, session_info> sessions;
};

// Reads every record of every family (checksums verified) and decodes it with our codec.
scan_result scan(read_only_db& d, problems_sink& probs) {
    scan_result r;
    std::vector<uint8_t> buf;
    for (size_t f = 0; f < d.names.size(); ++f) {
        const std::string& name = d.names[f];
        family_count fc;
        fc.name = name;
        rocksdb::ReadOptions ro;
        ro.verify_checksums = true;
        ro.fill_cache = false;
        std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(ro, d.handles[f]));
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            ++fc.n_records;
            const std::string_view k(it->key().data(), it->key().size());
            const std::string_view v(it->value().data(), it->value().size());
            std::string bad;
            if (name == "events") {
                const size_t z = k.find('\0');
                if (z == std::string_view::npos || k.size() != z + 9 || !valid_session_id(k.substr(0, z))) {
                    bad = "malformed key " + printable(k);
                } else {
                    const std::string id(k.substr(0, z));
                    const uint64_t seq = detail::read_be64(k.data() + z + 1);
                    auto& si = r.sessions[id];
                    if (seq != si.next) si.gaps.emplace_back(si.next, seq - 1);
                    si.next = seq + 1;
                    ++si.n_events;
                    if (!json::accept(v)) bad = "event " + id + " #" + std::to_string(seq) + " is not valid JSON";
                }
            } else if (name == "sessions") {
                auto m = detail::meta_from_json(v);
                if (!m) {
                    bad = "session record " + printable(k) + ": " + m.error().message();
                } else if (m->id != k || !valid_session_id(k)) {
                    bad = "session record under key " + printable(k) + " names '" + m->id + "'";
                } else {
                    auto& si = r.sessions[std::string(k)];
                    si.has_record = true;
                    si.record_n_events = m->n_events;
                }
            } else if (name == "kv") {
                if (k.size() != 32) {
                    bad = "kv key of " + std::to_string(k.size()) + " bytes";
                } else {
                    engine::block_hash h;
                    std::memcpy(h.bytes.data(), k.data(), 32);
                    auto info = inspect_block(h, v);
                    if (!info) {
                        bad = "kv block " + hex(k) + ": " + info.error().message();
                    } else if (info->raw_bytes > (uint64_t(1) << 30)) {
                        bad = "kv block " + hex(k) + ": raw size " + std::to_string(info->raw_bytes);
                    } else {
                        buf.resize(size_t(info->raw_bytes));
                        if (auto s = decode_block(h, v, buf); !s.ok()) bad = "kv block " + hex(k) + ": " + s.message();
                    }
                }
            } else if (name == "refs") {
                const bool by_block = !k.empty() && k[0] == 'B' && k.size() > 33 && valid_session_id(k.substr(33));
                const bool by_session = !k.empty() && k[0] == 'S' && k.size() > 34 && k[k.size() - 33] == '\0' &&
                                        valid_session_id(k.substr(1, k.size() - 34));
                if (!by_block && !by_session) bad = "malformed reference key " + printable(k);
            } else if (name == "summaries") {
                uint32_t n = 0;
                if (v.size() >= 16) std::memcpy(&n, v.data() + 8, 4);
                engine::block_hash h;
                if (k.size() == 32) std::memcpy(h.bytes.data(), k.data(), 32);
                buf.resize(n);
                if (k.size() != 32 || v.size() < 16 || n != v.size() - 16 || !decode_summary(h, v, buf))
                    bad = "page summary " + hex(k) + " fails its check";
            }
            if (!bad.empty()) {
                ++fc.n_bad;
                probs.add("family " + name + ": " + bad);
            }
        }
        if (!it->status().ok()) {
            fc.complete = false;
            probs.add("family " + name + ": reading stopped after " + std::to_string(fc.n_records) +
                      " records: " + it->status().ToString());
        }
        r.families.push_back(fc);
    }
    return r;
}

// One line per session whose log is not 0..n-1 with n its record's n_events.
std::vector<std::string> session_problems(const scan_result& s) {
    std::vector<std::string> out;
    for (const auto& [id, si] : s.sessions) {
        std::string why;
        for (const auto& [a, b] : si.gaps)
            why += (why.empty() ? "" : ", ") + std::string("events ") + std::to_string(a) +
                   (a == b ? "" : ".." + std::to_string(b)) + " missing";
        if (!si.has_record && si.n_events > 0) {
            why += (why.empty() ? "" : ", ") + std::string("no session record");
        } else if (si.has_record && si.next != si.record_n_events) {
            why += (why.empty() ? "" : ", ") + std::string("log ends at ") + std::to_string(si.next) +
                   " events, its record says " + std::to_string(si.record_n_events);
        }
        if (!why.empty()) out.push_back("session " + id + ": " + why);
    }
    return out;
}

// Every record of every family that can be read from db: forward from the first until an unreadable block,
// then backward from the last down to there, so only the damaged blocks themselves are missed. Values are
// read with their checksums verified: what is salvaged is what was written.
using records = std::vector<std::pair<std::string, std::string>>;
std::map<std::string, records> salvage(read_only_db& d) {
    std::map<std::string, records> out;
    rocksdb::ReadOptions ro;
    ro.verify_checksums = true;
    ro.fill_cache = false;
    for (size_t f = 0; f < d.names.size(); ++f) {
        records& recs = out[d.names[f]];
        std::unique_ptr<rocksdb::Iterator> it(d.db->NewIterator(ro, d.handles[f]));
        for (it->SeekToFirst(); it->Valid(); it->Next())
            recs.emplace_back(it->key().ToString(), it->value().ToString());
        if (it->status().ok()) continue;
        const std::string last = recs.empty() ? std::string() : recs.back().first;
        const size_t n_forward = recs.size();
        it.reset(d.db->NewIterator(ro, d.handles[f]));
        for (it->SeekToLast(); it->Valid(); it->Prev()) {
            if (n_forward > 0 && it->key().ToString() <= last) break;
            recs.emplace_back(it->key().ToString(), it->value().ToString());
        }
    }
    return out;
}

// Puts into the repaired copy every salvaged record it lacks (RepairDB sets aside a whole table file when one
// block of it is unreadable), and rebuilds family kv from the salvaged blocks that pass our check: RepairDB
// does not know blob files, so the blocks it keeps point at blob files its MANIFEST does not list.
result<std::vector<std::string>> restore_into(const std::string& out_path, const std::vector<std::string>& names,
                                              const std::map<std::string, records>& salv) {
    std::vector<std::string> notes;
    rocksdb::DBOptions o = base_options(false);
    o.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    auto s = rocksdb::DB::Open(o, out_path, descriptors(names), &handles, &raw);
    if (!s.ok()) return make_error(errc::corrupt, "open the repaired copy: " + s.ToString());
    std::unique_ptr<rocksdb::DB> db(raw);
    struct closer {
        rocksdb::DB* db;
        std::vector<rocksdb::ColumnFamilyHandle*>& h;
        ~closer() {
            for (auto* x : h)
                if (x) db->DestroyColumnFamilyHandle(x);
            db->Close().PermitUncheckedError();
        }
    } close_guard{db.get(), handles};
    rocksdb::WriteOptions wo;
    wo.sync = true;
    for (size_t f = 0; f < names.size(); ++f) {
        const std::string& name = names[f];
        auto it = salv.find(name);
        if (name == "kv") {
            s = db->DropColumnFamily(handles[f]);
            if (s.ok()) s = db->DestroyColumnFamilyHandle(handles[f]);
            handles[f] = nullptr;
            if (s.ok()) s = db->CreateColumnFamily(descriptors({"kv"})[0].options, "kv", &handles[f]);
            if (!s.ok()) return make_error(errc::io_error, "rebuild family kv: " + s.ToString());
        }
        if (it == salv.end()) continue;
        uint64_t n_put = 0, n_rejected = 0;
        rocksdb::WriteBatch wb;
        for (const auto& [k, v] : it->second) {
            if (name == "kv") {
                engine::block_hash h;
                if (k.size() != 32) continue;
                std::memcpy(h.bytes.data(), k.data(), 32);
                if (!inspect_block(h, v).ok()) {
                    ++n_rejected;
                    continue;
                }
            } else {
                std::string have;
                if (db->Get(rocksdb::ReadOptions(), handles[f], k, &have).ok()) continue;
            }
            wb.Put(handles[f], k, v);
            ++n_put;
            if (wb.GetDataSize() > (size_t(16) << 20)) {
                if (s = db->Write(wo, &wb); !s.ok()) return make_error(errc::io_error, "restore: " + s.ToString());
                wb.Clear();
            }
        }
        if (wb.Count())
            if (s = db->Write(wo, &wb); !s.ok()) return make_error(errc::io_error, "restore: " + s.ToString());
        if (name == "kv") {
            notes.push_back("family kv rebuilt from the original's readable blocks: " + std::to_string(n_put) +
                            " kept" +
                            (n_rejected ? ", " + std::to_string(n_rejected) + " failing their check dropped" : ""));
        } else if (n_put) {
            notes.push_back("family " + name + ": " + std::to_string(n_put) +
                            " records RepairDB dropped were restored from the original's readable blocks");
        }
    }
    rocksdb::FlushOptions fo;
    std::vector<rocksdb::ColumnFamilyHandle*> live;
    for (auto* h : handles)
        if (h) live.push_back(h);
    db->Flush(fo, live).PermitUncheckedError();
    return notes;
}

bool looks_like_store(const std::string& path) {
    std::error_code ec;
    if (!fs::is_directory(path, ec)) return false;
    for (const auto& e : fs::directory_iterator(path, ec)) {
        const std::string n = e.path().filename().string();
        if (n == "CURRENT" || n.starts_with("MANIFEST-") || n.ends_with(".sst") || n.ends_with(".blob") ||
            (n.ends_with(".log") && n != "LOG"))
            return true;
    }
    return false;
}

}  // namespace

result<check_report> check_store(const std::string& path) {
    if (!looks_like_store(path)) return make_error(errc::not_found, "no store at '" + path + "'");
    check_report rep;
    rep.path = path;
    problems_sink probs{&rep.problems};
    try {
        // 1. CURRENT, the MANIFESTs and the WALs, record by record.
        std::vector<std::string> logs, tables;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(path, ec)) {
            const std::string n = e.path().filename().string();
            if (n.starts_with("MANIFEST-") || (n.ends_with(".log") && n != "LOG")) logs.push_back(n);
            if (n.ends_with(".sst")) tables.push_back(n);
            if (n.ends_with(".blob")) ++rep.n_files_checked;  // verified through the database (step 3, 4)
        }
        std::sort(logs.begin(), logs.end());
        std::sort(tables.begin(), tables.end());
        ++rep.n_files_checked;
        if (auto s = detail::verify_current(path, nullptr); !s.ok()) probs.add(s.message());
        for (const auto& l : logs) {
            ++rep.n_files_checked;
            if (auto s = detail::verify_log_file(path + "/" + l); !s.ok()) probs.add(s.message());
        }
        // 2. Every table file on its own.
        for (const auto& t : tables) {
            ++rep.n_files_checked;
            rocksdb::Options o;
            o.info_log = std::make_shared<null_logger>();
            rocksdb::SstFileReader reader(o);
            auto s = reader.Open(path + "/" + t);
            if (s.ok()) s = reader.VerifyChecksum();
            if (!s.ok()) probs.add(t + ": " + s.ToString());
        }
        // 3. The database, strictly; else as much as a tolerant open shows (for the record scan).
        auto d = open_read_only(path, true);
        rep.opened = d.ok();
        if (!d) {
            probs.add("the store does not open: " + d.error().message());
            d = open_read_only(path, false);
        }
        if (d) {
            auto& db = *(*d)->db;
            rocksdb::ReadOptions ro;
            ro.verify_checksums = true;
            if (auto s = db.VerifyChecksum(ro); !s.ok()) probs.add("VerifyChecksum: " + s.ToString());
            if (auto s = db.VerifyFileChecksums(ro); !s.ok()) probs.add("VerifyFileChecksums: " + s.ToString());
            // 4. Every record, decoded.
            scan_result sr = scan(**d, probs);
            rep.families = sr.families;
            rep.n_sessions_checked = sr.sessions.size();
            for (auto& line : session_problems(sr)) probs.add(std::move(line));
        }
    } catch (const std::exception& e) {
        probs.add(std::string("check stopped: ") + e.what());
    }
    probs.finish();
    return rep;
}

std::string format_check_report(const check_report& r) {
    std::string s = "store            " + r.path + "\n";
    s += "files checked    " + std::to_string(r.n_files_checked) + "\n";
    s += "opens            " + std::string(r.opened ? "yes" : "NO (refused)") + "\n";
    for (const auto& f : r.families) {
        char line[256];
        std::snprintf(line, sizeof line, "family %-10s %10llu records, %llu bad%s\n", f.name.c_str(),
                      (unsigned long long)f.n_records, (unsigned long long)f.n_bad,
                      f.complete ? "" : ", scan stopped at an unreadable block");
        s += line;
    }
    s += "sessions checked " + std::to_string(r.n_sessions_checked) + "\n";
    if (r.ok()) {
        s += "result           ok: every file and record verified\n";
    } else {
        s += "result           DAMAGED: " + std::to_string(r.problems.size()) + " problems\n";
        for (const auto& p : r.problems) s += "  " + p + "\n";
    }
    return s;
}

result<repair_report> repair_store(const std::string& path, const std::string& out_path) {
    if (!looks_like_store(path)) return make_error(errc::not_found, "no store at '" + path + "'");
    std::error_code ec;
    if (fs::exists(out_path, ec) && !fs::is_empty(out_path, ec))
        return make_error(errc::already_exists, "'" + out_path + "' exists and is not empty");
    if (fs::weakly_canonical(path, ec) == fs::weakly_canonical(out_path, ec))
        return make_error(errc::invalid_argument, "the output must not be the store itself");
    repair_report rep;
    rep.path = path;
    rep.out_path = out_path;
    try {
        // Before: what the original holds, strictly if it opens so, else best effort.
        std::map<std::string, session_info> before_sessions;
        std::map<std::string, records> salvaged;
        // The original's own log files: a damaged WAL loses what follows the damage (RocksDB drops the rest
        // of its 32 KiB block at least), which no count taken after the fact shows.
        for (const auto& e : fs::directory_iterator(path, ec)) {
            const std::string n = e.path().filename().string();
            if (n.starts_with("MANIFEST-") || (n.ends_with(".log") && n != "LOG"))
                if (auto st = detail::verify_log_file(e.path().string()); !st.ok())
                    rep.damaged_logs.push_back(st.message() + "; records from there on may be lost");
        }
        {
            std::vector<std::string> ignored;
            problems_sink sink{&ignored};
            auto d = open_read_only(path, true);
            rep.before_strict = d.ok();
            if (!d) {
                rep.before_error = d.error().message();
                d = open_read_only(path, false);
            }
            if (d) {
                scan_result sr = scan(**d, sink);
                rep.before = sr.families;
                before_sessions = std::move(sr.sessions);
                salvaged = salvage(**d);
                // Before: everything readable, also past a damaged block (the scan stops there).
                for (auto& f : rep.before)
                    if (auto it = salvaged.find(f.name); it != salvaged.end()) f.n_records = it->second.size();
            } else {
                rep.notes.push_back("the original does not open even leniently (" + d.error().message() +
                                    "): no counts before");
            }
        }
        // The copy, then RocksDB's repair on it.
        fs::create_directories(out_path, ec);
        fs::copy(path, out_path, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
        if (ec) return make_error(errc::io_error, "copy " + path + " to " + out_path + ": " + ec.message());
        std::vector<std::string> names;
        if (!rocksdb::DB::ListColumnFamilies(base_options(false), out_path, &names).ok())
            names = detail::family_names();
        for (const auto& n : detail::family_names())
            if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
        rocksdb::DBOptions ro = base_options(false);
        ro.info_log.reset();  // RepairDB's log goes to the copy's LOG
        const auto s = rocksdb::RepairDB(out_path, ro, descriptors(names), rocksdb::ColumnFamilyOptions());
        if (!s.ok()) return make_error(errc::corrupt, "RepairDB on the copy " + out_path + ": " + s.ToString());
        auto restored = restore_into(out_path, names, salvaged);
        if (!restored) return restored.error();
        for (auto& n : *restored) rep.notes.push_back(std::move(n));
        if (fs::exists(out_path + "/lost", ec))
            for (const auto& e : fs::directory_iterator(out_path + "/lost", ec))
                rep.notes.push_back("set aside (unreadable): lost/" + e.path().filename().string());
        // After: the copy's counts and sessions, and a full check of it.
        {
            std::vector<std::string> ignored;
            problems_sink sink{&ignored};
            auto d = open_read_only(out_path, true);
            if (!d) return make_error(errc::corrupt, "the repaired copy does not open: " + d.error().message());
            scan_result sr = scan(**d, sink);
            rep.after = sr.families;
            rep.damaged_sessions = session_problems(sr);
            for (const auto& [id, si] : before_sessions)
                if (!sr.sessions.count(id))
                    rep.damaged_sessions.push_back("session " + id + ": lost (" + std::to_string(si.n_events) +
                                                   " events before)");
                else if (sr.sessions[id].n_events < si.n_events)
                    rep.damaged_sessions.push_back("session " + id + ": " + std::to_string(sr.sessions[id].n_events) +
                                                   " of " + std::to_string(si.n_events) + " events kept");
        }
        auto chk = check_store(out_path);
        if (chk) rep.after_check = std::move(*chk);
    } catch (const std::exception& e) {
        return make_error(errc::io_error, std::string("repair: ") + e.what());
    }
    return rep;
}

std::string format_repair_report(const repair_report& r) {
    std::string s = "original         " + r.path + "\n";
    s += "repaired copy    " + r.out_path + "\n";
    if (!r.before_strict)
        s += "before           counted leniently: the original does not open (" + r.before_error + ")\n";
    s += "(before: records readable in the original, also past a damaged block)\n";
    s += "family   readable before     after       lost\n";
    auto find = [](const std::vector<family_count>& v, const std::string& n) -> const family_count* {
        for (const auto& f : v)
            if (f.name == n) return &f;
        return nullptr;
    };
    std::vector<std::string> names;
    for (const auto& f : r.before) names.push_back(f.name);
    for (const auto& f : r.after)
        if (!find(r.before, f.name)) names.push_back(f.name);
    for (const auto& n : names) {
        const auto* b = find(r.before, n);
        const auto* a = find(r.after, n);
        char line[256];
        const long long nb = b ? (long long)b->n_records : -1, na = a ? (long long)a->n_records : 0;
        std::snprintf(line, sizeof line, "%-12s %11s %10lld %10s%s\n", n.c_str(), b ? std::to_string(nb).c_str() : "?",
                      na, b ? std::to_string(std::max(0LL, nb - na)).c_str() : "?",
                      b && !b->complete ? "  (before: scan stopped at an unreadable block)" : "");
        s += line;
    }
    if (r.damaged_sessions.empty()) {
        s += "sessions         every session's event log is complete\n";
    } else {
        s += "sessions         " + std::to_string(r.damaged_sessions.size()) + " with lost events:\n";
        for (const auto& d : r.damaged_sessions) s += "  " + d + "\n";
    }
    for (const auto& n : r.damaged_logs) s += "damaged log      " + n + "\n";
    for (const auto& n : r.notes) s += "note             " + n + "\n";
    s += "check of copy    " + std::string(r.after_check.ok() ? "ok" : "problems remain:") + "\n";
    for (const auto& p : r.after_check.problems) s += "  " + p + "\n";
    return s;
}

}  // namespace mnemos::memory

#pragma once
// Offline verification and repair of a store directory (memory/store.h):
// what `mnemos store check` and `mnemos store repair` run. Neither writes to
// the store it is given; both expect no other process to have it open.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/status.h"

namespace mnemos::memory {

// Records of one column family.
struct family_count {
    std::string name;
    uint64_t n_records = 0;  // records read (valid or not)
    uint64_t n_bad = 0;      // records our codec rejects (bad key, event not JSON, block failing its checksum, ...)
    bool complete = true;    // false: the scan stopped at an error RocksDB reported (the rest is unreadable)
};

struct check_report {
    std::string path;
    uint64_t n_files_checked = 0;  // CURRENT, MANIFEST, WAL, table and blob files looked at
    bool opened = false;           // the database opened (read-only, strict recovery)
    std::vector<family_count> families;
    uint64_t n_sessions_checked = 0;
    // One line per problem found: the file or family and key, and what failed.
    std::vector<std::string> problems;
    bool ok() const { return problems.empty(); }
};

// Verifies every file and record of the store at path, read-only:
//  1. CURRENT names an existing MANIFEST; that MANIFEST and every WAL verify
//     record by record and end on a record boundary (memory/src/store_internal.h);
//  2. every table file on its own (RocksDB SstFileReader::VerifyChecksum:
//     every block's checksum), live or not;
//  3. the database opened read-only with the store's strict recovery
//     (kAbsoluteConsistency, paranoid checks): DB::VerifyChecksum (every block
//     of every live table file, and blob files) and DB::VerifyFileChecksums
//     (the whole-file CRC-32C the MANIFEST records for files this version wrote);
//  4. every record of every family read with checksums verified and decoded
//     with our codec: event keys (id, 0, big-endian seq) and JSON values, each
//     session's events numbered 0..n-1 without a gap and n equal to its
//     record's n_events, session records, KV blocks (header, sizes, CRC-32C,
//     payload decoded), reference keys, page summaries.
// Problems are collected in the report, never returned as an error. Errors:
// not_found (no such directory, or no database in it).
result<check_report> check_store(const std::string& path);
// The report as text: one line per file kind and family, then each problem.
std::string format_check_report(const check_report& r);

struct repair_report {
    std::string path, out_path;
    // Counts in the original before repair: opened read-only, strictly, else
    // best effort (WAL records past a damaged one skipped, checks relaxed);
    // every record readable, read forward and then backward past a damaged
    // block. Those records also go into the copy where RepairDB dropped them
    // (it sets aside a whole table file for one bad block), and family kv is
    // rebuilt from them (RepairDB does not carry blob files over).
    bool before_strict = false;  // the original opened with strict recovery
    std::string before_error;    // why it did not (empty when it did)
    std::vector<family_count> before;
    std::vector<family_count> after;  // in the repaired copy
    // Sessions whose event log in the copy has a gap, lost events at its end
    // (fewer than its record's n_events), or no record; and sessions of the
    // original missing from the copy. One line each.
    std::vector<std::string> damaged_sessions;
    // The original's MANIFEST and WAL files that fail verify_log_file: what
    // followed the damage in them may be lost without a trace in the counts.
    std::vector<std::string> damaged_logs;
    std::vector<std::string> notes;  // records restored, files RepairDB set aside
    check_report after_check;        // check_store of the copy
};

// Copies the store at path to out_path (which must not exist, or be an empty
// directory), runs RocksDB's RepairDB on the copy (never on the original:
// repair rewrites the MANIFEST from the table files it can read, turns WALs
// into tables, and sets aside what it cannot read), then reports what the
// copy holds against the original: counts per family before and after, and
// the sessions whose event logs have gaps. Errors: not_found (no store at
// path), already_exists (out_path is not empty), io_error (copy), corrupt
// (RepairDB failed, with its message).
result<repair_report> repair_store(const std::string& path, const std::string& out_path);
std::string format_repair_report(const repair_report& r);

}  // namespace mnemos::memory

#pragma once
// Internals shared by store.cpp and store_check.cpp: the key layouts of the
// column families, the session record's JSON, and the checks of the files
// RocksDB opens first (CURRENT, MANIFEST, WAL) that store::open runs before
// handing the directory to RocksDB.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "memory/store.h"

namespace mnemos::memory::detail {

// The column families, in the order store::open and the tools open them.
inline const std::vector<std::string>& family_names() {
    static const std::vector<std::string> names = {"default", "events", "sessions", "kv", "refs", "summaries"};
    return names;
}

std::string be64(uint64_t v);
uint64_t read_be64(const char* p);

// events: id, 0x00, big-endian seq (ids never contain 0x00, so one id's keys are contiguous).
std::string event_key(std::string_view id, uint64_t seq);
std::string event_prefix(std::string_view id);
std::string event_prefix_end(std::string_view id);

std::string meta_to_json_text(const session_meta& m);
// Errors: corrupt (not a JSON object, or a field of the wrong type).
result<session_meta> meta_from_json(std::string_view s);

// Verifies one file in RocksDB's log format (MANIFEST-*, *.log): 32 KiB
// blocks of records, each with a masked CRC-32C over its type and payload.
// Every record must pass its checksum, fragments must chain (first, middle,
// last), and the file must end at the end of a record: a torn or truncated
// tail is reported (RocksDB itself tolerates a torn MANIFEST tail and drops
// what follows a zeroed record header, both silently). Zero bytes are only
// accepted as a block's trailer (fewer than 7 bytes) or, when
// allow_zero_tail, as the rest of the file (preallocated space).
// Errors: corrupt naming the file and the offset; io_error.
status verify_log_file(const std::string& path, bool allow_zero_tail = false);

// CURRENT must read "MANIFEST-<number>\n" and name an existing file; sets
// *manifest to that name. Errors: corrupt (the message names CURRENT and
// shows what it holds), io_error.
status verify_current(const std::string& path, std::string* manifest);

// What store::open checks before RocksDB opens an existing database: CURRENT
// names an existing MANIFEST in the expected form, and that MANIFEST and every
// WAL (*.log) verify (verify_log_file). A directory with RocksDB files but no
// CURRENT is refused (RocksDB would create a new, empty database over it).
// Returns ok for a directory with no database (a new store). Errors: corrupt
// naming the file, io_error.
status preflight_database(const std::string& path);

// With create_if_missing off: not_found "no store at PATH" when the path does not exist or is an empty
// directory (nothing is created); ok otherwise.
status refuse_missing_store(const std::string& path);
// After RocksDB failed to take the store's LOCK: busy, naming the process that holds it where it can be known.
status store_in_use(const std::string& path);

}  // namespace mnemos::memory::detail

#pragma once
// session_store_i: durable storage of session metadata and event logs, and its two implementations.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/status.h"

namespace mnemos::memory {
class store;
}

namespace mnemos::agent {

// Durable storage for sessions: metadata and an append-only event log, as
// JSON text. memory/ implements it on RocksDB; memory_session_store keeps it
// in process (tests, no --store). Implementations are thread-safe.
class session_store_i {
  public:
    virtual ~session_store_i() = default;
    // Creates or replaces session metadata.
    virtual status put_session(const std::string& id, const std::string& meta_json) = 0;
    // not_found when absent.
    virtual result<std::string> get_session(const std::string& id) = 0;
    virtual std::vector<std::string> list_sessions() = 0;
    // Removes metadata and events; not_found when absent.
    virtual status delete_session(const std::string& id) = 0;
    // Appends one event; durable (synced) when it returns ok. Returns its sequence number.
    virtual result<uint64_t> append_event(const std::string& id, const std::string& event_json) = 0;
    // Events in order.
    virtual result<std::vector<std::string>> read_events(const std::string& id) = 0;
    // Shared prefixes (named texts such as a game's rules, referenced by
    // character::shared_prefix), durable like events. Replacing one appends a
    // new version; the latest wins. Default implementation: events of the
    // reserved session k_prefix_log_id (an id no client can name; list_sessions
    // leaves it out).
    virtual status put_prefix(const std::string& id, const std::string& text);
    // Every prefix, id -> text (empty when none; unreadable entries are skipped).
    virtual std::map<std::string, std::string> load_prefixes();
    // Told the session's tokens after each turn (a RocksDB store records which KV blocks the session
    // uses, for garbage collection, and its token count). Default: nothing. Errors: those of the store;
    // the turn itself is durable either way (its events are), so callers count and log the failure.
    // scope: how the session's blocks are hashed (session::scope).
    virtual status note_tokens(const std::string& id, const std::vector<engine::token_id>& tokens,
                               const engine::cache_scope& scope) {
        (void)id;
        (void)tokens;
        (void)scope;
        return {};
    }
};

// The reserved session id under which the default session_store_i keeps shared prefixes.
inline constexpr const char* k_prefix_log_id = "~prefixes";

// In-process store (tests, or serving without --store): lost on exit.
std::unique_ptr<session_store_i> make_memory_session_store();
// Adapts memory::store (RocksDB; durable, synced appends). st must outlive it.
// fingerprint / page_size: how the engine chains block hashes (for block refs).
std::unique_ptr<session_store_i> make_durable_session_store(memory::store& st, const engine::block_hash& fingerprint,
                                                            int32_t page_size);

}  // namespace mnemos::agent

#pragma once
// Built-in tools: roll_dice, clock, note, recall. Each factory returns a tool ready for
// tool_registry::add(); state (rng, stores, the session) is bound into the handler.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/status.h"
#include "tools/tool.h"

namespace mnemos::tools {

// ---- roll_dice -------------------------------------------------------------------------------------------
// {"notation": "2d6+3"} -> {"notation": "2d6+3", "rolls": [4, 1], "modifier": 3, "total": 8}.
// Notation: [N]dM[+K|-K], N in 1..100 (default 1), M in 2..1000, |K| <= 1000; case-insensitive, no spaces.
// Errors: invalid_argument naming the notation. The rng (std::mt19937_64) is seeded with `seed`: same seed,
// same rolls.
tool make_roll_dice_tool(uint64_t seed);

struct dice_roll {
    int32_t n = 1, sides = 6, modifier = 0;
};
// Parses dice notation; invalid_argument when malformed or out of range.
result<dice_roll> parse_dice(std::string_view notation);

// ---- clock -----------------------------------------------------------------------------------------------
using time_source = std::function<std::chrono::system_clock::time_point()>;
// {} -> {"now": "2026-11-22T03:59:46Z", "unix": 1795154386} (UTC, whole seconds). `now` defaults to the
// system clock; tests inject a fixed one.
tool make_clock_tool(time_source now = {});
// "YYYY-MM-DDTHH:MM:SSZ" (UTC).
std::string format_iso8601(std::chrono::system_clock::time_point t);
// Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS]" with an optional "Z" (UTC); invalid_argument otherwise.
result<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s);

// ---- note ------------------------------------------------------------------------------------------------
struct pinned_note {
    int64_t id = 0;
    std::string text;
    std::chrono::system_clock::time_point time;
};

// Where pinned facts live (the agent may back it with memory/; tests use the in-memory one).
class notes_store_i {
  public:
    virtual ~notes_store_i() = default;
    // Stores a note for the session; returns its id (increasing per session).
    virtual result<int64_t> pin(const std::string& session, const std::string& text,
                                std::chrono::system_clock::time_point time) = 0;
    // The session's notes, oldest first (empty for an unknown session).
    virtual result<std::vector<pinned_note>> list(const std::string& session) const = 0;
};

// Thread-safe, in memory.
class memory_notes_store final : public notes_store_i {
  public:
    result<int64_t> pin(const std::string& session, const std::string& text,
                        std::chrono::system_clock::time_point time) override;
    result<std::vector<pinned_note>> list(const std::string& session) const override;

  private:
    mutable std::mutex mu_;  // guards notes_
    std::vector<std::pair<std::string, pinned_note>> notes_;
};

// {"text": "..."} (1..500 characters) -> {"pinned": true, "id": 3}. Errors from the store are passed on.
tool make_note_tool(std::shared_ptr<notes_store_i> store, std::string session, time_source now = {});

// ---- recall ----------------------------------------------------------------------------------------------
struct history_event {
    uint64_t seq = 0;                            // sequence number in the session's event log
    std::chrono::system_clock::time_point time;  // when it was appended
    std::string role;                            // "user", "assistant", "tool", ...
    std::string text;                            // the event's text
};

// A session's history (the agent implements it over memory/'s event log).
class history_source_i {
  public:
    virtual ~history_source_i() = default;
    // Events with from <= seq < to, in order. Errors: not_found for an unknown session, or the store's error.
    virtual result<std::vector<history_event>> events(const std::string& session, uint64_t from, uint64_t to) = 0;
};

struct recall_hit {
    history_event event;
    double score = 0;
    std::string snippet;  // up to ~200 bytes around the first matching word
};

// Scores events by the number of distinct query words they contain (lowercased letters/digits, words of one
// character and common stop words dropped); ties go to the later event. Returns at most top_k hits with
// score > 0, best first.
std::vector<recall_hit> rank_events(const std::vector<history_event>& events, std::string_view query, size_t top_k);

// {"query": "...", "from_seq"?: n, "to_seq"?: n (exclusive), "since"?: ISO-8601, "until"?: ISO-8601 (exclusive),
//  "top_k"?: 1..20 (default 5)} -> {"hits": [{"seq": n, "time": "...", "role": "...", "snippet": "...",
//  "score": k}, ...]}. Errors: invalid_argument for a bad time; the source's errors are passed on.
tool make_recall_tool(std::shared_ptr<history_source_i> source, std::string session);

}  // namespace mnemos::tools

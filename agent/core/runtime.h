#pragma once
// The agent runtime without networking: the engine on its own thread
// (engine_runner), characters, sessions and their durable event logs
// (session_manager over a session_store_i). The HTTP server (agent/server.h)
// and the CLI sit on top of it.
//
// Threading: engine_runner::submit / cancel / stats are thread-safe; request
// callbacks run on the engine thread. session_manager is thread-safe; one turn
// at a time per session (a second concurrent turn is refused with
// errc::busy). That refusal is the last line of defense for
// in-process callers (mnemos play): the HTTP server queues a session's turns
// (agent/server/server.h, "Concurrency") so its own turns never meet it.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/chat_template.h"
#include "engine/engine.h"
#include "engine/status.h"

namespace mnemos::memory {
class store;
}

namespace mnemos::agent {

// ---------------------------------------------------------------------------
// engine_runner: one dedicated engine thread
// ---------------------------------------------------------------------------

class engine_runner {
  public:
    // Creates the engine and starts its thread. The thread steps while there is
    // work and sleeps on a condition variable otherwise; submit() wakes it.
    // Errors: those of engine::create.
    static result<std::unique_ptr<engine_runner>> start(std::shared_ptr<const engine::model> m,
                                                        const engine::engine_options& options);
    // Stops the thread (requests still in flight get no more callbacks).
    ~engine_runner();

    // Queues a request (engine::submit) and wakes the engine thread. Thread-safe.
    engine::seq_id submit(engine::request r);
    // Cancels a request (its on_finish reports cancelled). Thread-safe.
    void cancel(engine::seq_id id);
    // Runs fn on the engine thread before its next step (e.g. kv().set_store()). Thread-safe.
    void run_on_engine_thread(std::function<void(engine::engine&)> fn);

    // Snapshots taken by the engine thread after each step. Thread-safe.
    engine::engine_stats stats() const;
    engine::kv_cache_stats kv_stats() const;
    // Requests submitted but not yet finished.
    int64_t n_in_flight() const { return n_in_flight_.load(); }

    const engine::model& mdl() const { return *model_; }
    int32_t n_ctx() const { return n_ctx_; }
    // Longest history a turn may have: n_ctx with full attention, else what the KV pool holds (sparse
    // attention beyond n_ctx; engine/attention.h).
    int32_t history_limit() const { return history_limit_; }
    const engine::attention_options& attention() const { return attention_; }

  private:
    engine_runner() = default;
    void loop();

    std::shared_ptr<const engine::model> model_;
    std::unique_ptr<engine::engine> engine_;  // touched only by the engine thread after start()
    int32_t n_ctx_ = 0;
    int32_t history_limit_ = 0;
    engine::attention_options attention_;

    mutable std::mutex mu_;  // guards wake_, stop_, tasks_, the snapshots
    std::condition_variable cv_;
    bool wake_ = false;  // set by submit/cancel so a step that raced with it is not slept through
    bool stop_ = false;
    std::vector<std::function<void(engine::engine&)>> tasks_;  // run_on_engine_thread queue
    engine::engine_stats stats_snap_;
    engine::kv_cache_stats kv_snap_;
    std::atomic<int64_t> n_in_flight_{0};  // submitted - finished, for the queue-depth metric
    std::thread thread_;
};

// ---------------------------------------------------------------------------
// Characters and sessions
// ---------------------------------------------------------------------------

// A role-play character or agent persona. Everything but name and
// public_knowledge is private: shown only to keys allowed to read the session.
struct character {
    std::string name;                  // "Butler"
    std::string persona;               // system prompt: who the character is
    std::string public_knowledge;      // what everyone may know
    std::string private_knowledge;     // what only the character knows
    std::vector<std::string> secrets;  // never revealed; never logged
    std::vector<std::string> goals;
    std::string shared_prefix;  // id of a shared prefix (e.g. a game's rules) placed before the persona
    bool empty() const {
        return name.empty() && persona.empty() && public_knowledge.empty() && private_knowledge.empty() &&
               secrets.empty() && goals.empty();
    }
};

// The system message a character renders to (empty when the character is empty).
std::string character_system_prompt(const character& c, const std::string& shared_prefix_text);

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
    // Told the session's tokens after each turn (a RocksDB store records which
    // KV blocks the session uses, for garbage collection). Default: nothing.
    virtual void note_tokens(const std::string& id, const std::vector<engine::token_id>& tokens) {
        (void)id;
        (void)tokens;
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

// One conversation: its character, its messages and the tokens they render to
// (append-only: new turns only append tokens).
struct session {
    std::string id;
    character chr;
    std::string owner_key;  // key name that created it ("" when open access)
    int64_t created = 0;    // unix seconds
    std::mutex mu;          // guards messages, tokens, n_turns
    std::vector<engine::chat_message> messages;
    std::vector<engine::token_id> tokens;  // render_message(messages, i) tokenized, i = 0..n-1
    std::vector<int32_t> message_starts;   // where message i's tokens start in `tokens`
    int64_t n_turns = 0;
    std::string agent_json;         // tool-agent settings (agent/agent_loop.h) as JSON; "" = plain chat
    std::atomic<bool> busy{false};  // a turn is running
};
using session_ptr = std::shared_ptr<session>;

// How a turn's prompt was fitted into the model's window (fit_to_window).
// Nothing is dropped from the session itself: its events and tokens stay whole.
struct context_window {
    bool truncated = false;
    int32_t n_kept_first = 0;   // tokens kept from the start (the system message, or BOS)
    int32_t n_dropped = 0;      // tokens left out after them
    int32_t n_kept_recent = 0;  // tokens kept at the end (recent messages + the generation prompt)
    // Sparse attention (engine/attention.h): the history is longer than the window and is attended sparsely.
    bool sparse = false;
    int32_t n_sink = 0, n_window = 0, n_pages = 0;  // the engine's effective settings
    int32_t n_pages_resident = 0;                   // pages of the history held in the pool after the turn
    int64_t n_pages_loaded = 0;                     // parked pages read back from the store for the turn
};
// {"truncated": true, "n_kept_first": ..., "n_dropped": ..., "n_kept_recent": ..., "attention": "full" | "sparse",
//  and with sparse: "sink_tokens", "window_tokens", "pages_per_query", "pages_resident", "pages_loaded"}
nlohmann::json context_window_json(const context_window& c);
// After the generation: whether the engine attended sparsely, its settings, the pages resident after the
// turn and the parked pages read back for it.
void note_attention(context_window& c, const engine::attention_report& r);

// The prompt of one turn, made by session_manager::begin_turn.
struct turn_plan {
    std::vector<engine::token_id> prompt;  // session tokens + generation prompt
    std::vector<std::string> stop;         // the template's stop strings
    // For fit_to_window: where each message starts in `prompt` (ascending), and how many
    // leading tokens form the first block kept when the history is cut (the system message,
    // else the BOS token).
    std::vector<int32_t> message_starts;
    int32_t n_first = 0;
    context_window context;  // what fit_to_window did
};

// Makes plan.prompt fit n_ctx tokens with `reserve` of them left for the reply
// (reserve is capped at n_ctx / 2). A prompt that fits is left as is. Otherwise
// the middle is dropped: the prompt becomes prompt[0, n_first) (the system
// message, whole) + prompt[cut, end). The cut moves in coarse steps
// (a quarter of the recent budget, in whole pages) and is moved forward to a
// message start when one lies within half a step, so consecutive turns keep
// the same cut and share their prompt prefix (the engine's prefix cache hits)
// until the history has grown by a step. plan.context says what was kept.
// Errors: context_exceeded when the window is too
// small for that: the system message and the last message are never cut.
status fit_to_window(turn_plan& plan, int32_t n_ctx, int32_t reserve, int32_t page_size = 16);

// A turn's plan for a whole message list (stateless completions): tokens of each
// message (engine::chat_template::encode_message), then the generation prompt.
turn_plan plan_for_messages(const engine::model& m, std::span<const engine::chat_message> messages);

class session_manager {
  public:
    // store: not owned, must outlive the manager.
    session_manager(const engine::model& m, session_store_i& store);

    // Creates a session (id empty -> a random "s_..." id). Persists its
    // metadata and, when the character has one, its system message as the
    // first event. Errors: invalid_argument (bad id), unsupported (id exists),
    // io_error (store).
    // system_extra is appended to the system message (e.g. a tool section);
    // agent_json (tool-agent settings) is kept in the metadata and restored by find().
    result<session_ptr> create(std::string id, character chr, std::string owner_key, std::string system_extra = {},
                               std::string agent_json = {});
    // The session, loaded from the store (events re-rendered) when not in
    // memory. not_found when absent.
    result<session_ptr> find(const std::string& id);
    // not_found when absent.
    status remove(const std::string& id);
    result<std::vector<std::string>> events(const std::string& id);

    // Sets s.busy, appends the new messages durably (one event each), renders
    // their tokens and returns the prompt. Errors: unsupported (busy),
    // invalid_argument (no message), io_error (store; busy is cleared).
    result<turn_plan> begin_turn(const session_ptr& s, const std::vector<engine::chat_message>& new_messages);
    // Within a turn begun by begin_turn (busy set): appends more messages durably (events of type "message";
    // extra[i], when given and an object, adds fields to message i's event, e.g. {"kind": "tool_call"}),
    // renders their tokens and returns the prompt for the next generation. Busy stays set.
    // Errors: invalid_argument (no message, or not busy), io_error (store).
    result<turn_plan> continue_turn(const session_ptr& s, const std::vector<engine::chat_message>& new_messages,
                                    const std::vector<nlohmann::json>& extra);
    // Appends one non-message event (rendered to no tokens; e.g. a pinned note). Returns its sequence number.
    result<uint64_t> append_raw_event(const std::string& id, const nlohmann::json& event);
    session_store_i& store() { return store_; }
    // Called after every durable event appended through this manager (any
    // thread, outside the manager's locks): session id, sequence number, event JSON.
    // The server uses it for its WebSocket event feed. An empty function removes it.
    using event_observer = std::function<void(const std::string& id, uint64_t seq, const std::string& event_json)>;
    void set_event_observer(event_observer fn);
    // Streamed text of a generation that runs outside the server (e.g. a `mnemos play` turn) for
    // session `id`, as it is sampled: not durable, not stored, only passed to the token observer
    // (the server's WebSocket feed publishes it as {"type": "token", ...} frames to the keys that
    // may read the session, before the turn's message event). Any thread; cheap when no observer.
    using token_observer = std::function<void(const std::string& id, std::string_view text)>;
    void set_token_observer(token_observer fn);
    void notify_token(const std::string& id, std::string_view text) const;
    // Appends the assistant reply (durably, unless empty and cancelled) and clears busy.
    status end_turn(const session_ptr& s, const std::string& reply, bool append_reply);
    // The same; fields of `extra` (an object, e.g. {"context": {...}}) are added to the reply's event.
    status end_turn(const session_ptr& s, const std::string& reply, bool append_reply, const nlohmann::json& extra);

    // Sets a named shared prefix text (e.g. game rules), referenced by character::shared_prefix,
    // in memory only (mnemos play registers its scenario's script this way on every run).
    void set_shared_prefix(const std::string& id, std::string text);
    // The same, durably (session_store_i::put_prefix) so that it survives a restart; the
    // manager loads the stored prefixes when it is constructed. Sessions created earlier keep
    // the text they were created with (it is in their first event).
    // Errors: invalid_argument (bad id: 1-64 of [A-Za-z0-9_.-]), io_error (store).
    status put_shared_prefix(const std::string& id, std::string text);
    std::optional<std::string> shared_prefix(const std::string& id) const;
    // Every shared prefix, id -> text.
    std::map<std::string, std::string> shared_prefixes() const;
    size_t n_resident() const;

  private:
    void append_tokens(session& s, size_t msg_idx);
    // The session's tokens plus the assistant header, and the template's stop strings.
    turn_plan plan_for(const session& s) const;
    status append_event(session& s, const engine::chat_message& m, const nlohmann::json* extra = nullptr);

    const engine::model& model_;
    session_store_i& store_;
    mutable std::mutex mu_;                        // guards sessions_, prefixes_
    std::map<std::string, session_ptr> sessions_;  // resident sessions
    std::map<std::string, std::string> prefixes_;  // shared prefix id -> text
    mutable std::mutex observer_mu_;               // guards observer_, token_observer_
    std::shared_ptr<const event_observer> observer_;
    std::shared_ptr<const token_observer> token_observer_;
    void notify(const std::string& id, uint64_t seq, const std::string& event_json) const;
};

// Character <-> JSON. from_json: invalid_argument naming the bad field.
nlohmann::json character_to_json(const character& c, bool include_private);
result<character> character_from_json(const nlohmann::json& j);

// True when s is valid UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
bool valid_utf8(std::string_view s);
// A random lowercase hex string of n characters.
std::string random_hex(size_t n);

}  // namespace mnemos::agent

#pragma once
// session_manager: sessions in memory over a session_store_i; turns append events durably.
//
// Threading: thread-safe; one turn at a time per session (a second concurrent turn is refused with
// errc::busy). That refusal is the last line of defense for in-process callers (mnemos play): the HTTP
// server queues a session's turns (agent/server/server.h, "Concurrency") so its own turns never meet it.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/character.h"
#include "agent/core/context_window.h"
#include "agent/core/session.h"
#include "agent/core/session_store.h"
#include "engine/status.h"

namespace mnemos::agent {

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
    // Drops the session's resident copy (not its stored data): the next find() reloads it from the store.
    // Cluster mode calls it when the session's owner changed. A turn running on it keeps its copy.
    void forget(const std::string& id);
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
    // Progress of work about session `id` that runs outside the server (e.g. `mnemos play`'s warm-up, an
    // object such as {"kind": "warmup", ...}): not durable, only passed to the status observer (the server's
    // WebSocket feed publishes it as {"type": "status", "session_id", "status"} frames). Any thread.
    using status_observer = std::function<void(const std::string& id, const nlohmann::json& status)>;
    void set_status_observer(status_observer fn);
    void notify_status(const std::string& id, const nlohmann::json& status) const;
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
    // Prefix-cache isolation of sessions (agent/core/cache_scope.h): when on, the KV blocks of each session
    // created or loaded afterwards are salted by that session (its shared prefix's stay shared), so no other
    // session or caller reuses them or can tell that they are cached. The server turns it on when it has API
    // keys. Default: off (one principal: mnemos chat, play).
    void set_cache_isolation(bool on) { isolate_ = on; }
    // Turns whose session_store_i::note_tokens failed (logged to stderr; the turn itself is durable).
    int64_t n_note_failures() const { return n_note_failures_.load(); }

  private:
    void append_tokens(session& s, size_t msg_idx);
    // Sets s.scope from its identity and its system message (prefix_text: its shared prefix's, if any).
    void set_scope(session& s, const std::string& prefix_text) const;
    // The session's tokens plus the assistant header, and the template's stop strings.
    turn_plan plan_for(const session& s) const;
    status append_event(session& s, const engine::chat_message& m, const nlohmann::json* extra = nullptr);

    const engine::model& model_;
    session_store_i& store_;
    std::atomic<bool> isolate_{false};
    mutable std::mutex mu_;                        // guards sessions_, prefixes_
    std::map<std::string, session_ptr> sessions_;  // resident sessions
    std::map<std::string, std::string> prefixes_;  // shared prefix id -> text
    mutable std::mutex observer_mu_;               // guards observer_, token_observer_, status_observer_
    std::shared_ptr<const event_observer> observer_;
    std::shared_ptr<const token_observer> token_observer_;
    std::shared_ptr<const status_observer> status_observer_;
    void notify(const std::string& id, uint64_t seq, const std::string& event_json) const;
    std::atomic<int64_t> n_note_failures_{0};
};

}  // namespace mnemos::agent

// recall and note over a session's event log (agent/tooling/event_backed_tools.h).
#include "agent/tooling/event_backed_tools.h"

#include <chrono>
#include <mutex>
#include <optional>

#include "agent/core/event.h"

namespace mnemos::agent {

namespace {

std::chrono::system_clock::time_point from_unix(int64_t ts) {
    return std::chrono::system_clock::time_point(std::chrono::seconds(ts));
}

// A message's or a note's text as recall sees it; nullopt for any other event. System messages are never
// searched: they hold the character's private knowledge and secrets (and are in the model's context anyway),
// and recall's results reach whoever talks to the session (README "Threat model").
std::optional<tools::history_event> history_entry(const event& ev) {
    if (const auto* m = std::get_if<message_event>(&ev)) {
        if (m->role == "system") return std::nullopt;
        return tools::history_event{0, from_unix(m->ts), m->role, m->content};
    }
    if (const auto* n = std::get_if<note_event>(&ev)) return tools::history_event{0, from_unix(n->ts), "note", n->text};
    return std::nullopt;
}

class event_history final : public tools::history_source_i {
  public:
    explicit event_history(session_store_i& st) : st_(st) {}
    result<std::vector<tools::history_event>> events(const std::string& session, uint64_t from, uint64_t to) override {
        auto evs = st_.read_events(session);
        if (!evs) return evs.error();
        std::vector<tools::history_event> out;
        for (uint64_t i = from; i < std::min<uint64_t>(to, evs->size()); ++i) {
            auto ev = parse_event((*evs)[i]);
            if (!ev) continue;
            auto h = history_entry(ev.value());
            if (!h) continue;
            h->seq = i;
            out.push_back(std::move(*h));
        }
        return out;
    }

  private:
    session_store_i& st_;
};

class event_notes final : public tools::notes_store_i {
  public:
    explicit event_notes(session_manager& sm) : sm_(sm) {}
    result<int64_t> pin(const std::string& session, const std::string& text,
                        std::chrono::system_clock::time_point time) override {
        std::lock_guard lk(mu_);  // ids: count + 1, one pin at a time
        auto existing = list(session);
        if (!existing) return existing.error();
        note_event n;
        n.id = static_cast<int64_t>(existing->size()) + 1;
        n.text = text;
        n.ts = std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
        auto r = sm_.append_raw_event(session, event_json(n));
        if (!r) return r.error();
        return n.id;
    }
    result<std::vector<tools::pinned_note>> list(const std::string& session) const override {
        auto evs = sm_.store().read_events(session);
        if (!evs) return evs.error();
        std::vector<tools::pinned_note> out;
        for (const auto& s : evs.value()) {
            auto ev = parse_event(s);
            const auto* n = ev ? std::get_if<note_event>(&ev.value()) : nullptr;
            if (n) out.push_back({n->id, n->text, from_unix(n->ts)});
        }
        return out;
    }

  private:
    session_manager& sm_;
    std::mutex mu_;  // serializes pin (id assignment)
};

}  // namespace

std::shared_ptr<tools::history_source_i> make_event_history(session_store_i& store) {
    return std::make_shared<event_history>(store);
}

std::shared_ptr<tools::notes_store_i> make_event_notes(session_manager& sessions) {
    return std::make_shared<event_notes>(sessions);
}

}  // namespace mnemos::agent

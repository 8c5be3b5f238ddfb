// recall and note over a session's event log (agent/tooling/event_backed_tools.h).
#include "agent/tooling/event_backed_tools.h"

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>

namespace mnemos::agent {

using json = nlohmann::json;

namespace {

class event_history final : public tools::history_source_i {
  public:
    explicit event_history(session_store_i& st) : st_(st) {}
    result<std::vector<tools::history_event>> events(const std::string& session, uint64_t from, uint64_t to) override {
        auto evs = st_.read_events(session);
        if (!evs) return evs.error();
        std::vector<tools::history_event> out;
        for (uint64_t i = from; i < std::min<uint64_t>(to, evs->size()); ++i) {
            json e = json::parse((*evs)[i], nullptr, false);
            if (e.is_discarded() || !e.is_object()) continue;
            tools::history_event h;
            h.seq = i;
            if (e.contains("ts") && e["ts"].is_number_integer())
                h.time = std::chrono::system_clock::time_point(std::chrono::seconds(e["ts"].get<int64_t>()));
            const std::string type = e.value("type", "");
            if (type == "message" && e.contains("content") && e["content"].is_string()) {
                h.role = e.value("role", "");
                h.text = e["content"].get<std::string>();
            } else if (type == "note" && e.contains("text") && e["text"].is_string()) {
                h.role = "note";
                h.text = e["text"].get<std::string>();
            } else {
                continue;
            }
            out.push_back(std::move(h));
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
        const int64_t id = static_cast<int64_t>(existing->size()) + 1;
        const int64_t ts = std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
        auto r = sm_.append_raw_event(session, json{{"type", "note"}, {"id", id}, {"text", text}, {"ts", ts}});
        if (!r) return r.error();
        return id;
    }
    result<std::vector<tools::pinned_note>> list(const std::string& session) const override {
        auto evs = sm_.store().read_events(session);
        if (!evs) return evs.error();
        std::vector<tools::pinned_note> out;
        for (const auto& s : evs.value()) {
            json e = json::parse(s, nullptr, false);
            if (e.is_discarded() || !e.is_object() || e.value("type", "") != "note") continue;
            tools::pinned_note n;
            n.id = e.value("id", int64_t{0});
            n.text = e.value("text", "");
            n.time = std::chrono::system_clock::time_point(std::chrono::seconds(e.value("ts", int64_t{0})));
            out.push_back(std::move(n));
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

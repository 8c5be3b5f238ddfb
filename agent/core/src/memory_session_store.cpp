// The in-process session store, and the default prefix log of every session_store_i.
#include <nlohmann/json.hpp>

#include "agent/core/event.h"
#include "agent/core/session_store.h"
#include "agent/core/util.h"

namespace mnemos::agent {

using json = nlohmann::json;

namespace {

class memory_session_store final : public session_store_i {
  public:
    status put_session(const std::string& id, const std::string& meta_json) override {
        std::lock_guard lk(mu_);
        meta_[id] = meta_json;
        return {};
    }
    result<std::string> get_session(const std::string& id) override {
        std::lock_guard lk(mu_);
        auto it = meta_.find(id);
        if (it == meta_.end()) return make_error(errc::not_found, "no session '" + id + "'");
        return it->second;
    }
    std::vector<std::string> list_sessions() override {
        std::lock_guard lk(mu_);
        std::vector<std::string> v;
        for (auto& [k, _] : meta_)
            if (k != k_prefix_log_id) v.push_back(k);
        return v;
    }
    status delete_session(const std::string& id) override {
        std::lock_guard lk(mu_);
        if (!meta_.erase(id)) return make_error(errc::not_found, "no session '" + id + "'");
        events_.erase(id);
        return {};
    }
    result<uint64_t> append_event(const std::string& id, const std::string& event_json) override {
        std::lock_guard lk(mu_);
        auto& v = events_[id];
        v.push_back(event_json);
        return static_cast<uint64_t>(v.size() - 1);
    }
    result<std::vector<std::string>> read_events(const std::string& id) override {
        std::lock_guard lk(mu_);
        if (!meta_.count(id)) return make_error(errc::not_found, "no session '" + id + "'");
        auto it = events_.find(id);
        if (it == events_.end()) return std::vector<std::string>{};
        return it->second;
    }

  private:
    std::mutex mu_;
    std::map<std::string, std::string> meta_;
    std::map<std::string, std::vector<std::string>> events_;
};

}  // namespace

std::unique_ptr<session_store_i> make_memory_session_store() { return std::make_unique<memory_session_store>(); }

status session_store_i::put_prefix(const std::string& id, const std::string& text) {
    if (!get_session(k_prefix_log_id).ok()) {
        const json meta = {{"id", k_prefix_log_id}, {"reserved", "shared prefixes"}};
        if (auto st = put_session(k_prefix_log_id, meta.dump()); !st.ok()) return st;
    }
    prefix_event ev;
    ev.id = id;
    ev.text = text;
    ev.ts = unix_now();
    auto r = append_event(k_prefix_log_id, event_json_text(ev));
    if (!r) return r.error();
    return {};
}

std::map<std::string, std::string> session_store_i::load_prefixes() {
    std::map<std::string, std::string> out;
    auto evs = read_events(k_prefix_log_id);
    if (!evs) return out;
    for (const auto& text : evs.value()) {
        auto ev = parse_event(text);
        if (const auto* p = ev ? std::get_if<prefix_event>(&ev.value()) : nullptr) out[p->id] = p->text;
    }
    return out;
}

}  // namespace mnemos::agent

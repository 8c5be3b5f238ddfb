#include "agent/cluster/cluster_session_store.h"

#include <algorithm>

#include "cluster/subject_codec.h"

namespace mnemos::agent {

cluster_session_store::cluster_session_store(cluster::event_stream& events, cluster::kv_bucket& sessions,
                                             cluster::kv_bucket& prefixes)
    : events_(events), sessions_(sessions), prefixes_(prefixes) {}

status cluster_session_store::put_session(const std::string& id, const std::string& meta_json) {
    auto r = sessions_.put(cluster::encode_token(id), meta_json);
    return r ? status{} : r.error();
}

result<std::string> cluster_session_store::get_session(const std::string& id) {
    auto e = sessions_.get(cluster::encode_token(id));
    if (!e) {
        if (e.error().code() == errc::not_found) return make_error(errc::not_found, "no session '" + id + "'");
        return e.error();
    }
    return e->value;
}

std::vector<std::string> cluster_session_store::list_sessions() {
    std::vector<std::string> out;
    auto keys = sessions_.keys();
    if (!keys) return out;
    for (const auto& k : *keys)
        if (auto id = cluster::decode_token(k); id && *id != k_prefix_log_id) out.push_back(*id);
    std::sort(out.begin(), out.end());
    return out;
}

status cluster_session_store::delete_session(const std::string& id) {
    auto meta = get_session(id);
    if (!meta) return meta.error();
    if (auto st = events_.purge(id); !st.ok()) return st;
    forget(id);
    return sessions_.erase(cluster::encode_token(id));
}

result<uint64_t> cluster_session_store::append_event(const std::string& id, const std::string& event_json) {
    std::unique_lock lk(mu_);
    auto it = fences_.find(id);
    if (it == fences_.end()) {
        // Never read here (a new session): start from the stream's own last event.
        lk.unlock();
        auto evs = read_events(id);
        if (!evs) return evs.error();
        lk.lock();
        it = fences_.find(id);
        if (it == fences_.end()) return make_error(errc::unavailable, "session '" + id + "' was forgotten meanwhile");
    }
    const fence before = it->second;
    lk.unlock();  // the append waits for the quorum: other sessions' appends go on meanwhile
    auto seq = events_.append(id, event_json, before.last_stream_seq);
    if (!seq) {
        lk.lock();
        fences_.erase(id);
        ++(seq.error().code() == errc::busy ? counters_.fenced : counters_.failed);
        lk.unlock();
        if (on_append_failed_) on_append_failed_(id, seq.error());
        return seq.error();
    }
    lk.lock();
    fences_[id] = fence{*seq, before.n_events + 1};
    ++counters_.appended;
    return before.n_events;
}

result<std::vector<std::string>> cluster_session_store::read_events(const std::string& id) {
    auto evs = events_.read(id);
    if (!evs) return evs.error();
    std::vector<std::string> out;
    out.reserve(evs->size());
    for (auto& e : *evs) out.push_back(std::move(e.data));
    std::lock_guard lk(mu_);
    fences_[id] = fence{evs->empty() ? 0 : evs->back().stream_seq, uint64_t(out.size())};
    return out;
}

status cluster_session_store::put_prefix(const std::string& id, const std::string& text) {
    auto r = prefixes_.put(cluster::encode_token(id), text);
    return r ? status{} : r.error();
}

std::map<std::string, std::string> cluster_session_store::load_prefixes() {
    std::map<std::string, std::string> out;
    auto keys = prefixes_.keys();
    if (!keys) return out;
    for (const auto& k : *keys) {
        auto id = cluster::decode_token(k);
        auto v = prefixes_.get(k);
        if (id && v) out[*id] = v->value;
    }
    return out;
}

void cluster_session_store::forget(const std::string& id) {
    std::lock_guard lk(mu_);
    fences_.erase(id);
}

void cluster_session_store::set_append_failure_hook(std::function<void(const std::string&, const status&)> fn) {
    on_append_failed_ = std::move(fn);
}

cluster_session_store::append_counters cluster_session_store::counters() const {
    std::lock_guard lk(mu_);
    return counters_;
}

}  // namespace mnemos::agent

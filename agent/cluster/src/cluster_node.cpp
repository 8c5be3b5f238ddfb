#include "agent/cluster/cluster_node.h"

#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent/cluster/cluster_session_store.h"
#include "agent/core/prometheus.h"
#include "agent/core/util.h"
#include "cluster/block_tier.h"
#include "cluster/cluster_block_store.h"
#include "cluster/event_stream.h"
#include "cluster/kv_bucket.h"
#include "cluster/lease_table.h"
#include "cluster/nats_client.h"
#include "cluster/subject_codec.h"

namespace mnemos::agent {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

struct cluster_node::held_lease {
    cluster::lease lease;         // as last renewed
    clock_type::time_point used;  // the last request for the session
};

namespace {

std::string default_node_id() {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    return std::string(host) + "-" + std::to_string(getpid());
}

result<std::unique_ptr<cluster::kv_bucket>> open_bucket(cluster::client& c, const char* name, int replicas,
                                                        int64_t ttl_ms) {
    cluster::bucket_options o;
    o.name = name;
    o.replicas = replicas;
    o.ttl_ms = ttl_ms;
    return cluster::kv_bucket::open(c, o);
}

}  // namespace

cluster_node::cluster_node(cluster_options options) : options_(std::move(options)) {}

result<std::unique_ptr<cluster_node>> cluster_node::open(const cluster_options& options) {
    if (options.lease_ttl_ms < 500) return make_error(errc::invalid_argument, "lease TTL must be at least 500 ms");
    std::unique_ptr<cluster_node> n(new cluster_node(options));
    if (n->options_.node_id.empty()) n->options_.node_id = default_node_id();
    cluster::client_options co;
    co.urls = options.urls;
    co.name = "mnemos " + n->options_.node_id;
    auto c = cluster::client::connect(co);
    if (!c) return c.error();
    n->client_ = std::move(*c);
    cluster::stream_options so;
    so.replicas = options.replicas;
    auto ev = cluster::event_stream::open(*n->client_, so);
    if (!ev) return ev.error();
    n->events_ = std::move(*ev);
    struct {
        const char* name;
        int64_t ttl;
        std::unique_ptr<cluster::kv_bucket>* slot;
    } buckets[] = {{"MNEMOS_SESSIONS", 0, &n->sessions_bucket_},
                   {"MNEMOS_PREFIXES", 0, &n->prefixes_bucket_},
                   {"MNEMOS_LEASES", options.lease_ttl_ms, &n->leases_bucket_},
                   {"MNEMOS_NODES", options.lease_ttl_ms, &n->nodes_bucket_},
                   {"MNEMOS_KEYS", 0, &n->keys_bucket_}};
    for (auto& b : buckets) {
        auto opened = open_bucket(*n->client_, b.name, options.replicas, b.ttl);
        if (!opened) return opened.error();
        *b.slot = std::move(*opened);
    }
    cluster::block_tier_options bo;
    bo.replicas = options.replicas;
    auto tier = cluster::block_tier::open(*n->client_, bo);
    if (!tier) return tier.error();
    n->tier_ = std::move(*tier);
    return n;
}

cluster_node::~cluster_node() {
    {
        std::lock_guard lk(mu_);
        if (stop_) return;  // drained
        stop_ = true;
    }
    cv_.notify_all();
    if (renewer_.joinable()) renewer_.join();
    // The runtime (block store, session manager) may be gone already: release the leases only.
    for (auto& [id, h] : held_) (void)leases_->release(h->lease);
    if (leases_) (void)nodes_bucket_->erase(cluster::encode_token(options_.node_id));
}

std::unique_ptr<session_store_i> cluster_node::make_session_store() {
    auto s = std::make_unique<cluster_session_store>(*events_, *sessions_bucket_, *prefixes_bucket_);
    s->set_append_failure_hook([this](const std::string& id, const status& why) {
        std::fprintf(stderr, "mnemos cluster: session '%s' dropped after a failed append: %s\n", id.c_str(),
                     why.message().c_str());
        drop(id);
    });
    store_ = s.get();
    return s;
}

std::unique_ptr<engine::block_store_i> cluster_node::make_block_store(memory::store& local) {
    auto b = std::make_unique<cluster::cluster_block_store>(local, *tier_);
    blocks_ = b.get();
    return b;
}

void cluster_node::attach(session_manager& sessions, const std::string& url) {
    manager_ = &sessions;
    url_ = options_.advertise.empty() ? url : options_.advertise;
    leases_ = std::make_unique<cluster::lease_table>(*leases_bucket_, options_.node_id, url_);
    heartbeat();
    renewer_ = std::thread([this] { renew_loop(); });
}

result<std::string> cluster_node::owner_url(const std::string& session) {
    if (!leases_) return make_error(errc::unavailable, "the cluster node is not serving yet");
    {
        std::lock_guard lk(mu_);
        if (stop_) return make_error(errc::unavailable, "this node is draining");
        auto it = held_.find(session);
        if (it != held_.end()) {
            it->second->used = clock_type::now();
            return std::string();
        }
    }
    auto l = leases_->acquire(session);
    if (!l) return l.error();
    if (l->node != options_.node_id) {
        ++n_redirected_;
        if (l->url.empty())
            return make_error(errc::unavailable,
                              "session '" + session + "' is owned by node " + l->node + ", which advertises no URL");
        return l->url;
    }
    // Newly owned: whatever this node kept of the session may be stale; the next read reloads it.
    if (store_) store_->forget(session);
    if (manager_) manager_->forget(session);
    ++n_acquired_;
    std::lock_guard lk(mu_);
    held_[session] = std::make_unique<held_lease>(held_lease{*l, clock_type::now()});
    return std::string();
}

void cluster_node::drop(const std::string& session) {
    {
        std::lock_guard lk(mu_);
        held_.erase(session);
    }
    if (store_) store_->forget(session);
    if (manager_) manager_->forget(session);
}

void cluster_node::renew_all() {
    std::vector<std::pair<std::string, cluster::lease>> leases;
    std::vector<std::pair<std::string, cluster::lease>> idle;
    const auto now = clock_type::now();
    {
        std::lock_guard lk(mu_);
        for (auto& [id, h] : held_) {
            if (now - h->used > std::chrono::milliseconds(options_.idle_release_ms))
                idle.emplace_back(id, h->lease);
            else
                leases.emplace_back(id, h->lease);
        }
    }
    for (auto& [id, l] : leases) {
        auto st = leases_->renew(l);
        if (st.ok()) {
            std::lock_guard lk(mu_);
            if (auto it = held_.find(id); it != held_.end()) it->second->lease.revision = l.revision;
        } else if (st.code() == errc::busy) {
            std::fprintf(stderr, "mnemos cluster: %s\n", st.message().c_str());
            ++n_lost_;
            drop(id);
        }
    }
    for (auto& [id, l] : idle) {
        drop(id);
        (void)leases_->release(l);
    }
}

void cluster_node::heartbeat() {
    json j = {{"node", options_.node_id}, {"url", url_}, {"updated", unix_now()}};
    {
        std::lock_guard lk(mu_);
        j["sessions_owned"] = held_.size();
    }
    j["sessions_resident"] = manager_ ? manager_->n_resident() : 0;
    (void)nodes_bucket_->put(cluster::encode_token(options_.node_id), j.dump());
}

void cluster_node::sync_prefixes() {
    if (!store_ || !manager_) return;
    for (auto& [id, text] : store_->load_prefixes())
        if (auto have = manager_->shared_prefix(id); !have || *have != text) manager_->set_shared_prefix(id, text);
}

status cluster_node::share_keys(const std::vector<std::pair<std::string, std::string>>& mine,
                                std::function<void(const std::vector<std::string>&)> on_sync) {
    for (const auto& [name, value] : mine)
        if (auto put = keys_bucket_->put(cluster::encode_token(name), value); !put)
            return make_error(put.error().code(), "publishing key '" + name + "': " + put.error().message());
    on_keys_ = std::move(on_sync);
    sync_keys();
    return {};
}

void cluster_node::sync_keys() {
    if (!on_keys_) return;
    auto keys = keys_bucket_->keys();
    if (!keys) return;  // NATS unreachable: keep the last snapshot
    std::vector<std::string> values;
    for (const auto& k : *keys)
        if (auto v = keys_bucket_->get(k)) values.push_back(v->value);
    on_keys_(values);
}

void cluster_node::renew_loop() {
    const auto period = std::chrono::milliseconds(std::max<int64_t>(options_.lease_ttl_ms / 3, 100));
    std::unique_lock lk(mu_);
    while (!stop_) {
        cv_.wait_for(lk, period, [&] { return stop_; });
        if (stop_) break;
        lk.unlock();
        renew_all();
        heartbeat();
        sync_prefixes();
        sync_keys();
        lk.lock();
    }
}

void cluster_node::drain() {
    {
        std::lock_guard lk(mu_);
        if (stop_) return;
        stop_ = true;
    }
    cv_.notify_all();
    if (renewer_.joinable()) renewer_.join();
    std::map<std::string, std::unique_ptr<held_lease>> held;
    {
        std::lock_guard lk(mu_);
        held.swap(held_);
    }
    if (blocks_) blocks_->flush_uploads();
    for (auto& [id, h] : held) (void)leases_->release(h->lease);
    if (leases_) (void)nodes_bucket_->erase(cluster::encode_token(options_.node_id));
}

std::string cluster_node::status_json() {
    json j = {{"node", options_.node_id},
              {"url", url_},
              {"nats", client_->connected_url()},
              {"connected", client_->connected()},
              {"lease_ttl_ms", options_.lease_ttl_ms},
              {"replicas", options_.replicas},
              {"leases_acquired", n_acquired_.load()},
              {"leases_lost", n_lost_.load()},
              {"redirects", n_redirected_.load()}};
    json owned = json::array();
    {
        std::lock_guard lk(mu_);
        for (auto& [id, h] : held_) owned.push_back(id);
    }
    j["sessions_owned"] = owned;
    json nodes = json::array();
    if (auto keys = nodes_bucket_->keys())
        for (const auto& k : *keys)
            if (auto v = nodes_bucket_->get(k)) {
                auto n = json::parse(v->value, nullptr, false);
                if (n.is_object()) nodes.push_back(n);
            }
    j["nodes"] = nodes;
    if (store_) {
        auto c = store_->counters();
        j["appends"] = {{"acknowledged", c.appended}, {"fenced", c.fenced}, {"failed", c.failed}};
    }
    if (blocks_) {
        auto c = blocks_->counters();
        j["blocks"] = {{"local_hits", c.local_hits},
                       {"shared_hits", c.shared_hits},
                       {"shared_misses", c.shared_misses},
                       {"shared_corrupt", c.shared_corrupt},
                       {"uploads", c.uploads},
                       {"upload_skipped", c.upload_skipped},
                       {"upload_failed", c.upload_failed},
                       {"upload_dropped", c.upload_dropped}};
    }
    return j.dump();
}

std::string cluster_node::metrics_text() {
    std::string o;
    const std::string node = "{node=\"" + agent::prom::escape_label_value(options_.node_id) + "\"} ";
    auto metric = [&](const char* name, const char* type, const char* help, int64_t v) {
        agent::prom::write_header(o, name, type, help);
        o += name + node + agent::prom::format_value(static_cast<double>(v)) + "\n";
    };
    int64_t owned = 0;
    {
        std::lock_guard lk(mu_);
        owned = static_cast<int64_t>(held_.size());
    }
    metric("mnemos_cluster_sessions_owned", "gauge", "sessions whose lease this node holds", owned);
    metric("mnemos_cluster_leases_acquired_total", "counter", "session leases this node took", n_acquired_.load());
    metric("mnemos_cluster_leases_lost_total", "counter", "leases this node failed to renew (expired or taken)",
           n_lost_.load());
    metric("mnemos_cluster_redirects_total", "counter", "requests redirected to the session's owner",
           n_redirected_.load());
    if (store_) {
        const auto c = store_->counters();
        metric("mnemos_cluster_appends_total", "counter", "events appended to the stream and acknowledged", c.appended);
        metric("mnemos_cluster_appends_fenced_total", "counter",
               "appends refused because another node appended to the session first", c.fenced);
        metric("mnemos_cluster_appends_failed_total", "counter", "appends not acknowledged (no quorum, timeout)",
               c.failed);
    }
    if (blocks_) {
        const auto c = blocks_->counters();
        metric("mnemos_cluster_block_shared_hits_total", "counter", "KV blocks read from the shared tier",
               c.shared_hits);
        metric("mnemos_cluster_block_uploads_total", "counter", "KV blocks uploaded to the shared tier", c.uploads);
    }
    return o;
}

}  // namespace mnemos::agent

#include "agent/cli/serve_cluster.h"

#ifdef MNEMOS_HAVE_CLUSTER
#include "agent/cluster/cluster_node.h"
#include "agent/server/key_grants.h"
#include "cluster/nats_client.h"
#endif

namespace mnemos::cli {

#ifdef MNEMOS_HAVE_CLUSTER

struct serve_cluster {
    std::unique_ptr<agent::cluster_node> node;
};

namespace {

// Publishes so's keys' grants and accepts the other nodes' (server_options::cluster_keys). An open-access node
// (no keys) publishes nothing and stays open.
status share_key_grants(agent::cluster_node& n, agent::server_options& so) {
    if (so.auth.keys.empty()) return {};
    std::vector<std::pair<std::string, std::string>> mine;
    for (const auto& k : so.auth.keys) mine.emplace_back(k.name, agent::key_grant_json(k));
    auto table = std::make_shared<agent::shared_key_table>();
    auto st = n.share_keys(mine, [table, local = so.auth.keys](const std::vector<std::string>& published) {
        table->update(published, local);
    });
    if (!st.ok()) return st;
    so.cluster_keys = [table] { return table->snapshot(); };
    return {};
}

}  // namespace

result<std::shared_ptr<serve_cluster>> open_serve_cluster(const agent::serve_settings& s, agent::runtime_options& ro,
                                                          agent::server_options& so) {
    if (s.cluster.empty()) return std::shared_ptr<serve_cluster>();
    if (s.store.empty())
        return make_error(errc::invalid_argument, "--cluster needs --store DIR (the node's local cache of KV blocks)");
    auto urls = cluster::parse_url_list(s.cluster);
    if (!urls) return make_error(errc::invalid_argument, "--cluster: " + urls.error().message());
    agent::cluster_options co;
    co.urls = *urls;
    co.node_id = s.node_id;
    co.advertise = s.advertise;
    co.lease_ttl_ms = s.lease_ttl_ms;
    co.replicas = s.cluster_replicas;
    auto node = agent::cluster_node::open(co);
    if (!node) return make_error(node.error().code(), "cluster: " + node.error().message());
    auto c = std::make_shared<serve_cluster>();
    c->node = std::move(*node);
    agent::cluster_node* n = c->node.get();
    if (auto st = share_key_grants(*n, so); !st.ok()) return make_error(st.code(), "cluster: " + st.message());
    ro.make_session_store = [n] { return n->make_session_store(); };
    ro.make_block_store = [n](memory::store& local) { return n->make_block_store(local); };
    so.session_owner = [n](const std::string& id) { return n->owner_url(id); };
    so.cluster_status = [n] { return n->status_json(); };
    so.cluster_metrics = [n] { return n->metrics_text(); };
    return c;
}

void attach_serve_cluster(serve_cluster& c, agent::session_manager& sessions, const std::string& url) {
    c.node->attach(sessions, url);
}

void drain_serve_cluster(serve_cluster& c) { c.node->drain(); }

#else

struct serve_cluster {};

result<std::shared_ptr<serve_cluster>> open_serve_cluster(const agent::serve_settings& s, agent::runtime_options&,
                                                          agent::server_options&) {
    if (s.cluster.empty()) return std::shared_ptr<serve_cluster>();
    return make_error(errc::unsupported,
                      "--cluster: this mnemos was built without cluster mode (the NATS C client, libnats-dev, "
                      "was not found when it was built)");
}

void attach_serve_cluster(serve_cluster&, agent::session_manager&, const std::string&) {}
void drain_serve_cluster(serve_cluster&) {}

#endif

}  // namespace mnemos::cli

// Key grants in the cluster's keys bucket (agent/server/key_grants.h).
#include "agent/server/key_grants.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "engine/sha256.h"
#include "tools/json_limits.h"

namespace mnemos::agent {

namespace {

using json = nlohmann::json;

const char* prefix_name(prefix_grant g) {
    return g == prefix_grant::write ? "write" : g == prefix_grant::read ? "read" : "none";
}

bool is_sha256_hex(const std::string& s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

bool same_grant(const api_key& a, const api_key& b) { return key_grant_json(a) == key_grant_json(b); }

}  // namespace

std::string key_grant_json(const api_key& k) {
    const std::string hash = k.secret_sha256.empty() ? engine::to_hex(engine::sha256::hash(k.key)) : k.secret_sha256;
    json j = {{"name", k.name},         {"secret_sha256", hash},
              {"admin", k.admin},       {"create", k.create},
              {"sessions", k.sessions}, {"characters", k.characters},
              {"read", k.read},         {"prefixes", prefix_name(k.prefixes)},
              {"metrics", k.metrics}};
    if (k.requests_per_minute >= 0) j["requests_per_minute"] = k.requests_per_minute;
    return j.dump();
}

result<api_key> parse_key_grant(const std::string& text) {
    if (tools::json_too_deep(text))
        return make_error(errc::invalid_argument, "key grant: " + tools::json_depth_message());
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error(errc::invalid_argument, "key grant is not a JSON object");
    auto h = j.find("secret_sha256");
    if (h == j.end() || !h->is_string() || !is_sha256_hex(h->get<std::string>()))
        return make_error(errc::invalid_argument, "key grant: secret_sha256 must be 64 lower-case hex digits");
    if (j.contains("key")) return make_error(errc::invalid_argument, "key grant: must not carry a secret");
    const std::string hash = h->get<std::string>();
    j.erase("secret_sha256");
    j["key"] = hash;  // a stand-in so the grant is checked exactly like a configured key; cleared below
    auto cfg = parse_auth_config(json{{"keys", json::array({j})}}.dump());
    if (!cfg) return make_error(errc::invalid_argument, "key grant: " + cfg.error().message());
    api_key k = std::move(cfg->keys.front());
    k.key.clear();
    k.secret_sha256 = hash;
    return k;
}

void shared_key_table::update(const std::vector<std::string>& published, const std::vector<api_key>& local) {
    std::lock_guard lk(mu_);
    const bool changed = published != last_published_;
    auto keys = std::make_shared<std::vector<api_key>>();
    for (const auto& text : published) {
        auto k = parse_key_grant(text);
        if (!k) {
            if (changed)
                std::fprintf(stderr, "mnemos cluster: ignoring a key grant: %s\n", k.error().message().c_str());
            continue;
        }
        const api_key* mine = nullptr;
        for (const auto& l : local)
            if (l.name == k->name) mine = &l;
        if (!mine) {
            keys->push_back(std::move(*k));
        } else if (changed && !same_grant(*mine, *k)) {
            std::fprintf(stderr,
                         "mnemos cluster: key '%s' is published with another secret or grants than this node's; "
                         "this node keeps its own\n",
                         k->name.c_str());
        }
    }
    last_published_ = published;
    keys_ = std::move(keys);
}

std::shared_ptr<const std::vector<api_key>> shared_key_table::snapshot() const {
    std::lock_guard lk(mu_);
    return keys_;
}

}  // namespace mnemos::agent

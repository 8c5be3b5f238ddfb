// The auth config file (agent/server/server.h: parse_auth_config, load_auth_config). One function per key
// field group; names are required and unique, because sessions are owned by a key's name.
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "agent/server/server.h"
#include "tools/json_limits.h"

namespace mnemos::agent {

namespace {

using json = nlohmann::json;

const std::set<std::string> k_key_fields = {"key",        "name", "admin",    "create",  "sessions",
                                            "characters", "read", "prefixes", "metrics", "requests_per_minute"};
constexpr size_t k_max_name_bytes = 128;

status read_name(const json& k, const std::string& where, api_key& a) {
    auto it = k.find("name");
    if (it == k.end())
        return invalid_argument(where + ".name is required: each key needs a unique name (sessions are owned by it)");
    if (!it->is_string()) return invalid_argument(where + ".name must be a string");
    a.name = it->get<std::string>();
    if (a.name.empty() || a.name.size() > k_max_name_bytes)
        return invalid_argument(where + ".name must be 1-" + std::to_string(k_max_name_bytes) + " bytes");
    return {};
}

status read_flags(const json& k, const std::string& where, api_key& a) {
    for (auto [field, out] :
         {std::pair{"admin", &a.admin}, std::pair{"create", &a.create}, std::pair{"metrics", &a.metrics}}) {
        if (!k.contains(field)) continue;
        if (!k[field].is_boolean()) return invalid_argument(where + "." + field + " must be a boolean");
        *out = k[field].get<bool>();
    }
    if (auto it = k.find("prefixes"); it != k.end()) {
        if (!it->is_string() || (*it != "read" && *it != "write" && *it != "none"))
            return invalid_argument(where + ".prefixes must be \"none\", \"read\" or \"write\"");
        a.prefixes = *it == "write" ? prefix_grant::write : *it == "read" ? prefix_grant::read : prefix_grant::none;
    }
    if (k.contains("requests_per_minute")) {
        const json& v = k["requests_per_minute"];
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 1000000)
            return invalid_argument(where + ".requests_per_minute must be an integer from 0 (unlimited) to 1000000");
        a.requests_per_minute = v.get<int32_t>();
    }
    return {};
}

status read_patterns(const json& k, const std::string& where, api_key& a) {
    for (auto [field, out] :
         {std::pair{"sessions", &a.sessions}, std::pair{"characters", &a.characters}, std::pair{"read", &a.read}}) {
        if (!k.contains(field)) continue;
        if (!k[field].is_array()) return invalid_argument(where + "." + field + " must be an array");
        for (const auto& s : k[field]) {
            if (!s.is_string()) return invalid_argument(where + "." + field + " must hold strings");
            out->push_back(s.get<std::string>());
        }
    }
    return {};
}

result<api_key> read_key(const json& k, const std::string& where) {
    if (!k.is_object() || !k.contains("key") || !k["key"].is_string() || k["key"].get<std::string>().empty())
        return invalid_argument(where + ".key must be a non-empty string");
    for (auto it = k.begin(); it != k.end(); ++it)
        if (!k_key_fields.contains(it.key())) return invalid_argument("unknown field '" + where + "." + it.key() + "'");
    api_key a;
    a.key = k["key"].get<std::string>();
    if (auto st = read_flags(k, where, a); !st.ok()) return st;
    if (auto st = read_patterns(k, where, a); !st.ok()) return st;
    if (auto st = read_name(k, where, a); !st.ok()) return st;
    return a;
}

}  // namespace

// Two keys with one name would share every session; two with one secret, one identity.
status check_auth_keys(const std::vector<api_key>& keys) {
    for (size_t i = 0; i < keys.size(); ++i) {
        const std::string at = "keys[" + std::to_string(i) + "]";
        if (keys[i].name.empty()) return invalid_argument(at + ".name is required: each key needs a unique name");
        if (keys[i].key.empty()) return invalid_argument(at + ".key must be a non-empty string");
        for (size_t j = 0; j < i; ++j) {
            if (keys[i].name == keys[j].name)
                return invalid_argument(at + ".name '" + keys[i].name + "' is also keys[" + std::to_string(j) +
                                        "]'s: names must be unique (sessions are owned by a key's name)");
            if (keys[i].key == keys[j].key)
                return invalid_argument(at + ".key is also keys[" + std::to_string(j) +
                                        "]'s: each key needs its own secret");
        }
    }
    return {};
}

result<auth_config> parse_auth_config(const std::string& text) {
    if (tools::json_too_deep(text)) return make_error(errc::invalid_argument, "config: " + tools::json_depth_message());
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error(errc::invalid_argument, "config is not a JSON object");
    auth_config cfg;
    if (auto d = j.find("requests_per_minute"); d != j.end()) {
        if (!d->is_number_integer() || d->get<int64_t>() < 0 || d->get<int64_t>() > 1000000)
            return invalid_argument("requests_per_minute must be an integer from 0 (unlimited) to 1000000");
        cfg.requests_per_minute = d->get<int32_t>();
    }
    auto keys = j.find("keys");
    if (keys == j.end()) return cfg;
    if (!keys->is_array()) return invalid_argument("'keys' must be an array");
    for (size_t i = 0; i < keys->size(); ++i) {
        auto a = read_key((*keys)[i], "keys[" + std::to_string(i) + "]");
        if (!a) return a.error();
        cfg.keys.push_back(std::move(a.value()));
    }
    if (auto st = check_auth_keys(cfg.keys); !st.ok()) return st;
    return cfg;
}

result<auth_config> load_auth_config(const std::string& path) {
    std::ifstream f(path);
    if (!f) return make_error(errc::io_error, "cannot read " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    return parse_auth_config(ss.str());
}

}  // namespace mnemos::agent

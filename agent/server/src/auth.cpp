// Access (auth.h) and the auth config file (agent/server/server.h: parse_auth_config, load_auth_config).
#include "agent/server/src/auth.h"

#include <fstream>
#include <set>
#include <sstream>

#include "agent/server/src/http_reply.h"
#include "agent/server/src/server_state.h"
#include "tools/json_limits.h"

namespace mnemos::agent {

namespace server_detail {

bool pattern_match(const std::vector<std::string>& patterns, const std::string& id) {
    for (const auto& p : patterns) {
        if (p == "*" || p == id) return true;
        if (!p.empty() && p.back() == '*' && id.compare(0, p.size() - 1, p, 0, p.size() - 1) == 0) return true;
    }
    return false;
}

bool can_read(const caller& c, const session& s) {
    if (c.admin()) return true;
    if (!c.key->name.empty() && s.owner_key == c.key->name) return true;
    return pattern_match(c.key->read, s.id);
}

bool can_talk(const caller& c, const session& s) {
    if (can_read(c, s)) return true;
    return pattern_match(c.key->sessions, s.id) ||
           (!s.chr.name.empty() && pattern_match(c.key->characters, s.chr.name));
}

namespace {

bool same_secret(const std::string& a, const std::string& b) {
    if (a.size() != b.size()) return false;
    unsigned char d = 0;
    for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
    return d == 0;
}

// The caller's requests-per-minute limit (0: unlimited) and bucket id (never the key itself).
std::pair<int32_t, std::string> rate_limit_of(const server_state& st, const caller& who,
                                              const beast::tcp_stream& stream) {
    if (!who.key) {
        error_code ec;
        const auto ep = stream.socket().remote_endpoint(ec);
        return {st.opt.requests_per_minute, "addr:" + (ec ? std::string("?") : ep.address().to_string())};
    }
    int32_t rpm = who.key->requests_per_minute;
    if (rpm < 0) rpm = st.opt.auth.requests_per_minute;
    if (rpm < 0) rpm = st.opt.requests_per_minute;
    const size_t idx = static_cast<size_t>(who.key - st.opt.auth.keys.data());
    return {rpm, "key:" + std::to_string(idx)};
}

}  // namespace

std::string query_param(const std::string& target, const std::string& name) {
    const size_t q = target.find('?');
    if (q == std::string::npos) return {};
    size_t p = q + 1;
    while (p < target.size()) {
        size_t e = target.find('&', p);
        if (e == std::string::npos) e = target.size();
        const std::string part = target.substr(p, e - p);
        if (part.compare(0, name.size() + 1, name + "=") == 0) {
            std::string out;
            const std::string v = part.substr(name.size() + 1);
            for (size_t i = 0; i < v.size(); ++i) {
                if (v[i] == '+') {
                    out += ' ';
                } else if (v[i] == '%' && i + 2 < v.size() && std::isxdigit(static_cast<unsigned char>(v[i + 1])) &&
                           std::isxdigit(static_cast<unsigned char>(v[i + 2]))) {
                    out += static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16));
                    i += 2;
                } else {
                    out += v[i];
                }
            }
            return out;
        }
        p = e + 1;
    }
    return {};
}

std::optional<caller> authenticate(const auth_config& auth, const request_t& req, bool allow_query) {
    if (auth.keys.empty()) return caller{};
    std::string key;
    if (auto it = req.find(http::field::authorization); it != req.end()) {
        std::string_view v(it->value().data(), it->value().size());
        if (v.substr(0, 7) == "Bearer ") key = std::string(v.substr(7));
    }
    if (key.empty())
        if (auto it = req.find("X-API-Key"); it != req.end()) key = std::string(it->value());
    if (key.empty() && allow_query) key = query_param(std::string(req.target()), "key");
    if (key.empty()) return std::nullopt;
    for (const auto& k : auth.keys)
        if (same_secret(k.key, key)) return caller{&k};
    return std::nullopt;
}

std::optional<rate_limit_hit> over_rate_limit(server_state& st, const caller& who, const beast::tcp_stream& stream) {
    const auto [rpm, id] = rate_limit_of(st, who, stream);
    const int64_t wait = st.limiter.take(id, rpm);
    if (wait == 0) return std::nullopt;
    st.m.n_rate_limited++;
    return rate_limit_hit{"rate limit exceeded (" + std::to_string(rpm) + " requests per minute); retry in " +
                              std::to_string(wait) + " s",
                          wait};
}

std::optional<reply> rate_limited(server_state& st, const caller& who, const beast::tcp_stream& stream) {
    auto hit = over_rate_limit(st, who, stream);
    if (!hit) return std::nullopt;
    reply r = error_reply(http_refusal::rate_limited, hit->message);
    r.retry_after = hit->retry_after;
    return r;
}

}  // namespace server_detail

using json = nlohmann::json;

// The auth config file. parse_auth_config walks one key per iteration; the checks are one per field.
result<auth_config> parse_auth_config(const std::string& text) {
    if (tools::json_too_deep(text)) return make_error(errc::invalid_argument, "config: " + tools::json_depth_message());
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error(errc::invalid_argument, "config is not a JSON object");
    auth_config cfg;
    if (auto d = j.find("requests_per_minute"); d != j.end()) {
        if (!d->is_number_integer() || d->get<int64_t>() < 0 || d->get<int64_t>() > 1000000)
            return make_error(errc::invalid_argument,
                              "requests_per_minute must be an integer from 0 (unlimited) to 1000000");
        cfg.requests_per_minute = d->get<int32_t>();
    }
    auto keys = j.find("keys");
    if (keys == j.end()) return cfg;
    if (!keys->is_array()) return make_error(errc::invalid_argument, "'keys' must be an array");
    for (size_t i = 0; i < keys->size(); ++i) {
        const json& k = (*keys)[i];
        const std::string where = "keys[" + std::to_string(i) + "]";
        if (!k.is_object() || !k.contains("key") || !k["key"].is_string() || k["key"].get<std::string>().empty())
            return make_error(errc::invalid_argument, where + ".key must be a non-empty string");
        for (auto it = k.begin(); it != k.end(); ++it)
            if (!std::set<std::string>{"key", "name", "admin", "create", "sessions", "characters", "read",
                                       "requests_per_minute"}
                     .contains(it.key()))
                return make_error(errc::invalid_argument, "unknown field '" + where + "." + it.key() + "'");
        api_key a;
        a.key = k["key"].get<std::string>();
        if (!k.value("name", json(where)).is_string())
            return make_error(errc::invalid_argument, where + ".name must be a string");
        a.name = k.value("name", where);
        for (auto [field, out] : {std::pair{"admin", &a.admin}, std::pair{"create", &a.create}}) {
            if (!k.contains(field)) continue;
            if (!k[field].is_boolean())
                return make_error(errc::invalid_argument, where + "." + field + " must be a boolean");
            *out = k[field].get<bool>();
        }
        if (k.contains("requests_per_minute")) {
            const json& v = k["requests_per_minute"];
            if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 1000000)
                return make_error(errc::invalid_argument,
                                  where + ".requests_per_minute must be an integer from 0 (unlimited) to 1000000");
            a.requests_per_minute = v.get<int32_t>();
        }
        for (auto [field, out] :
             {std::pair{"sessions", &a.sessions}, std::pair{"characters", &a.characters}, std::pair{"read", &a.read}}) {
            if (!k.contains(field)) continue;
            if (!k[field].is_array())
                return make_error(errc::invalid_argument, where + "." + field + " must be an array");
            for (const auto& s : k[field]) {
                if (!s.is_string())
                    return make_error(errc::invalid_argument, where + "." + field + " must hold strings");
                out->push_back(s.get<std::string>());
            }
        }
        cfg.keys.push_back(std::move(a));
    }
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

// Access (auth.h); the auth config file is read in auth_config.cpp.
#include "agent/server/src/auth.h"

#include "agent/server/src/http_reply.h"
#include "agent/server/src/server_state.h"
#include "engine/sha256.h"

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
    return {rpm, "key:" + who.key->name};  // names are unique (parse_auth_config)
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

std::optional<caller> authenticate(const auth_config& auth, const request_t& req, bool allow_query,
                                   const std::shared_ptr<const std::vector<api_key>>& shared) {
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
        if (same_secret(k.key, key))
            return caller{std::shared_ptr<const api_key>(std::shared_ptr<const api_key>(), &k)};
    if (!shared || shared->empty()) return std::nullopt;
    const auto digest = engine::sha256::hash(key);
    const std::string hash = engine::to_hex(digest);
    for (const auto& k : *shared)
        if (!k.secret_sha256.empty() && same_secret(k.secret_sha256, hash))
            return caller{std::shared_ptr<const api_key>(shared, &k)};
    return std::nullopt;
}

std::optional<caller> authenticate(const server_state& st, const request_t& req, bool allow_query) {
    if (st.opt.auth.keys.empty() || !st.opt.cluster_keys) return authenticate(st.opt.auth, req, allow_query);
    return authenticate(st.opt.auth, req, allow_query, st.opt.cluster_keys());
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

}  // namespace mnemos::agent

// CORS (cors.h) and the check of configured origins (server.h, check_cors_origin).
#include "agent/server/src/cors.h"

#include <cctype>

namespace mnemos::agent {

status check_cors_origin(std::string_view origin) {
    if (origin == "*") return {};
    const auto bad = [&](const char* why) {
        return make_error(errc::invalid_argument,
                          "CORS origin '" + std::string(origin) + "' " + why +
                              " (expected \"*\" or scheme://host[:port], e.g. http://localhost:3000)");
    };
    size_t start = 0;
    if (origin.starts_with("http://"))
        start = 7;
    else if (origin.starts_with("https://"))
        start = 8;
    else
        return bad("has no http:// or https:// scheme");
    if (origin.size() == start) return bad("has no host");
    if (origin.size() > 256) return bad("is longer than 256 bytes");
    for (size_t i = start; i < origin.size(); ++i) {
        const auto c = static_cast<unsigned char>(origin[i]);
        if (!std::isalnum(c) && c != '.' && c != '-' && c != ':' && c != '[' && c != ']')
            return bad(c == '/' ? "has a path (an origin ends after the host and port)"
                                : "has a character not allowed in a host");
    }
    return {};
}

}  // namespace mnemos::agent

namespace mnemos::agent::server_detail {

namespace {

// Access-Control-Request-Headers when it is a plain list of header names (at most 2 KiB); else "".
std::string requested_headers(const request_t& req) {
    auto it = req.find(http::field::access_control_request_headers);
    if (it == req.end()) return {};
    const std::string_view v = it->value();
    if (v.size() > 2048) return {};
    for (char ch : v) {
        const auto c = static_cast<unsigned char>(ch);
        if (!std::isalnum(c) && c != '-' && c != '_' && c != ',' && c != ' ') return {};
    }
    return std::string(v);
}

}  // namespace

std::string cors_allow_origin(const server_options& o, const request_t& req) {
    if (o.cors_origins.empty()) return {};
    auto it = req.find(http::field::origin);
    if (it == req.end()) return {};
    const std::string_view origin = it->value();
    for (const auto& allowed : o.cors_origins) {
        if (allowed == "*") return "*";
        if (allowed == origin) return allowed;
    }
    return {};
}

void add_cors_headers(http::response_header<>& res, const std::string& origin) {
    res.set(http::field::access_control_allow_origin, origin);
    res.set(http::field::access_control_expose_headers, "Retry-After");
    if (origin != "*") res.set(http::field::vary, "Origin");
}

bool is_preflight(const request_t& req) {
    return req.method() == http::verb::options && req.find(http::field::origin) != req.end() &&
           req.find(http::field::access_control_request_method) != req.end();
}

reply preflight_reply(const server_options& o, const request_t& req, const std::string& methods) {
    const auto origin_field = req.find(http::field::origin);
    const std::string origin = origin_field == req.end() ? "" : std::string(origin_field->value());
    if (cors_allow_origin(o, req).empty())
        return error_reply(http_refusal::forbidden_origin,
                           "origin '" + origin.substr(0, 256) + "' is not allowed (mnemos serve --cors-origin)");
    std::string headers = requested_headers(req);
    if (headers.empty()) headers = "Authorization, Content-Type, X-API-Key";
    reply r{204, "", "text/plain"};
    r.headers = {{"Access-Control-Allow-Methods", methods + ", OPTIONS"},
                 {"Access-Control-Allow-Headers", headers},
                 {"Access-Control-Max-Age", std::to_string(k_cors_max_age_s)}};
    return r;
}

}  // namespace mnemos::agent::server_detail

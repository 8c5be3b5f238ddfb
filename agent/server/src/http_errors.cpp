// The error tables (agent/server/http_errors.h): every status code, OpenAI error type and error code the
// server answers with is written here.
#include "agent/server/http_errors.h"

#include <array>

namespace mnemos::agent::server_detail {

namespace {

// One row per errc value, in enum order.
constexpr std::array<errc_http, 14> k_errc_rows{{
    {errc::ok, 200, "", ""},
    {errc::invalid_argument, 400, "invalid_request_error", "invalid_value"},
    {errc::not_found, 404, "invalid_request_error", "not_found"},
    {errc::io_error, 500, "server_error", "server_error"},
    {errc::corrupt, 500, "server_error", "data_corrupt"},
    {errc::unsupported, 400, "invalid_request_error", "unsupported_parameter"},
    {errc::out_of_memory, 503, "server_error", "overloaded"},
    {errc::cancelled, 503, "server_error", "cancelled"},
    {errc::internal, 500, "server_error", "server_error"},
    {errc::busy, 409, "invalid_request_error", "session_busy"},
    {errc::already_exists, 409, "invalid_request_error", "conflict"},
    {errc::timed_out, 503, "server_error", "timeout"},
    {errc::unavailable, 503, "server_error", "service_unavailable"},
    {errc::context_exceeded, 400, "invalid_request_error", "context_length_exceeded"},
}};

constexpr std::array<refusal_http, 9> k_refusal_rows{{
    {http_refusal::unauthorized, 401, "authentication_error", "invalid_api_key"},
    {http_refusal::forbidden, 403, "permission_error", "insufficient_permissions"},
    {http_refusal::method_not_allowed, 405, "invalid_request_error", "method_not_allowed"},
    {http_refusal::payload_too_large, 413, "invalid_request_error", "payload_too_large"},
    {http_refusal::upgrade_required, 426, "invalid_request_error", "upgrade_required"},
    {http_refusal::headers_too_large, 431, "invalid_request_error", "headers_too_large"},
    {http_refusal::rate_limited, 429, "rate_limit_error", "rate_limit_exceeded"},
    {http_refusal::not_implemented, 501, "invalid_request_error", "not_implemented"},
    {http_refusal::forbidden_origin, 403, "permission_error", "origin_not_allowed"},
}};

constexpr bool rows_in_order() {
    for (size_t i = 0; i < k_errc_rows.size(); ++i)
        if (static_cast<size_t>(k_errc_rows[i].code) != i) return false;
    for (size_t i = 0; i < k_refusal_rows.size(); ++i)
        if (static_cast<size_t>(k_refusal_rows[i].what) != i) return false;
    return true;
}
static_assert(rows_in_order(), "one row per value, in enum order");

}  // namespace

std::span<const errc_http> errc_http_table() { return k_errc_rows; }

const errc_http* find_errc_http(errc c) {
    const auto i = static_cast<size_t>(c);
    return i < k_errc_rows.size() ? &k_errc_rows[i] : nullptr;
}

const errc_http& errc_http_of(errc c) {
    const errc_http* row = find_errc_http(c);
    return row ? *row : k_errc_rows[static_cast<size_t>(errc::internal)];
}

const refusal_http& refusal_http_of(http_refusal r) { return k_refusal_rows.at(static_cast<size_t>(r)); }

}  // namespace mnemos::agent::server_detail

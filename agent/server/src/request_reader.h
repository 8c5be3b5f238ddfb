#pragma once
// The HTTP request parser every connection reads with (connection.cpp), with the field limits of server.h,
// and the status that answers a request it refused. In a header of its own so that the HTTP fuzz target
// (fuzz/fuzz_http.cpp) drives the very parser the server uses.
#include "agent/server/server.h"
#include "agent/server/src/common.h"

namespace mnemos::agent::server_detail {

// The request parser with field limits. Beast 1.81 applies header_limit to the header only, never to a chunked
// body's trailer, and basic_fields throws std::length_error for a field over 64 KiB, from inside async_read's
// completion, which no coroutine can catch: it escapes io_context::run. Here a field over k_max_field_bytes, or
// trailer fields over k_max_trailer_bytes in all, end the parse with header_limit instead (the caller answers 431).
// Trailer fields within the limits are dropped, not merged into the header (RFC 9110 6.5.1): nothing here uses them,
// and a trailing Authorization or Content-Type must not change a request already read.
class bounded_request_parser : public http::request_parser<http::string_body> {
  public:
    explicit bounded_request_parser(size_t max_body_bytes) {
        body_limit(max_body_bytes);
        header_limit(static_cast<std::uint32_t>(k_max_header_bytes));
    }

  private:
    size_t trailer_bytes_ = 0;  // name and value bytes of the trailer fields so far

    void on_field_impl(http::field f, beast::string_view name, beast::string_view value, error_code& ec) override {
        const size_t n = name.size() + value.size();
        if (is_header_done()) trailer_bytes_ += n;
        if (n > k_max_field_bytes || trailer_bytes_ > k_max_trailer_bytes) {
            ec = http::error::header_limit;
            return;
        }
        if (!is_header_done()) get().insert(f, name, value);
    }
};

// The answer to a request the parser refused: 413 body too large, 431 header or trailer too large, else 400.
inline unsigned refused_request_status(const error_code& ec) {
    if (ec == http::error::body_limit) return 413;
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) return 431;
    return 400;
}

}  // namespace mnemos::agent::server_detail

// Lingering close (lingering_close.h).
#include "agent/server/src/lingering_close.h"

#include <array>

namespace mnemos::agent::server_detail {

awaitable<void> lingering_close(beast::tcp_stream& stream, size_t max_bytes, int max_ms) {
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
    std::array<char, 64 * 1024> scratch;
    size_t discarded = 0;
    while (discarded < max_bytes) {
        stream.expires_at(deadline);
        auto [ec, n] = co_await stream.async_read_some(net::buffer(scratch), use_tuple);
        if (ec) break;  // end of stream (the client is done), the deadline, or a reset
        discarded += n;
    }
    stream.socket().close(ignored);
}

}  // namespace mnemos::agent::server_detail

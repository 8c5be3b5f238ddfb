#pragma once
// A lingering close: how a connection ends after an answer sent before the request was read whole (413 for a
// body over the limit, 431, a malformed request). Closing a socket with unread input makes the kernel send a
// reset, which can destroy the answer before the client reads it (Node's fetch then sees ECONNRESET instead of
// the 413). So: shut down the send side (the client gets the whole answer, then end of stream), read and
// discard what the client still sends until it closes, at most k_linger_bytes and k_linger_ms, then close.
#include <cstddef>

#include "agent/server/src/common.h"

namespace mnemos::agent::server_detail {

inline constexpr size_t k_linger_bytes = 64u << 20;  // input discarded at most
inline constexpr int k_linger_ms = 5000;             // time spent discarding at most

awaitable<void> lingering_close(beast::tcp_stream& stream, size_t max_bytes = k_linger_bytes, int max_ms = k_linger_ms);

}  // namespace mnemos::agent::server_detail

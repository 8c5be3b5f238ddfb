#pragma once
// Session ids (printable ASCII, memory::valid_session_id) as NATS subject
// tokens and key-value keys, which allow only [-/_=.a-zA-Z0-9] and give '.'
// a meaning: lower-case hex of the id's bytes, reversible.
#include <optional>
#include <string>
#include <string_view>

namespace mnemos::cluster {

// Lower-case hex of id's bytes ("alice" -> "616c696365").
std::string encode_token(std::string_view id);
// The id back; nullopt when token is not an even-length lower-case hex string.
std::optional<std::string> decode_token(std::string_view token);

}  // namespace mnemos::cluster

#pragma once
// Small utilities of agent/, one copy each: time, ids, UTF-8.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mnemos::agent {

// True when s is valid UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
bool valid_utf8(std::string_view s);
// A random lowercase hex string of n characters.
std::string random_hex(size_t n);
// Seconds since the Unix epoch (event timestamps).
int64_t unix_now();
// A session, prefix or character id: 1-64 characters of [A-Za-z0-9_.-].
bool valid_id(std::string_view id);

}  // namespace mnemos::agent

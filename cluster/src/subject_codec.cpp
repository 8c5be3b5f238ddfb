#include "cluster/subject_codec.h"

namespace mnemos::cluster {

std::string encode_token(std::string_view id) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(id.size() * 2);
    for (unsigned char c : id) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

namespace {
int nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}
}  // namespace

std::optional<std::string> decode_token(std::string_view token) {
    if (token.size() % 2) return std::nullopt;
    std::string out;
    out.reserve(token.size() / 2);
    for (size_t i = 0; i < token.size(); i += 2) {
        int hi = nibble(token[i]), lo = nibble(token[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += char(hi << 4 | lo);
    }
    return out;
}

}  // namespace mnemos::cluster

#include "engine/stop_matcher.h"

#include <algorithm>
#include <utility>

namespace mnemos::engine {

namespace {

// The length of s without an incomplete UTF-8 sequence at its end.
size_t complete_utf8_prefix(std::string_view s) {
    const size_t n = s.size();
    // A sequence is at most 4 bytes: look back at most 3 bytes for its lead byte.
    for (size_t back = 1; back <= std::min<size_t>(4, n); ++back) {
        const auto c = static_cast<unsigned char>(s[n - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte
        size_t need = 1;
        if ((c & 0xE0) == 0xC0)
            need = 2;
        else if ((c & 0xF0) == 0xE0)
            need = 3;
        else if ((c & 0xF8) == 0xF0)
            need = 4;
        return need > back ? n - back : n;
    }
    return n;  // only continuation bytes (invalid UTF-8): emit as is
}

}  // namespace

stop_matcher::stop_matcher(std::vector<std::string> stops) {
    for (auto& s : stops)
        if (!s.empty()) stops_.push_back(std::move(s));
}

std::string stop_matcher::push(std::string_view text) {
    if (stopped_) return "";
    held_ += text;

    // The earliest occurrence of any stop string wins.
    size_t stop_pos = std::string::npos;
    for (const auto& s : stops_) {
        const size_t pos = held_.find(s);
        if (pos < stop_pos) {
            stop_pos = pos;
            matched_ = s;
        }
    }
    if (stop_pos != std::string::npos) {
        stopped_ = true;
        std::string out = held_.substr(0, stop_pos);
        held_.clear();
        return out;
    }

    // Hold back the longest suffix of held_ that is a proper prefix of a stop string.
    size_t n_hold = 0;
    for (const auto& s : stops_) {
        const size_t max_len = std::min(s.size() - 1, held_.size());
        for (size_t len = max_len; len > n_hold; --len) {
            if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
                n_hold = len;
                break;
            }
        }
    }
    const size_t n_emit = complete_utf8_prefix(std::string_view(held_).substr(0, held_.size() - n_hold));
    std::string out = held_.substr(0, n_emit);
    held_.erase(0, n_emit);
    return out;
}

std::string stop_matcher::flush() {
    if (stopped_) return "";
    return std::exchange(held_, std::string());
}

}  // namespace mnemos::engine

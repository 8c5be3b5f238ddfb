// Path matching of the route table (agent/server/router.h).
#include "agent/server/router.h"

namespace mnemos::agent::server_detail {

const std::string& path_params::get(std::string_view name) const {
    static const std::string none;
    for (const auto& [k, v] : items)
        if (k == name) return v;
    return none;
}

namespace {

// The next segment of s after position p (s[p] == '/'); advances p past it.
std::string_view next_segment(std::string_view s, size_t& p) {
    const size_t start = p + 1;
    size_t end = s.find('/', start);
    if (end == std::string_view::npos) end = s.size();
    p = end;
    return s.substr(start, end - start);
}

}  // namespace

bool match_path(std::string_view pattern, std::string_view path, path_params& params) {
    params.items.clear();
    if (pattern.empty() || path.empty() || pattern[0] != '/' || path[0] != '/') return pattern == path;
    if (pattern == "/") return path == "/";
    size_t pp = 0, tp = 0;
    while (pp < pattern.size() && tp < path.size()) {
        const std::string_view want = next_segment(pattern, pp);
        const std::string_view got = next_segment(path, tp);
        const bool param = want.size() >= 2 && want.front() == '{' && want.back() == '}';
        if (param ? got.empty() : want != got) {
            params.items.clear();
            return false;
        }
        if (param) params.items.emplace_back(std::string(want.substr(1, want.size() - 2)), std::string(got));
    }
    if (pp == pattern.size() && tp == path.size()) return true;
    params.items.clear();
    return false;
}

std::string join_methods(const std::vector<boost::beast::http::verb>& methods) {
    std::string out;
    for (size_t i = 0; i < methods.size(); ++i) {
        if (i > 0) out += i + 1 == methods.size() ? " or " : ", ";
        out += std::string(boost::beast::http::to_string(methods[i]));
    }
    return out;
}

}  // namespace mnemos::agent::server_detail

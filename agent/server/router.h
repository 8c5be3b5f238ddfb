#pragma once
// A route table: method + path pattern -> handler. Patterns are literal segments and "{name}"
// segments ("/v1/sessions/{id}/events"); a "{name}" segment matches one non-empty segment and is
// returned as a path parameter. The first route whose pattern and method match wins; a path that
// matches some pattern but no method of it is a 405 (match::allowed says which methods are).
#include <boost/beast/http/verb.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mnemos::agent::server_detail {

// The "{name}" segments of a matched path.
struct path_params {
    std::vector<std::pair<std::string, std::string>> items;
    // The value of name; "" when the pattern has no such parameter.
    const std::string& get(std::string_view name) const;
};

// True when path matches pattern; then params holds the pattern's parameters (else it is cleared).
bool match_path(std::string_view pattern, std::string_view path, path_params& params);

// "GET", "GET or DELETE", "GET, PUT or DELETE": the methods of a 405 answer.
std::string join_methods(const std::vector<boost::beast::http::verb>& methods);

template <class Handler>
class router {
  public:
    // verb::unknown as a method: any method.
    struct route {
        boost::beast::http::verb method;
        std::string pattern;
        Handler handler;
    };
    struct match {
        const route* r = nullptr;  // set: the route to run
        path_params params;        // r's parameters
        bool path_found = false;   // some pattern matched the path (!r: 405, else 404)
        std::string allowed;       // !r && path_found: the methods the path takes, for "use ..."
    };

    router& add(boost::beast::http::verb method, std::string pattern, Handler handler) {
        routes_.push_back({method, std::move(pattern), std::move(handler)});
        return *this;
    }

    match find(boost::beast::http::verb method, std::string_view path) const {
        match m;
        std::vector<boost::beast::http::verb> methods;
        path_params params;
        for (const auto& r : routes_) {
            if (!match_path(r.pattern, path, params)) continue;
            m.path_found = true;
            if (r.method == method || r.method == boost::beast::http::verb::unknown) {
                m.r = &r;
                m.params = std::move(params);
                return m;
            }
            bool seen = false;
            for (auto v : methods) seen = seen || v == r.method;
            if (!seen) methods.push_back(r.method);
        }
        m.allowed = join_methods(methods);
        return m;
    }

    const std::vector<route>& routes() const { return routes_; }

  private:
    std::vector<route> routes_;
};

}  // namespace mnemos::agent::server_detail

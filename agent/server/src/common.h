#pragma once
// What every part of the server shares: the Asio/Beast names, JSON text that never throws, the clock
// of "created" fields, and the completion handler of co_spawn (logs an exception, never drops it).
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>

// GCC 12 warns -Wmismatched-new-delete on Asio's coroutine frames (allocated by aligned_alloc through
// awaitable_frame_base::operator new, freed by its operator delete) wherever its inliner sees both:
// a false positive (GCC PR 109224, fixed in GCC 13). Which coroutines it hits depends on inlining.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace mnemos::agent::server_detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using boost::system::error_code;
using net::awaitable;
using request_t = http::request<http::string_body>;

inline constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// JSON text that never throws (invalid UTF-8 from a model is replaced).
inline std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

inline int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The completion handler of a co_spawn: a coroutine that threw (a bug: expected failures are values)
// is logged as "mnemos serve: <what> failed: ...".
inline auto log_exception(const char* what) {
    return [what](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            std::fprintf(stderr, "mnemos serve: %s failed: %s\n", what, x.what());
        } catch (...) {
            std::fprintf(stderr, "mnemos serve: %s failed\n", what);
        }
    };
}

}  // namespace mnemos::agent::server_detail

// Unit tests of the server's parts that need no model: the rate limiter (with a fake clock), the
// per-session turn queue, the route table, and the errc -> HTTP status / OpenAI type table.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "agent/server/http_errors.h"
#include "agent/server/rate_limiter.h"
#include "agent/server/router.h"
#include "agent/server/turn_queue.h"

using namespace mnemos;
using namespace mnemos::agent::server_detail;
namespace net = boost::asio;
using verb = boost::beast::http::verb;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// rate_limiter
// ---------------------------------------------------------------------------

namespace {

struct fake_clock {
    std::chrono::steady_clock::time_point now{};
    rate_limiter::clock_fn fn() {
        return [this] { return now; };
    }
};

}  // namespace

TEST_CASE("rate limiter: a full bucket allows a burst, then refills at per_minute / 60 per second",
          "[agent][server][rate]") {
    fake_clock clock;
    rate_limiter limiter(clock.fn());
    for (int i = 0; i < 6; ++i) CHECK(limiter.take("a", 6) == 0);  // the burst: 6 tokens
    CHECK(limiter.take("a", 6) == 10);                             // one token per 10 s
    clock.now += 4s;
    CHECK(limiter.take("a", 6) == 6);  // 0.4 tokens back: 6 s more
    clock.now += 6s;
    CHECK(limiter.take("a", 6) == 0);  // a whole token: it goes
    CHECK(limiter.take("a", 6) == 10);
    clock.now += 10min;  // refills up to the bucket's size only
    for (int i = 0; i < 6; ++i) CHECK(limiter.take("a", 6) == 0);
    CHECK(limiter.take("a", 6) > 0);
}

TEST_CASE("rate limiter: callers have their own buckets; 0 is unlimited", "[agent][server][rate]") {
    fake_clock clock;
    rate_limiter limiter(clock.fn());
    CHECK(limiter.take("a", 1) == 0);
    CHECK(limiter.take("a", 1) == 60);
    CHECK(limiter.take("b", 1) == 0);  // another caller is not limited by a's bucket
    for (int i = 0; i < 1000; ++i) REQUIRE(limiter.take("c", 0) == 0);
    clock.now += 30s;
    const int64_t wait = limiter.take("a", 1);  // half a token back: about 30 s more (rounded up)
    CHECK(wait >= 30);
    CHECK(wait <= 31);
    clock.now += 31s;
    CHECK(limiter.take("a", 1) == 0);
}

// ---------------------------------------------------------------------------
// turn_queue
// ---------------------------------------------------------------------------

namespace {

struct turn_log {
    std::vector<std::string> granted;  // names in the order they got the session
    std::vector<std::pair<std::string, turn_wait>> outcomes;
    int running = 0;  // turns holding the session now
    int max_running = 0;
};

// Acquires sid as name, holds it for hold_ms, then lets it go.
net::awaitable<void> take_turn(std::shared_ptr<turn_queue> q, std::string sid, std::string name, int hold_ms,
                               turn_log* log) {
    turn_grant g = co_await q->acquire(sid);
    log->outcomes.emplace_back(name, g.outcome);
    if (g.outcome != turn_wait::granted) co_return;
    REQUIRE(g.slot);
    log->granted.push_back(name);
    log->max_running = std::max(log->max_running, ++log->running);
    net::steady_timer t(co_await net::this_coro::executor, std::chrono::milliseconds(hold_ms));
    co_await t.async_wait(net::use_awaitable);
    --log->running;
}

// Acquires "s", registering the waiter in waiters, and stores the outcome.
net::awaitable<void> acquire_into(std::shared_ptr<turn_queue> q, std::vector<std::weak_ptr<turn_waiter>>* waiters,
                                  turn_wait* out) {
    turn_grant g = co_await q->acquire("s", nullptr, waiters);
    *out = g.outcome;
}

turn_wait outcome_of(const turn_log& log, const std::string& name) {
    for (const auto& [n, w] : log.outcomes)
        if (n == name) return w;
    FAIL("no outcome for " << name);
    return turn_wait::closed;
}

}  // namespace

TEST_CASE("turn queue: turns of one session run one at a time, in arrival order", "[agent][server][turns]") {
    net::io_context io;
    auto q = std::make_shared<turn_queue>(turn_queue::options{8, 0});
    turn_log log;
    for (const char* name : {"a", "b", "c", "d"}) net::co_spawn(io, take_turn(q, "s1", name, 5, &log), net::detached);
    net::co_spawn(io, take_turn(q, "s2", "other", 5, &log), net::detached);  // another session: not queued
    io.run();
    CHECK(log.granted == std::vector<std::string>{"a", "other", "b", "c", "d"});
    CHECK(log.max_running == 2);  // s1 and s2 together, never two turns of s1
    CHECK(q->n_waiting() == 0);
}

TEST_CASE("turn queue: a full queue refuses at once", "[agent][server][turns]") {
    net::io_context io;
    auto q = std::make_shared<turn_queue>(turn_queue::options{1, 0});
    turn_log log;
    for (const char* name : {"a", "b", "c"}) net::co_spawn(io, take_turn(q, "s", name, 20, &log), net::detached);
    io.run();
    CHECK(outcome_of(log, "a") == turn_wait::granted);
    CHECK(outcome_of(log, "b") == turn_wait::granted);
    CHECK(outcome_of(log, "c") == turn_wait::queue_full);
    CHECK(log.outcomes.front().first == "a");
    CHECK(log.outcomes[1].first == "c");  // refused before b's wait ended
}

TEST_CASE("turn queue: a wait times out; the session is free afterwards", "[agent][server][turns]") {
    net::io_context io;
    auto q = std::make_shared<turn_queue>(turn_queue::options{4, 20});
    turn_log log;
    net::co_spawn(io, take_turn(q, "s", "slow", 200, &log), net::detached);
    net::co_spawn(io, take_turn(q, "s", "waiter", 5, &log), net::detached);
    io.run();
    CHECK(outcome_of(log, "slow") == turn_wait::granted);
    CHECK(outcome_of(log, "waiter") == turn_wait::timed_out);
    CHECK(q->n_waiting() == 0);
    io.restart();
    net::co_spawn(io, take_turn(q, "s", "later", 1, &log), net::detached);
    io.run();
    CHECK(outcome_of(log, "later") == turn_wait::granted);
}

TEST_CASE("turn queue: close wakes the waiters and refuses new turns", "[agent][server][turns]") {
    net::io_context io;
    auto q = std::make_shared<turn_queue>(turn_queue::options{4, 0});
    turn_log log;
    net::co_spawn(io, take_turn(q, "s", "holder", 50, &log), net::detached);
    net::co_spawn(io, take_turn(q, "s", "waiter", 5, &log), net::detached);
    net::steady_timer t(io, 10ms);
    t.async_wait([q](const boost::system::error_code&) { q->close(); });
    io.run();
    CHECK(outcome_of(log, "waiter") == turn_wait::closed);
    io.restart();
    net::co_spawn(io, take_turn(q, "s", "late", 1, &log), net::detached);
    io.run();
    CHECK(outcome_of(log, "late") == turn_wait::closed);
}

TEST_CASE("turn queue: an abandoned waiter gets client_gone", "[agent][server][turns]") {
    net::io_context io;
    auto q = std::make_shared<turn_queue>(turn_queue::options{4, 0});
    std::vector<std::weak_ptr<turn_waiter>> waiters;
    turn_wait got = turn_wait::granted;
    auto holder = std::make_shared<turn_log>();
    net::co_spawn(io, take_turn(q, "s", "holder", 50, holder.get()), net::detached);
    net::co_spawn(io, acquire_into(q, &waiters, &got), net::detached);
    net::steady_timer t(io, 10ms);
    t.async_wait([&](const boost::system::error_code&) {
        REQUIRE(waiters.size() == 1);
        waiters[0].lock()->abandon();
    });
    io.run();
    CHECK(got == turn_wait::client_gone);
    CHECK(q->n_waiting() == 0);
}

// ---------------------------------------------------------------------------
// router
// ---------------------------------------------------------------------------

TEST_CASE("router: literal and {param} patterns", "[agent][server][router]") {
    path_params p;
    CHECK(match_path("/v1/sessions", "/v1/sessions", p));
    CHECK(p.items.empty());
    CHECK_FALSE(match_path("/v1/sessions", "/v1/sessions/", p));
    CHECK_FALSE(match_path("/v1/sessions", "/v1/session", p));
    CHECK(match_path("/v1/sessions/{id}/events", "/v1/sessions/npc-1/events", p));
    CHECK(p.get("id") == "npc-1");
    CHECK(p.get("other").empty());
    CHECK_FALSE(match_path("/v1/sessions/{id}", "/v1/sessions/", p));  // a parameter is never empty
    CHECK(p.items.empty());
    CHECK_FALSE(match_path("/v1/sessions/{id}", "/v1/sessions/a/b", p));
    CHECK_FALSE(match_path("/v1/sessions/{id}/events", "/v1/sessions/a", p));
    CHECK(match_path("/", "/", p));
    CHECK_FALSE(match_path("/", "/x", p));
    CHECK(match_path("/{a}/{b}", "/x/y", p));
    CHECK(p.get("a") == "x");
    CHECK(p.get("b") == "y");
}

TEST_CASE("router: method + path -> handler, 404 and 405", "[agent][server][router]") {
    router<int> r;
    r.add(verb::get, "/v1/sessions", 1)
        .add(verb::post, "/v1/sessions", 2)
        .add(verb::get, "/v1/sessions/{id}", 3)
        .add(verb::delete_, "/v1/sessions/{id}", 4)
        .add(verb::post, "/v1/sessions/{id}/messages", 5)
        .add(verb::unknown, "/v1/ws", 6);
    auto m = r.find(verb::post, "/v1/sessions");
    REQUIRE(m.r);
    CHECK(m.r->handler == 2);
    m = r.find(verb::delete_, "/v1/sessions/abc");
    REQUIRE(m.r);
    CHECK(m.r->handler == 4);
    CHECK(m.params.get("id") == "abc");
    m = r.find(verb::post, "/v1/sessions/abc/messages");
    REQUIRE(m.r);
    CHECK(m.r->handler == 5);
    CHECK(m.params.get("id") == "abc");
    for (verb v : {verb::get, verb::post, verb::put}) {  // any method
        m = r.find(v, "/v1/ws");
        REQUIRE(m.r);
        CHECK(m.r->handler == 6);
    }
    // 405: the path is known, the method is not.
    m = r.find(verb::put, "/v1/sessions/abc");
    CHECK_FALSE(m.r);
    CHECK(m.path_found);
    CHECK(m.allowed == "GET or DELETE");
    m = r.find(verb::get, "/v1/sessions/abc/messages");
    CHECK_FALSE(m.r);
    CHECK(m.path_found);
    CHECK(m.allowed == "POST");
    // 404: no pattern matches.
    for (const char* path : {"/v1/nope", "/v1/sessions/abc/nope", "/", "/v1/sessions/"}) {
        m = r.find(verb::get, path);
        CHECK_FALSE(m.r);
        CHECK_FALSE(m.path_found);
    }
    CHECK(join_methods({verb::get, verb::put, verb::delete_}) == "GET, PUT or DELETE");
}

// ---------------------------------------------------------------------------
// errc -> HTTP status and OpenAI error type
// ---------------------------------------------------------------------------

TEST_CASE("http errors: every errc value has exactly one row", "[agent][server][errors]") {
    // errc_name names exactly the enum's values ("unknown" past the last one).
    size_t n_values = 0;
    for (int i = 0; i < 256; ++i) {
        const auto c = static_cast<errc>(i);
        if (std::string(errc_name(c)) == "unknown") continue;
        ++n_values;
        const errc_http* row = find_errc_http(c);
        INFO("errc " << errc_name(c));
        REQUIRE(row);
        CHECK(row->code == c);
        if (c == errc::ok) continue;
        CHECK(row->http_status >= 400);
        CHECK(row->http_status < 600);
        CHECK(std::string(row->type).size() > 0);
        CHECK(std::string(row->openai_code).size() > 0);  // OpenAI's code: always a string
    }
    CHECK(errc_http_table().size() == n_values);
    std::set<int> codes;
    for (const auto& row : errc_http_table()) codes.insert(static_cast<int>(row.code));
    CHECK(codes.size() == n_values);
}

TEST_CASE("http errors: the mapping the API documents", "[agent][server][errors]") {
    auto is = [](errc c, unsigned status, const char* type, const char* code) {
        const errc_http& row = errc_http_of(c);
        return row.http_status == status && std::string(row.type) == type && std::string(row.openai_code) == code;
    };
    CHECK(is(errc::invalid_argument, 400, "invalid_request_error", "invalid_value"));
    CHECK(is(errc::not_found, 404, "invalid_request_error", "not_found"));
    CHECK(is(errc::busy, 409, "invalid_request_error", "session_busy"));
    CHECK(is(errc::already_exists, 409, "invalid_request_error", "conflict"));
    CHECK(is(errc::context_exceeded, 400, "invalid_request_error", "context_length_exceeded"));
    CHECK(is(errc::unsupported, 400, "invalid_request_error", "unsupported_parameter"));
    CHECK(is(errc::out_of_memory, 503, "server_error", "overloaded"));
    CHECK(is(errc::unavailable, 503, "server_error", "service_unavailable"));
    CHECK(is(errc::timed_out, 503, "server_error", "timeout"));
    CHECK(is(errc::cancelled, 503, "server_error", "cancelled"));
    CHECK(is(errc::internal, 500, "server_error", "server_error"));
    CHECK(is(errc::io_error, 500, "server_error", "server_error"));
    CHECK(is(static_cast<errc>(250), 500, "server_error", "server_error"));  // no row: internal's
    CHECK(find_errc_http(static_cast<errc>(250)) == nullptr);
    auto refusal = [](http_refusal r, unsigned status, const char* type, const char* code) {
        const refusal_http& row = refusal_http_of(r);
        return row.what == r && row.http_status == status && std::string(row.type) == type &&
               std::string(row.openai_code) == code;
    };
    CHECK(refusal(http_refusal::unauthorized, 401, "authentication_error", "invalid_api_key"));
    CHECK(refusal(http_refusal::forbidden, 403, "permission_error", "insufficient_permissions"));
    CHECK(refusal(http_refusal::method_not_allowed, 405, "invalid_request_error", "method_not_allowed"));
    CHECK(refusal(http_refusal::payload_too_large, 413, "invalid_request_error", "payload_too_large"));
    CHECK(refusal(http_refusal::upgrade_required, 426, "invalid_request_error", "upgrade_required"));
    CHECK(refusal(http_refusal::headers_too_large, 431, "invalid_request_error", "headers_too_large"));
    CHECK(refusal(http_refusal::rate_limited, 429, "rate_limit_error", "rate_limit_exceeded"));
    CHECK(refusal(http_refusal::not_implemented, 501, "invalid_request_error", "not_implemented"));
    CHECK(refusal(http_refusal::forbidden_origin, 403, "permission_error", "origin_not_allowed"));
}

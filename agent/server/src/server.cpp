// The HTTP server (agent/server.h): Beast coroutines on an io_context run by a
// small thread pool. Each connection runs on its own strand; engine tokens are
// posted back to that strand into a channel the connection's coroutine reads.
// Each session is an actor: its turns (from any connection) run one at a time,
// in arrival order, through turn_queues (a bounded FIFO of waiters per session).
#include "agent/server/server.h"

#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "agent/tooling/agent_loop.h"
#include "tools/json_limits.h"
#include "tools/prompt.h"

namespace mnemos::agent {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using boost::system::error_code;
using net::awaitable;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// JSON text that never throws (invalid UTF-8 from a model is replaced).
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// ---------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------

struct metrics {
    std::atomic<int64_t> n_requests{0};
    std::atomic<int64_t> n_4xx{0};
    std::atomic<int64_t> n_5xx{0};
    std::atomic<int64_t> n_rate_limited{0};  // 429s
    std::atomic<int64_t> n_truncated{0};     // generations whose history was cut to fit the window
    std::atomic<int64_t> n_turns{0};
    std::atomic<int64_t> n_generated{0};  // finish_info::n_generated
    std::atomic<int64_t> n_prompt{0};     // finish_info::n_prompt
    std::atomic<int64_t> n_reused{0};     // finish_info::n_reused (prefix cache hits)
    std::atomic<int64_t> n_connections{0};
    std::atomic<int64_t> n_active_turns{0};
};

// Lets engine-thread callbacks post to the io_context only while it exists.
struct post_gate {
    std::mutex mu;
    bool open = true;
};

struct ws_conn;

// The WebSocket event feed: sockets subscribed to "events".
struct ws_hub {
    session_manager* sessions = nullptr;
    std::mutex mu;  // guards subs
    std::vector<std::weak_ptr<ws_conn>> subs;
    std::atomic<int64_t> n_subscribed{0};
};
using hub_ptr = std::shared_ptr<ws_hub>;

// Token buckets per API key (per client address under open access).
struct rate_limiter {
    struct bucket {
        double tokens = 0;
        std::chrono::steady_clock::time_point last;
    };
    std::mutex mu;  // guards buckets
    std::map<std::string, bucket> buckets;

    // 0 when one request may go now (and takes a token), else the seconds until one may.
    int64_t take(const std::string& id, int32_t per_minute) {
        if (per_minute <= 0) return 0;
        const auto now = std::chrono::steady_clock::now();
        std::lock_guard lk(mu);
        if (buckets.size() > 100000) buckets.clear();  // bounded under open access (many addresses)
        auto [it, fresh] = buckets.try_emplace(id, bucket{static_cast<double>(per_minute), now});
        bucket& b = it->second;
        const double rate = per_minute / 60.0;  // tokens per second
        b.tokens = std::min<double>(per_minute, b.tokens + std::chrono::duration<double>(now - b.last).count() * rate);
        b.last = now;
        if (b.tokens >= 1.0) {
            b.tokens -= 1.0;
            return 0;
        }
        return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1.0 - b.tokens) / rate)));
    }
};

// Per-session turn serialization (each session is an actor): turns of one
// session run one at a time, in arrival order. A turn that finds its session
// running waits in that session's FIFO (at most server_options::
// max_waiting_turns, for at most turn_wait_timeout_ms) on a steady_timer of its
// own strand, so no io thread blocks; the turn that ends hands the session to
// the first waiter by cancelling its timer (posted to the waiter's strand).
// A waiter also wakes when its client disconnects or the server stops.
struct turn_waiter {
    net::steady_timer timer;
    bool granted = false;  // guarded by turn_queues::mu: the session was handed to this waiter
    bool done = false;     // waiter's strand: the wait is over (socket watch and WebSocket close ignore it)
    bool gone = false;     // waiter's strand: the client disconnected
    explicit turn_waiter(net::any_io_executor ex) : timer(std::move(ex)) {}
};
using waiter_ptr = std::shared_ptr<turn_waiter>;

struct turn_queues {
    struct entry {
        bool running = false;  // a turn holds the session
        std::deque<waiter_ptr> waiting;
    };
    std::mutex mu;                            // guards by_session, closed, waiter::granted
    std::map<std::string, entry> by_session;  // only sessions with a running turn
    bool closed = false;                      // stop(): waiters were cancelled; no more grants
    std::atomic<int64_t> n_waiting{0};

    // The turn holding sid ends: hands the session to its first waiter, or frees it.
    void release(const std::string& sid) {
        std::lock_guard lk(mu);
        auto it = by_session.find(sid);
        if (it == by_session.end()) return;
        auto& e = it->second;
        if (!closed && !e.waiting.empty()) {
            waiter_ptr w = std::move(e.waiting.front());
            e.waiting.pop_front();
            n_waiting--;
            w->granted = true;  // e.running stays true: the waiter owns the session now
            net::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
            return;
        }
        e.running = false;
        if (e.waiting.empty()) by_session.erase(it);
    }
    // Wakes every waiter (server stop); they answer 503.
    void close() {
        std::lock_guard lk(mu);
        closed = true;
        for (auto& [sid, e] : by_session)
            for (auto& w : e.waiting) net::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
    }
};

struct server_state {
    server_options opt;
    turn_queues turns;
    rate_limiter limiter;
    engine_runner* runner = nullptr;
    session_manager* sessions = nullptr;
    std::string model_id;
    metrics m;
    std::shared_ptr<post_gate> gate = std::make_shared<post_gate>();
    hub_ptr hub = std::make_shared<ws_hub>();
    std::mutex inflight_mu;             // guards inflight
    std::set<engine::seq_id> inflight;  // for cancel on shutdown
    std::atomic<bool> stopping{false};
};
using state_ptr = std::shared_ptr<server_state>;

// ---------------------------------------------------------------------------
// Replies and errors
// ---------------------------------------------------------------------------

struct reply {
    unsigned status = 200;
    std::string body;
    std::string content_type = "application/json";
    int64_t retry_after = -1;  // seconds, for a Retry-After header (429); -1: none
};

reply error_reply(unsigned status, const std::string& type, const std::string& message) {
    return {status, dump({{"error", {{"message", message}, {"type", type}, {"code", status}}}})};
}

reply status_reply(const status& s) {
    switch (s.code()) {
        case errc::invalid_argument:
            return error_reply(400, "invalid_request_error", s.message());
        case errc::not_found:
            return error_reply(404, "not_found_error", s.message());
        case errc::busy:
        case errc::already_exists:
            return error_reply(409, "conflict_error", s.message());
        case errc::context_exceeded:
            return error_reply(400, "context_length_exceeded", s.message());
        case errc::unsupported:
            return error_reply(400, "invalid_request_error", s.message());
        case errc::timed_out:
        case errc::unavailable:
        case errc::out_of_memory:
            return error_reply(503, "overloaded_error", s.message());
        case errc::cancelled:
            return error_reply(503, "cancelled", s.message());
        default:
            return error_reply(500, "server_error", s.message());
    }
}

reply json_reply(const json& j, unsigned status = 200) { return {status, dump(j)}; }

// ---------------------------------------------------------------------------
// Access control
// ---------------------------------------------------------------------------

struct caller {
    const api_key* key = nullptr;  // nullptr: open access
    std::string name() const { return key ? key->name : std::string(); }
    bool admin() const { return !key || key->admin; }
};

bool pattern_match(const std::vector<std::string>& patterns, const std::string& id) {
    for (const auto& p : patterns) {
        if (p == "*" || p == id) return true;
        if (!p.empty() && p.back() == '*' && id.compare(0, p.size() - 1, p, 0, p.size() - 1) == 0) return true;
    }
    return false;
}

bool can_read(const caller& c, const session& s) {
    if (c.admin()) return true;
    if (!c.key->name.empty() && s.owner_key == c.key->name) return true;
    return pattern_match(c.key->read, s.id);
}

bool can_talk(const caller& c, const session& s) {
    if (can_read(c, s)) return true;
    return pattern_match(c.key->sessions, s.id) ||
           (!s.chr.name.empty() && pattern_match(c.key->characters, s.chr.name));
}

// The caller's requests-per-minute limit (0: unlimited) and bucket id (never the key itself).
std::pair<int32_t, std::string> rate_limit_of(const server_state& st, const caller& who,
                                              const beast::tcp_stream& stream) {
    if (!who.key) {
        error_code ec;
        const auto ep = stream.socket().remote_endpoint(ec);
        return {st.opt.requests_per_minute, "addr:" + (ec ? std::string("?") : ep.address().to_string())};
    }
    int32_t rpm = who.key->requests_per_minute;
    if (rpm < 0) rpm = st.opt.auth.requests_per_minute;
    if (rpm < 0) rpm = st.opt.requests_per_minute;
    const size_t idx = static_cast<size_t>(who.key - st.opt.auth.keys.data());
    return {rpm, "key:" + std::to_string(idx)};
}

// When the caller is over its rate limit: the error message and the seconds to wait.
struct rate_limit_hit {
    std::string message;
    int64_t retry_after = 0;
};
std::optional<rate_limit_hit> over_rate_limit(server_state& st, const caller& who, const beast::tcp_stream& stream) {
    const auto [rpm, id] = rate_limit_of(st, who, stream);
    const int64_t wait = st.limiter.take(id, rpm);
    if (wait == 0) return std::nullopt;
    st.m.n_rate_limited++;
    return rate_limit_hit{"rate limit exceeded (" + std::to_string(rpm) + " requests per minute); retry in " +
                              std::to_string(wait) + " s",
                          wait};
}

// A 429 reply (with Retry-After) when the caller is over its rate limit.
std::optional<reply> rate_limited(server_state& st, const caller& who, const beast::tcp_stream& stream) {
    auto hit = over_rate_limit(st, who, stream);
    if (!hit) return std::nullopt;
    reply r = error_reply(429, "rate_limit_error", hit->message);
    r.retry_after = hit->retry_after;
    return r;
}

bool same_secret(const std::string& a, const std::string& b) {
    if (a.size() != b.size()) return false;
    unsigned char d = 0;
    for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
    return d == 0;
}

// The caller of req; nullopt when keys are configured and req has no valid key.
// The value of name in the query string of target ("" when absent), %XX and '+' decoded.
std::string query_param(const std::string& target, const std::string& name) {
    const size_t q = target.find('?');
    if (q == std::string::npos) return {};
    size_t p = q + 1;
    while (p < target.size()) {
        size_t e = target.find('&', p);
        if (e == std::string::npos) e = target.size();
        const std::string part = target.substr(p, e - p);
        if (part.compare(0, name.size() + 1, name + "=") == 0) {
            std::string out;
            const std::string v = part.substr(name.size() + 1);
            for (size_t i = 0; i < v.size(); ++i) {
                if (v[i] == '+') {
                    out += ' ';
                } else if (v[i] == '%' && i + 2 < v.size() && std::isxdigit(static_cast<unsigned char>(v[i + 1])) &&
                           std::isxdigit(static_cast<unsigned char>(v[i + 2]))) {
                    out += static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16));
                    i += 2;
                } else {
                    out += v[i];
                }
            }
            return out;
        }
        p = e + 1;
    }
    return {};
}

// allow_query: a "?key=" query parameter is accepted too (WebSocket upgrades: browsers cannot set headers).
std::optional<caller> authenticate(const server_state& st, const http::request<http::string_body>& req,
                                   bool allow_query = false) {
    if (st.opt.auth.keys.empty()) return caller{};
    std::string key;
    if (auto it = req.find(http::field::authorization); it != req.end()) {
        std::string_view v(it->value().data(), it->value().size());
        if (v.substr(0, 7) == "Bearer ") key = std::string(v.substr(7));
    }
    if (key.empty())
        if (auto it = req.find("X-API-Key"); it != req.end()) key = std::string(it->value());
    if (key.empty() && allow_query) key = query_param(std::string(req.target()), "key");
    if (key.empty()) return std::nullopt;
    for (const auto& k : st.opt.auth.keys)
        if (same_secret(k.key, key)) return caller{&k};
    return std::nullopt;
}

// ---------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------

// Sampling and limits common to chat completions and session messages.
struct gen_params {
    int32_t max_tokens = -1;  // -1: default
    engine::sampler_params sampling;
    std::vector<std::string> stop;
    bool stream = false;
};

status parse_gen_params(const json& b, gen_params& g) {
    g.sampling.temperature = 1.0f;  // OpenAI defaults
    g.sampling.top_p = 1.0f;
    g.sampling.top_k = 0;
    g.sampling.min_p = 0.0f;
    auto number = [&](const char* key, double lo, double hi, auto& out) -> status {
        auto it = b.find(key);
        if (it == b.end() || it->is_null()) return {};
        if (!it->is_number()) return make_error(errc::invalid_argument, std::string("'") + key + "' must be a number");
        const double v = it->get<double>();
        if (!(v >= lo && v <= hi))
            return make_error(errc::invalid_argument, std::string("'") + key + "' must be in [" + std::to_string(lo) +
                                                          ", " + std::to_string(hi) + "]");
        out = static_cast<std::remove_reference_t<decltype(out)>>(v);
        return {};
    };
    for (const char* key : {"max_tokens", "max_completion_tokens"}) {
        auto it = b.find(key);
        if (it == b.end() || it->is_null()) continue;
        if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1 << 20)
            return make_error(errc::invalid_argument, std::string("'") + key + "' must be a positive integer");
        g.max_tokens = static_cast<int32_t>(it->get<int64_t>());
    }
    for (auto st : {number("temperature", 0, 2, g.sampling.temperature), number("top_p", 0, 1, g.sampling.top_p),
                    number("top_k", 0, 1e6, g.sampling.top_k), number("min_p", 0, 1, g.sampling.min_p),
                    number("presence_penalty", -2, 2, g.sampling.presence_penalty),
                    number("frequency_penalty", -2, 2, g.sampling.frequency_penalty)})
        if (!st.ok()) return st;
    if (g.sampling.top_p <= 0) return make_error(errc::invalid_argument, "'top_p' must be > 0");
    if (auto it = b.find("seed"); it != b.end() && !it->is_null()) {
        if (!it->is_number_integer()) return make_error(errc::invalid_argument, "'seed' must be an integer");
        g.sampling.seed = static_cast<uint64_t>(it->get<int64_t>());
    }
    if (auto it = b.find("stop"); it != b.end() && !it->is_null()) {
        if (it->is_string()) {
            g.stop.push_back(it->get<std::string>());
        } else if (it->is_array() && it->size() <= 4) {
            for (const auto& s : *it) {
                if (!s.is_string()) return make_error(errc::invalid_argument, "'stop' must hold strings");
                g.stop.push_back(s.get<std::string>());
            }
        } else {
            return make_error(errc::invalid_argument, "'stop' must be a string or an array of at most 4 strings");
        }
        for (const auto& s : g.stop)
            if (s.empty() || !valid_utf8(s))
                return make_error(errc::invalid_argument, "'stop' strings must be non-empty UTF-8");
    }
    if (auto it = b.find("stream"); it != b.end() && !it->is_null()) {
        if (!it->is_boolean()) return make_error(errc::invalid_argument, "'stream' must be a boolean");
        g.stream = it->get<bool>();
    }
    if (auto it = b.find("n"); it != b.end() && !it->is_null() && (!it->is_number_integer() || it->get<int64_t>() != 1))
        return make_error(errc::invalid_argument, "only 'n': 1 is supported");
    return {};
}

// Message content: a string, null, or an array of {"type": "text", "text": ...} parts.
status parse_content(const json& c, std::string& out) {
    if (c.is_null()) return {};
    if (c.is_string()) {
        out = c.get<std::string>();
    } else if (c.is_array()) {
        for (const auto& p : c) {
            if (!p.is_object() || p.value("type", json()) != json("text") || !p.contains("text") ||
                !p["text"].is_string())
                return make_error(errc::invalid_argument,
                                  "content parts must be {\"type\": \"text\", \"text\": string}");
            out += p["text"].get<std::string>();
        }
    } else {
        return make_error(errc::invalid_argument, "'content' must be a string or an array of text parts");
    }
    if (!valid_utf8(out)) return make_error(errc::invalid_argument, "'content' is not valid UTF-8");
    return {};
}

status parse_messages(const json& b, std::vector<engine::chat_message>& out) {
    auto it = b.find("messages");
    if (it == b.end() || !it->is_array() || it->empty())
        return make_error(errc::invalid_argument, "'messages' must be a non-empty array");
    if (it->size() > k_max_messages)
        return make_error(errc::invalid_argument, "'messages' has " + std::to_string(it->size()) +
                                                      " entries; at most " + std::to_string(k_max_messages) +
                                                      " messages per request");
    std::map<std::string, std::string> call_names;  // tool_call_id -> function name
    for (const auto& m : *it) {
        if (!m.is_object()) return make_error(errc::invalid_argument, "each message must be an object");
        auto r = m.find("role");
        if (r == m.end() || !r->is_string())
            return make_error(errc::invalid_argument, "each message needs a string 'role'");
        std::string role = r->get<std::string>();
        if (role == "developer") role = "system";
        if (role != "system" && role != "user" && role != "assistant" && role != "tool")
            return make_error(errc::invalid_argument, "unknown role '" + role + "'");
        engine::chat_message cm{role, {}};
        if (auto c = m.find("content"); c != m.end()) {
            if (auto st = parse_content(*c, cm.content); !st.ok()) return st;
        } else if (role != "assistant") {
            return make_error(errc::invalid_argument, "message needs 'content'");
        }
        if (auto tc = m.find("tool_calls"); role == "assistant" && tc != m.end() && !tc->is_null()) {
            if (!tc->is_array()) return make_error(errc::invalid_argument, "'tool_calls' must be an array");
            for (const auto& c : *tc) {
                auto f = c.is_object() ? c.find("function") : c.end();
                if (!c.is_object() || f == c.end() || !f->is_object() || !f->contains("name") ||
                    !(*f)["name"].is_string())
                    return make_error(errc::invalid_argument, "each tool call needs 'function.name'");
                json args = json::object();
                if (auto a = f->find("arguments"); a != f->end() && !a->is_null()) {
                    if (a->is_string() && tools::json_too_deep(a->get_ref<const std::string&>()))
                        return make_error(errc::invalid_argument,
                                          "tool call arguments: " + tools::json_depth_message());
                    args = a->is_string() ? json::parse(a->get<std::string>(), nullptr, false) : *a;
                    if (args.is_discarded() || !args.is_object())
                        return make_error(errc::invalid_argument, "tool call arguments must be a JSON object");
                }
                const std::string name = (*f)["name"].get<std::string>();
                if (c.contains("id") && c["id"].is_string()) call_names[c["id"].get<std::string>()] = name;
                cm.content += (cm.content.empty() ? "" : "\n") + hermes_tool_call(name, args);
            }
        }
        if (role == "tool") {
            std::string name = m.value("name", json("")).is_string() ? m.value("name", "") : "";
            if (auto id = m.find("tool_call_id"); id != m.end() && id->is_string())
                if (auto it = call_names.find(id->get<std::string>()); it != call_names.end()) name = it->second;
            if (tools::json_too_deep(cm.content))
                return make_error(errc::invalid_argument, "tool message content: " + tools::json_depth_message());
            json content = json::parse(cm.content, nullptr, false);
            if (content.is_discarded()) content = cm.content;
            cm.content = tools::render_tool_response(name, content);
        }
        out.push_back(std::move(cm));
    }
    return {};
}

// ---------------------------------------------------------------------------
// WebSocket connections and the event feed
// ---------------------------------------------------------------------------

using ws_stream = websocket::stream<beast::tcp_stream>;
using out_channel = net::experimental::channel<void(error_code, std::string)>;

// One WebSocket connection. Everything but construction runs on its strand.
struct ws_conn {
    ws_stream ws;
    out_channel out;  // frames to write, drained by ws_writer
    caller who;
    bool subscribed = false;
    bool closed = false;
    std::vector<std::weak_ptr<turn_waiter>> waiters;  // turns of this socket waiting for their session
    ws_conn(ws_stream s, caller c) : ws(std::move(s)), out(ws.get_executor(), 1024), who(c) {}
};

// Sends frame to every subscribed socket whose key may read session sid. Any thread.
void publish(const hub_ptr& hub, const std::string& sid, std::string frame) {
    std::vector<std::shared_ptr<ws_conn>> subs;
    {
        std::lock_guard lk(hub->mu);
        auto& v = hub->subs;
        v.erase(std::remove_if(v.begin(), v.end(), [](const auto& w) { return w.expired(); }), v.end());
        for (const auto& w : v)
            if (auto c = w.lock()) subs.push_back(std::move(c));
    }
    if (subs.empty()) return;
    auto shared = std::make_shared<const std::string>(std::move(frame));
    for (auto& c : subs) {
        auto ex = c->ws.get_executor();
        net::post(ex, [c, sid, shared, sessions = hub->sessions] {
            if (!c->subscribed || c->closed) return;
            if (!c->who.admin()) {
                auto s = sessions->find(sid);
                if (!s || !can_read(c->who, *s.value())) return;
            }
            c->out.try_send(error_code{}, std::string(*shared));  // a full queue drops the frame (slow reader)
        });
    }
}

// A {"type": "token"} frame of session sid's streamed text to the subscribers that may read it. Any thread.
void publish_token(const hub_ptr& hub, const std::string& sid, std::string_view text) {
    if (sid.empty() || text.empty() || hub->n_subscribed == 0) return;
    publish(hub, sid, dump(json{{"type", "token"}, {"session_id", sid}, {"text", std::string(text)}}));
}

// ---------------------------------------------------------------------------
// Per-session turn order (turn_queues)
// ---------------------------------------------------------------------------

// Holds a session for one turn (begin_turn .. end_turn and the reply); the next waiter gets it on destruction.
struct turn_slot {
    state_ptr st;
    std::string sid;
    turn_slot(state_ptr s, std::string id) : st(std::move(s)), sid(std::move(id)) {}
    turn_slot(const turn_slot&) = delete;
    turn_slot& operator=(const turn_slot&) = delete;
    ~turn_slot() { st->turns.release(sid); }
};

struct turn_ticket {
    std::unique_ptr<turn_slot> slot;  // set: the turn may run
    reply err;                        // otherwise: why not (409 queue full / timed out, 503 stopping)
    bool client_gone = false;         // otherwise: the client disconnected while waiting
};

// Waits (asynchronously, on the calling coroutine's strand) until the session
// runs no other server turn, in arrival order (then 404 if it was deleted meanwhile). watch: the HTTP connection's
// socket, watched for a disconnect while waiting; wc: the WebSocket connection
// (serve_ws wakes its waiters when it closes).
awaitable<turn_ticket> acquire_turn(state_ptr st, const session* expect, tcp::socket* watch, ws_conn* wc) {
    const std::string sid = expect->id;
    turn_ticket t;
    auto& q = st->turns;
    auto ex = co_await net::this_coro::executor;
    waiter_ptr w;
    {
        std::lock_guard lk(q.mu);
        if (q.closed || st->stopping) {
            t.err = error_reply(503, "server_error", "the server is shutting down");
            co_return t;
        }
        auto& e = q.by_session[sid];
        if (!e.running) {
            e.running = true;
            t.slot = std::make_unique<turn_slot>(st, sid);
            co_return t;
        }
        const auto max_waiting = static_cast<size_t>(std::max(st->opt.max_waiting_turns, 0));
        if (e.waiting.size() >= max_waiting) {
            t.err = error_reply(409, "conflict_error",
                                "session '" + sid + "' is busy: " + std::to_string(max_waiting) +
                                    " turns are already waiting for it; retry later");
            co_return t;
        }
        w = std::make_shared<turn_waiter>(ex);
        if (st->opt.turn_wait_timeout_ms > 0)
            w->timer.expires_after(std::chrono::milliseconds(st->opt.turn_wait_timeout_ms));
        else
            w->timer.expires_at(net::steady_timer::time_point::max());
        e.waiting.push_back(w);
        q.n_waiting++;
    }
    if (wc) {
        auto& v = wc->waiters;
        v.erase(std::remove_if(v.begin(), v.end(), [](const auto& x) { return x.expired(); }), v.end());
        v.push_back(w);
    }
    if (watch) {
        // Readable while waiting: the client closed (EOF) or pipelined its next request (then stop watching).
        watch->async_wait(tcp::socket::wait_read, [w, watch](const error_code& ec) {
            if (ec || w->done) return;
            char b;
            const ssize_t n = ::recv(watch->native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                w->gone = true;
                w->timer.cancel();
            }
        });
    }
    co_await w->timer.async_wait(use_tuple);
    w->done = true;
    if (watch) {
        error_code ignored;
        watch->cancel(ignored);
    }
    {
        std::lock_guard lk(q.mu);
        if (w->granted) {
            t.slot = std::make_unique<turn_slot>(st, sid);
        } else {
            auto it = q.by_session.find(sid);
            if (it != q.by_session.end()) {
                auto& ws = it->second.waiting;
                if (auto p = std::find(ws.begin(), ws.end(), w); p != ws.end()) {
                    ws.erase(p);
                    q.n_waiting--;
                }
                if (!it->second.running && ws.empty()) q.by_session.erase(it);
            }
        }
    }
    if (t.slot && !st->stopping) {
        // The session may have been deleted (or replaced) while this turn waited.
        auto cur = st->sessions->find(sid);
        if (cur && cur.value().get() == expect) co_return t;
        t.slot.reset();
        t.err = error_reply(404, "not_found_error", "no session '" + sid + "'");
        co_return t;
    }
    t.slot.reset();  // (stopping: hands the session on, or frees it)
    if (st->stopping || q.closed) {
        t.err = error_reply(503, "server_error", "the server is shutting down");
    } else if (w->gone) {
        t.client_gone = true;
        t.err = error_reply(499, "invalid_request_error", "client disconnected while waiting");
    } else {
        t.err = error_reply(409, "conflict_error",
                            "session '" + sid + "' is busy: timed out after " +
                                std::to_string(st->opt.turn_wait_timeout_ms) +
                                " ms waiting for its earlier turns; retry later");
    }
    co_return t;
}

// ---------------------------------------------------------------------------
// One turn on the engine
// ---------------------------------------------------------------------------

struct turn_event {
    std::string text;
    bool done = false;
    engine::finish_info info;
};
using turn_channel = net::experimental::channel<void(error_code, turn_event)>;

struct turn_outcome {
    std::string text;
    engine::finish_info info;
    bool client_gone = false;
};

// Called with each text delta; returns false when the client is gone.
using delta_fn = std::function<awaitable<bool>(std::string)>;

// Submits r, forwards its text to on_delta (may be empty) on the calling
// coroutine's strand, and returns when the engine finished it.
// sid: the session of the turn; its tokens also go to the event feed.
awaitable<turn_outcome> run_turn(state_ptr st, engine::request r, delta_fn on_delta, std::string sid = {}) {
    auto ex = co_await net::this_coro::executor;
    auto ch = std::make_shared<turn_channel>(ex, static_cast<size_t>(std::max(r.max_tokens, 0)) + 8);
    auto gate = st->gate;
    auto hub = st->hub;
    r.on_token = [ch, ex, gate, hub, sid](engine::token_id, std::string_view text) {
        std::lock_guard lk(gate->mu);
        if (!gate->open) return;
        publish_token(hub, sid, text);
        net::post(ex, [ch, t = std::string(text)]() mutable {
            ch->try_send(error_code{}, turn_event{std::move(t), false, {}});
        });
    };
    r.on_finish = [ch, ex, gate](const engine::finish_info& info) {
        std::lock_guard lk(gate->mu);
        if (!gate->open) return;
        net::post(ex, [ch, info] { ch->try_send(error_code{}, turn_event{{}, true, info}); });
    };
    st->m.n_active_turns++;
    const engine::seq_id id = st->runner->submit(std::move(r));
    {
        std::lock_guard lk(st->inflight_mu);
        st->inflight.insert(id);
    }
    turn_outcome out;
    for (;;) {
        auto [ec, ev] = co_await ch->async_receive(use_tuple);
        if (ec) {
            out.info.reason = engine::finish_reason::error;
            out.info.error = make_error(errc::internal, "token channel: " + ec.message());
            break;
        }
        if (ev.done) {
            out.info = std::move(ev.info);
            break;
        }
        out.text += ev.text;
        if (on_delta && !out.client_gone && !ev.text.empty()) {
            if (!co_await on_delta(ev.text)) {
                out.client_gone = true;
                st->runner->cancel(id);
            }
        }
    }
    {
        std::lock_guard lk(st->inflight_mu);
        st->inflight.erase(id);
    }
    st->m.n_active_turns--;
    st->m.n_turns++;
    st->m.n_generated += out.info.n_generated;
    st->m.n_prompt += out.info.n_prompt;
    st->m.n_reused += out.info.n_reused;
    co_return out;
}

const char* openai_finish(engine::finish_reason r) {
    switch (r) {
        case engine::finish_reason::length:
            return "length";
        case engine::finish_reason::cancelled:
            return "cancelled";
        case engine::finish_reason::error:
            return "error";
        default:
            return "stop";
    }
}

json usage_json(const engine::finish_info& i) {
    return {{"prompt_tokens", i.n_prompt},
            {"completion_tokens", i.n_generated},
            {"total_tokens", i.n_prompt + i.n_generated},
            {"prompt_tokens_details", {{"cached_tokens", i.n_reused}}}};
}

// ---------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------

using request_t = http::request<http::string_body>;

awaitable<bool> write_reply(beast::tcp_stream& stream, const request_t& req, reply rep, state_ptr st) {
    http::response<http::string_body> res{static_cast<http::status>(rep.status), req.version()};
    res.set(http::field::server, "mnemos");
    res.set(http::field::content_type, rep.content_type);
    if (rep.retry_after >= 0) res.set(http::field::retry_after, std::to_string(rep.retry_after));
    res.keep_alive(req.keep_alive() && rep.status < 500 && !st->stopping);
    res.body() = std::move(rep.body);
    res.prepare_payload();
    if (rep.status >= 500)
        st->m.n_5xx++;
    else if (rep.status >= 400)
        st->m.n_4xx++;
    stream.expires_after(std::chrono::seconds(30));
    auto [ec, n] = co_await http::async_write(stream, res, use_tuple);
    co_return !ec && res.keep_alive();
}

// An SSE response: header once, then "data: ...\n\n" chunks (chunked transfer encoding).
struct sse_writer {
    beast::tcp_stream* stream = nullptr;
    bool header_sent = false;
    bool ok = true;
};

awaitable<bool> sse_send(sse_writer* w, unsigned version, std::string data) {
    if (!w->ok) co_return false;
    if (!w->header_sent) {
        http::response<http::empty_body> res{http::status::ok, version};
        res.set(http::field::server, "mnemos");
        res.set(http::field::content_type, "text/event-stream");
        res.set(http::field::cache_control, "no-cache");
        res.chunked(true);
        http::response_serializer<http::empty_body> sr{res};
        w->stream->expires_after(std::chrono::seconds(30));
        auto [ec, n] = co_await http::async_write_header(*w->stream, sr, use_tuple);
        w->header_sent = true;
        if (ec) co_return w->ok = false;
    }
    std::string frame = "data: " + data + "\n\n";
    w->stream->expires_after(std::chrono::seconds(30));
    auto chunk = http::make_chunk(net::buffer(frame));
    auto [ec, n] = co_await net::async_write(*w->stream, chunk, use_tuple);
    if (ec) co_return w->ok = false;
    co_return true;
}

awaitable<bool> sse_end(sse_writer* w) {
    if (!w->ok) co_return false;
    auto last = http::make_chunk_last();
    auto [ec, n] = co_await net::async_write(*w->stream, last, use_tuple);
    co_return !ec;
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

json chunk_json(const std::string& id, const std::string& model, int64_t created, const json& delta, const char* finish,
                const std::string& session_id) {
    json c = {{"id", id},
              {"object", "chat.completion.chunk"},
              {"created", created},
              {"model", model},
              {"choices",
               json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish ? json(finish) : json()}}})}};
    if (!session_id.empty()) c["session_id"] = session_id;
    return c;
}

awaitable<bool> ready(bool v) { co_return v; }

// Streaming with tools offered: content is sent up to a "<tool_call>" tag
// (a partial tag at the end is held back); everything after it is a call.
struct tool_stream {
    std::string text;  // all output so far
    size_t sent = 0;   // bytes of text sent as content
    bool in_call = false;
    bool forced = false;  // the whole output is a call
};

// The bytes of t.text that may be sent as content now.
std::string tool_stream_take(tool_stream& t) {
    static const std::string tag = "<tool_call>";
    if (t.forced || t.in_call) return {};
    size_t safe = t.text.size();
    if (auto p = t.text.find(tag, t.sent > tag.size() ? t.sent - tag.size() : 0); p != std::string::npos) {
        safe = p;
        t.in_call = true;
    } else {
        for (size_t k = std::min(tag.size() - 1, t.text.size()); k > 0; --k)
            if (t.text.compare(t.text.size() - k, k, tag, 0, k) == 0) {
                safe = t.text.size() - k;
                break;
            }
    }
    if (safe <= t.sent) return {};
    std::string out = t.text.substr(t.sent, safe - t.sent);
    t.sent = safe;
    return out;
}

// Fits the plan into the engine's window (a history longer than the window
// keeps its first block and recent messages; plan.context says so) and makes
// the engine request. extra: tokens the caller appends to the prompt itself.
// Errors: invalid_argument when the window cannot hold the prompt and a reply.
result<engine::request> make_request(server_state& st, turn_plan& plan, const gen_params& g, int32_t extra = 0) {
    // With sparse attention the whole history is the prompt, up to what the KV pool holds.
    const int32_t n_ctx = st.runner->history_limit();
    const int32_t want = g.max_tokens > 0 ? g.max_tokens : st.opt.default_max_tokens;
    if (auto fs = fit_to_window(plan, n_ctx, want + extra); !fs.ok()) return fs;
    const int32_t n_prompt = static_cast<int32_t>(plan.prompt.size()) + extra;
    if (n_prompt + 1 >= n_ctx)
        return make_error(errc::context_exceeded, "prompt has " + std::to_string(n_prompt) +
                                                      " tokens; the context holds " + std::to_string(n_ctx));
    if (plan.context.truncated) st.m.n_truncated++;
    engine::request r;
    r.prompt = plan.prompt;
    r.max_tokens = std::min(want, n_ctx - n_prompt);
    r.sampling = g.sampling;
    r.stop = plan.stop;
    r.stop.insert(r.stop.end(), g.stop.begin(), g.stop.end());
    return r;
}

// The "mnemos" field of replies: {"context": {...}} when the history was cut to fit the window.
void add_context_meta(json& j, const context_window& c) {
    if (c.truncated || c.sparse) j["mnemos"] = {{"context", context_window_json(c)}};
}

// Fields added to the reply's event: {"context": {...}} when the history was cut.
json context_event_extra(const context_window& c) {
    return c.truncated || c.sparse ? json{{"context", context_window_json(c)}} : json();
}

// Runs one generation (session turn when s is set) and writes the OpenAI-shaped
// reply (JSON or SSE). ct: tools / response_format of the request (may be null). Returns keep-alive.
awaitable<bool> complete(beast::tcp_stream& stream, request_t req, state_ptr st, session_ptr s, turn_plan plan,
                         gen_params g, std::shared_ptr<const chat_tools> ct) {
    auto made = make_request(*st, plan, g);
    if (!made) {
        if (s) st->sessions->end_turn(s, {}, false);
        reply r_ = error_reply(400, "context_length_exceeded", made.error().message());
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    engine::request r = std::move(made.value());
    context_window cw = plan.context;
    const bool tools_on = ct && ct->choice != tool_choice::none;
    const bool forced = ct && ct->forced_call;
    if (ct) {
        r.constraint = ct->constraint;
        r.constraint_trigger = ct->trigger;
    }
    const std::string id = "chatcmpl-" + random_hex(24);
    const int64_t created = unix_now();
    const std::string sid = s ? s->id : std::string();

    if (!g.stream) {
        delta_fn no_delta;
        turn_outcome out = co_await run_turn(st, std::move(r), std::move(no_delta), sid);
        note_attention(cw, out.info.attention);
        tools::parsed_output calls;
        if (tools_on) calls = extract_tool_calls(out.text, forced);
        if (s) {
            const bool append = out.info.reason != engine::finish_reason::error;
            std::string stored = out.text;
            if (forced && !calls.calls.empty())
                stored = hermes_tool_call(calls.calls[0].name, calls.calls[0].arguments);
            if (auto es = st->sessions->end_turn(s, stored, append, context_event_extra(cw)); !es.ok()) {
                reply r_ = status_reply(es);
                co_return co_await write_reply(stream, req, std::move(r_), st);
            }
        }
        if (out.info.reason == engine::finish_reason::error) {
            reply r_ = status_reply(out.info.error);
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        json message = {{"role", "assistant"}, {"content", out.text}};
        std::string finish = openai_finish(out.info.reason);
        if (!calls.calls.empty()) {
            message["content"] = calls.content.empty() ? json() : json(calls.content);
            message["tool_calls"] = openai_tool_calls(calls.calls);
            finish = "tool_calls";
        }
        json j = {{"id", id},
                  {"object", "chat.completion"},
                  {"created", created},
                  {"model", st->model_id},
                  {"choices", json::array({{{"index", 0}, {"message", message}, {"finish_reason", finish}}})},
                  {"usage", usage_json(out.info)}};
        if (s) j["session_id"] = sid;
        add_context_meta(j, cw);
        {
            reply r_ = json_reply(j);
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
    }

    sse_writer w{&stream};
    const unsigned version = req.version();
    const std::string model_id = st->model_id;
    std::string first =
        dump(chunk_json(id, model_id, created, json{{"role", "assistant"}, {"content", ""}}, nullptr, sid));
    co_await sse_send(&w, version, std::move(first));
    tool_stream ts;
    ts.forced = forced;
    tool_stream* tsp = &ts;
    delta_fn on_delta = [&w, version, id, model_id, created, sid, tools_on, tsp](std::string text) {
        if (tools_on) {
            tsp->text += text;
            text = tool_stream_take(*tsp);
            if (text.empty()) return ready(w.ok);
        }
        return sse_send(&w, version,
                        dump(chunk_json(id, model_id, created, {{"content", std::move(text)}}, nullptr, sid)));
    };
    turn_outcome out = co_await run_turn(st, std::move(r), on_delta, sid);
    note_attention(cw, out.info.attention);
    tools::parsed_output calls;
    if (tools_on) calls = extract_tool_calls(out.text, forced);
    if (s) {
        std::string stored = out.text;
        if (forced && !calls.calls.empty()) stored = hermes_tool_call(calls.calls[0].name, calls.calls[0].arguments);
        st->sessions->end_turn(s, stored, out.info.reason != engine::finish_reason::error, context_event_extra(cw));
    }
    std::string finish = openai_finish(out.info.reason);
    if (tools_on && out.info.reason != engine::finish_reason::error) {
        // Held-back content (no call after all), then the calls as tool_calls deltas.
        std::string rest;
        if (calls.calls.empty()) {
            if (ts.sent < out.text.size()) rest = out.text.substr(ts.sent);
        } else if (!forced && ts.sent < calls.content.size() && !ts.in_call) {
            rest = calls.content.substr(ts.sent);
        }
        if (!rest.empty()) {
            std::string c = dump(chunk_json(id, model_id, created, {{"content", std::move(rest)}}, nullptr, sid));
            co_await sse_send(&w, version, std::move(c));
        }
        const json tc = openai_tool_calls(calls.calls);
        for (size_t i = 0; i < tc.size(); ++i) {
            json head = {{"index", i},
                         {"id", tc[i]["id"]},
                         {"type", "function"},
                         {"function", {{"name", tc[i]["function"]["name"]}, {"arguments", ""}}}};
            std::string c =
                dump(chunk_json(id, model_id, created, {{"tool_calls", json::array({head})}}, nullptr, sid));
            co_await sse_send(&w, version, std::move(c));
            const std::string args = tc[i]["function"]["arguments"].get<std::string>();
            for (size_t p = 0; p < args.size(); p += 16) {
                json frag = {{"index", i}, {"function", {{"arguments", args.substr(p, 16)}}}};
                std::string f =
                    dump(chunk_json(id, model_id, created, {{"tool_calls", json::array({frag})}}, nullptr, sid));
                co_await sse_send(&w, version, std::move(f));
            }
        }
        if (!calls.calls.empty()) finish = "tool_calls";
    }
    std::string last_text;
    if (out.info.reason == engine::finish_reason::error) {
        last_text = dump(json{{"error", {{"message", out.info.error.message()}, {"type", "server_error"}}}});
    } else {
        json last = chunk_json(id, model_id, created, json::object(), finish.c_str(), sid);
        last["usage"] = usage_json(out.info);
        add_context_meta(last, cw);
        last_text = dump(last);
    }
    co_await sse_send(&w, version, std::move(last_text));
    std::string done_marker = "[DONE]";
    co_await sse_send(&w, version, std::move(done_marker));
    const bool ok = co_await sse_end(&w);
    co_return ok&& req.keep_alive() && !st->stopping;
}

// The body as a JSON object, or an error reply.
std::variant<json, reply> parse_body(const request_t& req) {
    if (tools::json_too_deep(req.body())) return error_reply(400, "invalid_request_error", tools::json_depth_message());
    json b = json::parse(req.body(), nullptr, false);
    if (b.is_discarded()) return error_reply(400, "invalid_request_error", "body is not valid JSON");
    if (!b.is_object()) return error_reply(400, "invalid_request_error", "body must be a JSON object");
    return b;
}

awaitable<bool> handle_chat_completions(beast::tcp_stream& stream, request_t req, state_ptr st, caller who) {
    auto parsed = parse_body(req);
    if (auto* e = std::get_if<reply>(&parsed)) co_return co_await write_reply(stream, req, *e, st);
    const json& b = std::get<json>(parsed);
    gen_params g;
    std::vector<engine::chat_message> msgs;
    status ps = parse_gen_params(b, g);
    if (ps.ok()) ps = parse_messages(b, msgs);
    if (!ps.ok()) {
        reply r_ = status_reply(ps);
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    auto parsed_tools = parse_chat_tools(b);
    if (!parsed_tools) {
        reply r_ = status_reply(parsed_tools.error());
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    std::shared_ptr<const chat_tools> ct;
    if (parsed_tools->constraint || parsed_tools->choice != tool_choice::none)
        ct = std::make_shared<chat_tools>(std::move(parsed_tools.value()));
    if (auto it = b.find("session_id"); it != b.end() && !it->is_null()) {
        if (!it->is_string()) {
            reply r_ = error_reply(400, "invalid_request_error", "'session_id' must be a string");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        auto s = st->sessions->find(it->get<std::string>());
        if (!s || !can_talk(who, *s.value())) {
            reply r_ = error_reply(404, "not_found_error", "no session '" + it->get<std::string>() + "'");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        turn_ticket ticket = co_await acquire_turn(st, s.value().get(), &stream.socket(), nullptr);
        if (!ticket.slot) {
            if (ticket.client_gone) co_return false;
            co_return co_await write_reply(stream, req, std::move(ticket.err), st);
        }
        auto plan = st->sessions->begin_turn(s.value(), msgs);
        if (!plan) {
            reply r_ = status_reply(plan.error());
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        co_return co_await complete(stream, std::move(req), st, s.value(), std::move(plan.value()), g, ct);
    }
    const auto& mdl = st->runner->mdl();
    turn_plan plan;
    if (ct && !ct->system_text.empty()) {
        std::vector<engine::chat_message> with_tools = msgs;
        add_tools_prompt(with_tools, ct->system_text);
        plan = plan_for_messages(mdl, with_tools);
        // A forced call is valid by its grammar alone: when the tool section leaves no room (small contexts),
        // it is left out.
        if (!ct->forced_call || plan.prompt.size() + 128 < static_cast<size_t>(st->runner->n_ctx())) {
            co_return co_await complete(stream, std::move(req), st, nullptr, std::move(plan), g, ct);
        }
    }
    plan = plan_for_messages(mdl, msgs);
    co_return co_await complete(stream, std::move(req), st, nullptr, std::move(plan), g, ct);
}

json session_json(const session& s, bool include_private) {
    std::lock_guard lk(const_cast<session&>(s).mu);
    return {{"id", s.id},
            {"object", "session"},
            {"character", character_to_json(s.chr, include_private)},
            {"created", s.created},
            {"n_messages", s.messages.size()},
            {"n_tokens", s.tokens.size()},
            {"n_turns", s.n_turns},
            {"agent", s.agent_json.empty() ? json() : json::parse(s.agent_json, nullptr, false)},
            {"busy", s.busy.load()}};
}

// GET /v1/prefixes, GET /v1/prefixes/{id}, PUT /v1/prefixes/{id} {"text"}: shared prefixes
// (e.g. a game's rules) that characters name in character.shared_prefix. Admin or create keys
// only: the text becomes part of characters' system prompts.
awaitable<bool> handle_prefixes(beast::tcp_stream& stream, request_t req, state_ptr st, caller who, std::string id) {
    const auto method = req.method();
    if (!who.admin() && !who.key->create) {
        reply r_ = error_reply(403, "permission_error", "shared prefixes need an admin or create key");
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    if (id.empty()) {
        if (method != http::verb::get) {
            reply r_ = error_reply(405, "invalid_request_error", "use GET (PUT /v1/prefixes/{id} to set one)");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        json data = json::array();
        for (const auto& [pid, text] : st->sessions->shared_prefixes())
            data.push_back({{"id", pid}, {"object", "prefix"}, {"bytes", text.size()}});
        reply r_ = json_reply({{"object", "list"}, {"data", data}});
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    if (method == http::verb::get) {
        auto text = st->sessions->shared_prefix(id);
        reply r_ = text ? json_reply({{"id", id}, {"object", "prefix"}, {"text", *text}, {"bytes", text->size()}})
                        : error_reply(404, "not_found_error", "no prefix '" + id + "'");
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    if (method != http::verb::put) {
        reply r_ = error_reply(405, "invalid_request_error", "use GET or PUT");
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    auto parsed = parse_body(req);
    if (auto* e = std::get_if<reply>(&parsed)) co_return co_await write_reply(stream, req, *e, st);
    const json b = std::move(std::get<json>(parsed));
    auto it = b.find("text");
    std::string err;
    if (it == b.end() || !it->is_string())
        err = "'text' must be a string";
    else if (it->get_ref<const std::string&>().empty())
        err = "'text' must not be empty";
    else if (!valid_utf8(it->get_ref<const std::string&>()))
        err = "'text' is not valid UTF-8";
    if (!err.empty()) {
        reply r_ = error_reply(400, "invalid_request_error", err);
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    std::string text = it->get<std::string>();
    // It must leave room in the window for a persona and a conversation.
    const int32_t n_tokens = static_cast<int32_t>(st->runner->mdl().tok().encode(text, false, false).size());
    // Half the context under full attention; with sparse attention a prefix may be longer than the context.
    const bool full = st->runner->attention().mode == engine::attention_mode::full;
    const int32_t limit = (full ? st->runner->n_ctx() : st->runner->history_limit()) / 2;
    if (n_tokens > limit) {
        reply r_ = error_reply(413, "invalid_request_error",
                               "prefix has " + std::to_string(n_tokens) + " tokens; at most " + std::to_string(limit) +
                                   " (half the context) are allowed");
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    const bool existed = st->sessions->shared_prefix(id).has_value();
    const size_t bytes = text.size();
    if (auto ps = st->sessions->put_shared_prefix(id, std::move(text)); !ps.ok()) {
        reply r_ = status_reply(ps);
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    reply r_ =
        json_reply({{"id", id}, {"object", "prefix"}, {"bytes", bytes}, {"n_tokens", n_tokens}}, existed ? 200 : 201);
    co_return co_await write_reply(stream, req, std::move(r_), st);
}

awaitable<bool> handle_create_session(beast::tcp_stream& stream, request_t req, state_ptr st, caller who) {
    if (!who.admin() && !who.key->create) {
        reply r_ = error_reply(403, "permission_error", "this key may not create sessions");
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    json b = json::object();
    if (!req.body().empty()) {
        auto parsed = parse_body(req);
        if (auto* e = std::get_if<reply>(&parsed)) co_return co_await write_reply(stream, req, *e, st);
        b = std::move(std::get<json>(parsed));
    }
    std::string id;
    if (auto it = b.find("id"); it != b.end() && !it->is_null()) {
        if (!it->is_string()) {
            reply r_ = error_reply(400, "invalid_request_error", "'id' must be a string");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        id = it->get<std::string>();
        if (id.empty()) {
            reply r_ = error_reply(400, "invalid_request_error", "'id' must not be empty");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
    }
    character chr;
    if (auto it = b.find("character"); it != b.end() && !it->is_null()) {
        auto c = character_from_json(*it);
        if (!c) {
            reply r_ = status_reply(c.error());
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        chr = std::move(c.value());
    }
    std::string system_extra, agent_text;
    if (auto it = b.find("agent"); it != b.end() && !it->is_null()) {
        auto a = parse_agent_settings(*it);
        if (!a) {
            reply r_ = status_reply(a.error());
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        auto reg = make_agent_tools(a.value(), "probe", *st->sessions);
        if (!reg) {
            reply r_ = status_reply(reg.error());
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        system_extra = tools::render_tools_prompt(*reg.value());
        agent_text = agent_settings_to_json(a.value()).dump();
    }
    auto s = st->sessions->create(id, std::move(chr), who.name(), std::move(system_extra), std::move(agent_text));
    if (!s) {
        reply r_ = status_reply(s.error());
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    {
        reply r_ = json_reply(session_json(*s.value(), true), 201);
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
}

using tool_channel = net::experimental::channel<void(error_code, json)>;

// Runs one tool on the calling coroutine's strand with a timeout. Returns
// {"result": ...} or {"error": "..."} (unknown tool, bad arguments, failure, timeout).
awaitable<json> run_tool(std::shared_ptr<tools::tool_registry> reg, std::string name, json args, int32_t timeout_ms) {
    auto ex = co_await net::this_coro::executor;
    auto ch = std::make_shared<tool_channel>(ex, 2);
    auto timer = std::make_shared<net::steady_timer>(ex, std::chrono::milliseconds(timeout_ms));
    timer->async_wait([ch, timeout_ms](const error_code& ec) {
        if (!ec) ch->try_send(error_code{}, json{{"error", "timeout after " + std::to_string(timeout_ms) + " ms"}});
    });
    reg->call(name, args, [ch, ex](result<json> r) {
        json v = r ? json{{"result", std::move(r.value())}} : json{{"error", r.error().message()}};
        net::post(ex, [ch, v = std::move(v)]() mutable { ch->try_send(error_code{}, std::move(v)); });
    });
    auto [ec, v] = co_await ch->async_receive(use_tuple);
    timer->cancel();
    if (ec) v = json{{"error", "tool channel: " + ec.message()}};
    co_return v;
}

// The agent loop of a tool session: plan -> tool call -> tool result -> plan
// again, up to max_steps generations; every message is a durable event.
// first_choice applies to the first generation ("auto" afterwards, none on the last).
awaitable<bool> agent_turn(beast::tcp_stream& stream, request_t req, state_ptr st, session_ptr s,
                           std::vector<engine::chat_message> msgs, gen_params g, json first_choice) {
    json aj = json::parse(s->agent_json, nullptr, false);
    auto settings = parse_agent_settings(aj.is_discarded() ? json::object() : aj);
    if (!settings) {
        reply r_ = status_reply(settings.error());
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    settings->seed += static_cast<uint64_t>(s->n_turns) * 0x9E3779B97F4A7C15ull;
    auto reg_r = make_agent_tools(settings.value(), s->id, *st->sessions);
    if (!reg_r) {
        reply r_ = status_reply(reg_r.error());
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    std::shared_ptr<tools::tool_registry> reg = reg_r.value();
    // Grammars: "auto" (after the trigger), "required" and named (from the first token).
    std::shared_ptr<const engine::grammar> g_auto, g_first;
    std::string first_mode = "auto";
    if (!reg->list().empty()) {
        engine::grammar_options go;
        go.max_leading_whitespace = 1;
        auto ga = reg->call_grammar(go);
        if (ga) g_auto = ga.value();
        json probe = {{"tools", json::array()}, {"tool_choice", first_choice}};
        for (const auto& t : reg->list())
            probe["tools"].push_back(
                {{"type", "function"}, {"function", {{"name", t.name}, {"parameters", t.parameters}}}});
        auto pc = parse_chat_tools(probe);
        if (!pc) {
            reply r_ = status_reply(pc.error());
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        if (pc->forced_call) {
            g_first = pc->constraint;
            first_mode = "forced";
        } else if (pc->choice == tool_choice::none) {
            first_mode = "none";
        }
    }
    auto plan = st->sessions->begin_turn(s, msgs);
    if (!plan) {
        reply r_ = status_reply(plan.error());
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    const auto& mdl = st->runner->mdl();
    context_window context;  // the last cut, when a step's prompt had to be cut
    json steps = json::array();
    engine::finish_info total;
    std::string final_text, finish = "stop";
    turn_plan cur = std::move(plan.value());
    for (int32_t step = 0; step < settings->max_steps; ++step) {
        std::string mode = step == 0 ? first_mode : "auto";
        if (step == settings->max_steps - 1 || !g_auto) mode = "none";
        // The assistant turn opens with the call tag when forced; the JSON after it is constrained.
        const auto tag =
            mode == "forced" ? mdl.tok().encode("<tool_call>\n", false, false) : std::vector<engine::token_id>{};
        auto made = make_request(*st, cur, g, static_cast<int32_t>(tag.size()));
        if (!made) {
            finish = "length";
            break;
        }
        engine::request r = std::move(made.value());
        if (cur.context.truncated || cur.context.sparse) context = cur.context;
        if (mode == "forced") {
            r.prompt.insert(r.prompt.end(), tag.begin(), tag.end());
            r.constraint = g_first;
        } else if (mode == "auto") {
            r.constraint = g_auto;
            r.constraint_trigger = "<tool_call>";
            r.stop.push_back("</tool_call>");
        }
        delta_fn no_delta;
        std::string sid = s->id;
        turn_outcome out = co_await run_turn(st, std::move(r), std::move(no_delta), std::move(sid));
        note_attention(context, out.info.attention);
        total.n_prompt += out.info.n_prompt;
        total.n_generated += out.info.n_generated;
        total.n_reused += out.info.n_reused;
        if (out.info.reason == engine::finish_reason::error || out.info.reason == engine::finish_reason::cancelled) {
            st->sessions->end_turn(s, {}, false);
            reply r_ = status_reply(out.info.reason == engine::finish_reason::error
                                        ? out.info.error
                                        : make_error(errc::cancelled, "turn cancelled"));
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        tools::parsed_output calls;
        if (mode != "none") calls = extract_tool_calls(out.text, mode == "forced");
        if (calls.calls.empty()) {
            final_text = out.text;
            finish = openai_finish(out.info.reason);
            break;
        }
        // The call(s), durably, before running them.
        std::string content = mode == "forced" ? std::string() : calls.content;
        json tc = openai_tool_calls(calls.calls);
        for (const auto& c : calls.calls)
            content += (content.empty() ? "" : "\n") + hermes_tool_call(c.name, c.arguments);
        std::vector<engine::chat_message> call_msg{{"assistant", content}};
        std::vector<json> call_extra{{{"kind", "tool_call"}, {"tool_calls", tc}, {"step", step}}};
        auto cp = st->sessions->continue_turn(s, call_msg, call_extra);
        if (!cp) {
            st->sessions->end_turn(s, {}, false);
            reply r_ = status_reply(cp.error());
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        for (size_t i = 0; i < calls.calls.size(); ++i)
            steps.push_back({{"type", "tool_call"},
                             {"step", step},
                             {"id", tc[i]["id"]},
                             {"name", calls.calls[i].name},
                             {"arguments", calls.calls[i].arguments}});
        std::vector<engine::chat_message> results;
        std::vector<json> result_extra;
        for (size_t i = 0; i < calls.calls.size(); ++i) {
            std::string tname = calls.calls[i].name;
            json targs = calls.calls[i].arguments;
            json res = co_await run_tool(reg, std::move(tname), std::move(targs), settings->tool_timeout_ms);
            const json shown = res.contains("result") ? res["result"] : json{{"error", res["error"]}};
            results.push_back({"tool", tools::render_tool_response(calls.calls[i].name, shown)});
            json ex = {
                {"kind", "tool_result"}, {"name", calls.calls[i].name}, {"tool_call_id", tc[i]["id"]}, {"step", step}};
            ex.update(res);
            result_extra.push_back(ex);
            json stp = {{"type", "tool_result"}, {"step", step}, {"id", tc[i]["id"]}, {"name", calls.calls[i].name}};
            stp.update(res);
            steps.push_back(std::move(stp));
        }
        auto np = st->sessions->continue_turn(s, results, result_extra);
        if (!np) {
            st->sessions->end_turn(s, {}, false);
            reply r_ = status_reply(np.error());
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        cur = std::move(np.value());
    }
    if (auto es = st->sessions->end_turn(s, final_text, true, context_event_extra(context)); !es.ok()) {
        reply r_ = status_reply(es);
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    steps.push_back({{"type", "message"}, {"role", "assistant"}, {"content", final_text}});
    json j = {{"id", "chatcmpl-" + random_hex(24)},
              {"object", "chat.completion"},
              {"created", unix_now()},
              {"model", st->model_id},
              {"session_id", s->id},
              {"choices", json::array({{{"index", 0},
                                        {"message", {{"role", "assistant"}, {"content", final_text}}},
                                        {"finish_reason", finish}}})},
              {"steps", steps},
              {"usage", usage_json(total)}};
    add_context_meta(j, context);
    reply r_ = json_reply(j);
    co_return co_await write_reply(stream, req, std::move(r_), st);
}

awaitable<bool> handle_session_message(beast::tcp_stream& stream, request_t req, state_ptr st, caller who,
                                       session_ptr s) {
    auto parsed = parse_body(req);
    if (auto* e = std::get_if<reply>(&parsed)) co_return co_await write_reply(stream, req, *e, st);
    const json& b = std::get<json>(parsed);
    gen_params g;
    if (auto ps = parse_gen_params(b, g); !ps.ok()) {
        reply r_ = status_reply(ps);
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    std::vector<engine::chat_message> msgs;
    if (b.contains("messages")) {
        if (auto ps = parse_messages(b, msgs); !ps.ok()) {
            reply r_ = status_reply(ps);
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
    } else {
        engine::chat_message m{"user", {}};
        auto c = b.find("content");
        if (c == b.end() || !c->is_string()) {
            reply r_ = error_reply(400, "invalid_request_error", "'content' must be a string");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        if (auto ps = parse_content(*c, m.content); !ps.ok()) {
            reply r_ = status_reply(ps);
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        if (auto r = b.find("role"); r != b.end() && !r->is_null()) {
            if (!r->is_string() || (r->get<std::string>() != "user" && r->get<std::string>() != "tool")) {
                reply r_ = error_reply(400, "invalid_request_error", "'role' must be \"user\" or \"tool\"");
                co_return co_await write_reply(stream, req, std::move(r_), st);
            }
            m.role = r->get<std::string>();
        }
        msgs.push_back(std::move(m));
    }
    (void)who;
    // The session's earlier turns first (held until this turn's reply is written).
    turn_ticket ticket = co_await acquire_turn(st, s.get(), &stream.socket(), nullptr);
    if (!ticket.slot) {
        if (ticket.client_gone) co_return false;
        co_return co_await write_reply(stream, req, std::move(ticket.err), st);
    }
    if (!s->agent_json.empty()) {
        if (g.stream) {
            reply r_ = error_reply(400, "invalid_request_error", "agent sessions do not stream; leave 'stream' unset");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        json first_choice = b.contains("tool_choice") ? b["tool_choice"] : json("auto");
        co_return co_await agent_turn(stream, std::move(req), st, s, std::move(msgs), g, std::move(first_choice));
    }
    auto plan = st->sessions->begin_turn(s, msgs);
    if (!plan) {
        reply r_ = status_reply(plan.error());
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    co_return co_await complete(stream, std::move(req), st, s, std::move(plan.value()), g, nullptr);
}

std::string metrics_text(const server_state& st) {
    const auto es = st.runner->stats();
    const auto kv = st.runner->kv_stats();
    std::ostringstream o;
    auto metric = [&](const char* name, const char* type, const char* help, int64_t v) {
        o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n' << name << ' ' << v << '\n';
    };
    metric("mnemos_http_requests_total", "counter", "HTTP requests received", st.m.n_requests.load());
    metric("mnemos_http_client_errors_total", "counter", "4xx responses", st.m.n_4xx.load());
    metric("mnemos_http_rate_limited_total", "counter", "requests refused by a rate limit (429)",
           st.m.n_rate_limited.load());
    metric("mnemos_context_truncated_total", "counter",
           "generations whose history was longer than the window (first block + recent window kept)",
           st.m.n_truncated.load());
    metric("mnemos_http_server_errors_total", "counter", "5xx responses", st.m.n_5xx.load());
    metric("mnemos_connections", "gauge", "open connections", st.m.n_connections.load());
    metric("mnemos_turns_total", "counter", "generations finished", st.m.n_turns.load());
    metric("mnemos_active_turns", "gauge", "generations in progress", st.m.n_active_turns.load());
    metric("mnemos_waiting_turns", "gauge", "session turns waiting for an earlier turn of their session",
           st.turns.n_waiting.load());
    metric("mnemos_tokens_generated_total", "counter", "sampled tokens", st.m.n_generated.load());
    metric("mnemos_prompt_tokens_total", "counter", "prompt tokens submitted", st.m.n_prompt.load());
    metric("mnemos_prefix_cache_hit_tokens_total", "counter", "prompt tokens whose KV was reused (sum of n_reused)",
           st.m.n_reused.load());
    metric("mnemos_engine_steps_total", "counter", "engine steps", es.n_steps);
    metric("mnemos_prefill_tokens_total", "counter", "prompt tokens computed by the engine", es.n_prefill_tokens);
    metric("mnemos_decode_tokens_total", "counter", "generated tokens fed back", es.n_decode_tokens);
    metric("mnemos_queue_depth", "gauge", "requests waiting for admission", es.n_waiting);
    metric("mnemos_running_sequences", "gauge", "sequences running", es.n_running);
    metric("mnemos_requests_in_flight", "gauge", "requests submitted and not finished", st.runner->n_in_flight());
    metric("mnemos_kv_pages_total", "gauge", "pages in the KV pool", kv.n_pages);
    metric("mnemos_kv_pages_resident", "gauge", "pages in use", kv.n_pages - kv.n_free);
    metric("mnemos_kv_pages_cached", "gauge", "pages in the prefix index", kv.n_cached);
    metric("mnemos_kv_hits_resident_tokens_total", "counter", "prompt tokens reused from resident pages",
           kv.hits_resident);
    metric("mnemos_kv_hits_store_tokens_total", "counter", "prompt tokens reused from the block store", kv.hits_store);
    metric("mnemos_kv_miss_tokens_total", "counter", "prompt tokens not found in the cache", kv.misses);
    metric("mnemos_kv_evictions_total", "counter", "cached pages evicted", kv.evictions);
    metric("mnemos_sessions_resident", "gauge", "sessions in memory", static_cast<int64_t>(st.sessions->n_resident()));
    return o.str();
}

// ---------------------------------------------------------------------------
// GET /v1/ws
// ---------------------------------------------------------------------------

// Queues a frame for the socket; false when the socket is gone.
awaitable<bool> ws_send(std::shared_ptr<ws_conn> c, std::string frame) {
    if (c->closed) co_return false;
    auto [ec] = co_await c->out.async_send(error_code{}, std::move(frame), use_tuple);
    co_return !ec && !c->closed;
}

awaitable<bool> ws_error(std::shared_ptr<ws_conn> c, std::string message) {
    std::string frame = dump(json{{"type", "error"}, {"message", std::move(message)}});
    co_return co_await ws_send(std::move(c), std::move(frame));
}

// Drains the outgoing queue onto the socket.
awaitable<void> ws_writer(std::shared_ptr<ws_conn> c) {
    for (;;) {
        auto [ec, frame] = co_await c->out.async_receive(use_tuple);
        if (ec || c->closed) break;
        c->ws.text(true);
        auto [wec, n] = co_await c->ws.async_write(net::buffer(frame), use_tuple);
        if (wec) {
            c->closed = true;
            break;
        }
    }
}

// One streamed turn of a "message" frame: waits for the session's earlier turns, then begin_turn .. end_turn.
awaitable<void> ws_turn(std::shared_ptr<ws_conn> c, state_ptr st, session_ptr s, std::vector<engine::chat_message> msgs,
                        gen_params g) {
    const std::string sid = s->id;
    turn_ticket ticket = co_await acquire_turn(st, s.get(), nullptr, c.get());
    if (!ticket.slot) {
        if (!ticket.client_gone && !c->closed) {
            json err = json::parse(ticket.err.body, nullptr, false);
            std::string message = err.is_object() ? err["error"].value("message", "busy") : std::string("busy");
            co_await ws_error(c, std::move(message));
        }
        co_return;
    }
    if (c->closed) co_return;
    auto began = st->sessions->begin_turn(s, msgs);
    if (!began) {
        co_await ws_error(c, began.error().message());
        co_return;
    }
    turn_plan plan = std::move(began.value());
    auto made = make_request(*st, plan, g);
    if (!made) {
        st->sessions->end_turn(s, {}, false);
        co_await ws_error(c, made.error().message());
        co_return;
    }
    engine::request r = std::move(made.value());
    context_window cw = plan.context;
    delta_fn on_delta = [c, sid](std::string text) {
        return ws_send(c, dump(json{{"type", "token"}, {"session_id", sid}, {"text", std::move(text)}}));
    };
    turn_outcome out = co_await run_turn(st, std::move(r), on_delta, sid);
    note_attention(cw, out.info.attention);
    st->sessions->end_turn(s, out.text, out.info.reason != engine::finish_reason::error, context_event_extra(cw));
    if (out.info.reason == engine::finish_reason::error) {
        co_await ws_error(c, out.info.error.message());
        co_return;
    }
    json done_j = {{"type", "done"},
                   {"session_id", sid},
                   {"finish_reason", openai_finish(out.info.reason)},
                   {"usage", usage_json(out.info)}};
    add_context_meta(done_j, cw);
    std::string done = dump(done_j);
    co_await ws_send(c, std::move(done));
}

// Sessions the socket's key may read, for the "subscribed" reply.
json ws_session_list(const server_state& st, const caller& who) {
    json out = json::array();
    for (const auto& sid : st.sessions->store().list_sessions()) {
        if (out.size() >= 1000) break;
        json e = {{"id", sid}};
        if (who.admin()) {
            auto meta = st.sessions->store().get_session(sid);
            json m = meta ? json::parse(meta.value(), nullptr, false) : json();
            if (m.is_object() && m.contains("character") && m["character"].is_object() &&
                m["character"].contains("name"))
                e["character"] = m["character"]["name"];
        } else {
            auto s = st.sessions->find(sid);
            if (!s || !can_read(who, *s.value())) continue;
            if (!s.value()->chr.name.empty()) e["character"] = s.value()->chr.name;
        }
        out.push_back(std::move(e));
    }
    return out;
}

// A {"type": "player", "name", "content"} frame: an interactive player's line for the game being played.
// Returns the reply frame: {"type": "player_ack"} or an error frame.
std::string ws_player_reply(ws_conn& c, const json& b, server_state& st) {
    auto error_frame = [](const std::string& message) { return dump(json{{"type", "error"}, {"message", message}}); };
    if (!st.opt.on_player) return error_frame("no game is being played here (player lines need mnemos play --serve)");
    if (auto hit = over_rate_limit(st, c.who, c.ws.next_layer())) return error_frame(hit->message);
    auto n = b.find("name");
    auto ct = b.find("content");
    if (n == b.end() || !n->is_string() || n->get_ref<const std::string&>().empty())
        return error_frame("'name' must be a non-empty string (the player's name)");
    const std::string& name = n->get_ref<const std::string&>();
    if (!valid_utf8(name)) return error_frame("'name' is not valid UTF-8");
    if (ct == b.end() || !ct->is_string() || ct->get_ref<const std::string&>().empty())
        return error_frame("'content' must be a non-empty string");
    const std::string& content = ct->get_ref<const std::string&>();
    if (!valid_utf8(content)) return error_frame("'content' is not valid UTF-8");
    if (content.size() > st.opt.max_player_line_bytes)
        return error_frame("'content' is too long (at most " + std::to_string(st.opt.max_player_line_bytes) +
                           " bytes)");
    // Who may speak as a player: admin or create keys (the table's operators), or the key named like the player.
    const bool allowed = c.who.admin() || c.who.key->create || (!c.who.key->name.empty() && c.who.key->name == name);
    if (!allowed) return error_frame("this key may not speak as player '" + name + "'");
    std::string refused;
    try {
        refused = st.opt.on_player(name, content);
    } catch (const std::exception& e) {
        refused = std::string("player line refused: ") + e.what();
    }
    if (!refused.empty()) return error_frame(refused);
    return dump(json{{"type", "player_ack"}, {"name", name}});
}

// One client frame. Errors become {"type": "error"} frames; the socket stays open.
awaitable<void> ws_handle(std::shared_ptr<ws_conn> c, std::string text, state_ptr st) {
    if (tools::json_too_deep(text)) {
        co_await ws_error(c, tools::json_depth_message());
        co_return;
    }
    json b = json::parse(text, nullptr, false);
    if (b.is_discarded() || !b.is_object()) {
        co_await ws_error(c, "frame is not a JSON object");
        co_return;
    }
    auto t = b.find("type");
    if (t == b.end() || !t->is_string()) {
        co_await ws_error(c, "frame needs a string 'type'");
        co_return;
    }
    const std::string type = t->get<std::string>();
    if (type == "subscribe") {
        if (b.value("topic", json()) != json("events")) {
            co_await ws_error(c, "unknown topic (use \"events\")");
            co_return;
        }
        if (!c->subscribed) {
            c->subscribed = true;
            st->hub->n_subscribed++;
        }
        std::string frame =
            dump(json{{"type", "subscribed"}, {"topic", "events"}, {"sessions", ws_session_list(*st, c->who)}});
        co_await ws_send(c, std::move(frame));
        co_return;
    }
    if (type == "unsubscribe") {
        if (c->subscribed) {
            c->subscribed = false;
            st->hub->n_subscribed--;
        }
        co_return;
    }
    if (type == "player") {
        std::string reply = ws_player_reply(*c, b, *st);
        co_await ws_send(c, std::move(reply));
        co_return;
    }
    if (type != "message") {
        co_await ws_error(c, "unknown type '" + type + "'");
        co_return;
    }
    // Each turn counts against the key's rate limit, like an HTTP request.
    if (auto hit = over_rate_limit(*st, c->who, c->ws.next_layer())) {
        co_await ws_error(c, hit->message);
        co_return;
    }
    auto id = b.find("session_id");
    if (id == b.end() || !id->is_string()) {
        co_await ws_error(c, "'session_id' must be a string");
        co_return;
    }
    const std::string sid = id->get<std::string>();
    gen_params g;
    engine::chat_message m{"user", {}};
    status ps = parse_gen_params(b, g);
    if (ps.ok()) {
        auto ct = b.find("content");
        if (ct == b.end() || !ct->is_string())
            ps = make_error(errc::invalid_argument, "'content' must be a string");
        else
            ps = parse_content(*ct, m.content);
    }
    if (!ps.ok()) {
        co_await ws_error(c, ps.message());
        co_return;
    }
    auto s = st->sessions->find(sid);
    if (!s || !can_talk(c->who, *s.value())) {
        co_await ws_error(c, "no session '" + sid + "'");
        co_return;
    }
    if (!s.value()->agent_json.empty()) {
        co_await ws_error(c, "agent sessions do not stream; use POST /v1/sessions/{id}/messages");
        co_return;
    }
    std::vector<engine::chat_message> msgs{std::move(m)};
    // The turn waits for its session and streams on its own coroutine (same strand) so the socket keeps
    // reading; coroutines spawned in frame order reach the session's queue in that order.
    auto ex = co_await net::this_coro::executor;
    net::co_spawn(ex, ws_turn(c, st, s.value(), std::move(msgs), g), net::detached);
}

// After the HTTP upgrade request: handshake, then read frames until the client goes.
awaitable<void> serve_ws(std::shared_ptr<ws_conn> c, request_t req, state_ptr st) {
    beast::get_lowest_layer(c->ws).expires_never();
    c->ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    c->ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "mnemos"); }));
    c->ws.read_message_max(st->opt.max_body_bytes);
    auto [ec] = co_await c->ws.async_accept(req, use_tuple);
    if (ec) co_return;
    {
        std::lock_guard lk(st->hub->mu);
        st->hub->subs.push_back(c);
    }
    auto ex = co_await net::this_coro::executor;
    net::co_spawn(ex, ws_writer(c), net::detached);
    beast::flat_buffer buf;
    for (;;) {
        auto [rec, n] = co_await c->ws.async_read(buf, use_tuple);
        if (rec || st->stopping) break;
        std::string text = beast::buffers_to_string(buf.data());
        buf.consume(buf.size());
        co_await ws_handle(c, std::move(text), st);
    }
    c->closed = true;
    for (auto& wk : c->waiters)
        if (auto w = wk.lock(); w && !w->done) {
            w->gone = true;
            w->timer.cancel();
        }
    c->waiters.clear();
    if (c->subscribed) {
        c->subscribed = false;
        st->hub->n_subscribed--;
    }
    c->out.close();
}

// Routes one request; returns keep-alive.
awaitable<bool> handle(beast::tcp_stream& stream, request_t req, state_ptr st) {
    st->m.n_requests++;
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    const auto method = req.method();
    if (path == "/healthz") {
        if (method != http::verb::get) {
            reply r_ = error_reply(405, "invalid_request_error", "use GET");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        {
            reply r_ = json_reply({{"status", "ok"}});
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
    }
    if (path == "/" || path == "/index.html") {
        if (method != http::verb::get) {
            reply r_ = error_reply(405, "invalid_request_error", "use GET");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        reply r_ = {200, spectator_page(), "text/html; charset=utf-8"};
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    auto who = authenticate(*st, req);
    if (!who) {
        reply r_ = error_reply(401, "authentication_error", "missing or invalid API key");
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    if (auto limited = rate_limited(*st, *who, stream)) co_return co_await write_reply(stream, req, *limited, st);
    if (path == "/v1/ws") {
        reply r_ = error_reply(426, "invalid_request_error", "GET /v1/ws needs a WebSocket upgrade");
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
    if (path == "/metrics") {
        if (method != http::verb::get) {
            reply r_ = error_reply(405, "invalid_request_error", "use GET");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        {
            reply r_ = {200, metrics_text(*st), "text/plain; version=0.0.4"};
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
    }
    if (path == "/v1/models") {
        if (method != http::verb::get) {
            reply r_ = error_reply(405, "invalid_request_error", "use GET");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        const auto& hp = st->runner->mdl().hp();
        json m = {{"id", st->model_id},
                  {"object", "model"},
                  {"created", 0},
                  {"owned_by", "mnemos"},
                  {"context_length", st->runner->n_ctx()},
                  {"arch", hp.arch}};
        {
            reply r_ = json_reply({{"object", "list"}, {"data", json::array({m})}});
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
    }
    if (path == "/v1/chat/completions") {
        if (method != http::verb::post) {
            reply r_ = error_reply(405, "invalid_request_error", "use POST");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        co_return co_await handle_chat_completions(stream, std::move(req), st, *who);
    }
    if (path == "/v1/prefixes" || path.compare(0, 13, "/v1/prefixes/") == 0) {
        std::string pid = path.size() > 13 ? path.substr(13) : std::string();
        co_return co_await handle_prefixes(stream, std::move(req), st, *who, std::move(pid));
    }
    if (path == "/v1/sessions") {
        if (method == http::verb::post) co_return co_await handle_create_session(stream, std::move(req), st, *who);
        if (method == http::verb::get) {
            if (!who->admin()) {
                reply r_ = error_reply(403, "permission_error", "listing sessions needs an admin key");
                co_return co_await write_reply(stream, req, std::move(r_), st);
            }
            json data = json::array();
            for (const auto& sid : st->sessions->store().list_sessions()) {
                auto meta = st->sessions->store().get_session(sid);
                json m = meta ? json::parse(meta.value(), nullptr, false) : json();
                json e = {{"id", sid}, {"object", "session"}};
                if (m.is_object()) {
                    if (m.contains("created")) e["created"] = m["created"];
                    if (m.contains("owner")) e["owner"] = m["owner"];
                    if (m.contains("character") && m["character"].is_object() && m["character"].contains("name"))
                        e["character"] = m["character"]["name"];
                    if (m.contains("agent")) e["agent"] = m["agent"];
                }
                data.push_back(std::move(e));
            }
            {
                reply r_ = json_reply({{"object", "list"}, {"data", data}});
                co_return co_await write_reply(stream, req, std::move(r_), st);
            }
        }
        {
            reply r_ = error_reply(405, "invalid_request_error", "use POST");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
    }
    static const std::string prefix = "/v1/sessions/";
    if (path.compare(0, prefix.size(), prefix) == 0) {
        std::string rest = path.substr(prefix.size());
        std::string sub;
        if (auto slash = rest.find('/'); slash != std::string::npos) {
            sub = rest.substr(slash + 1);
            rest.resize(slash);
        }
        auto s = st->sessions->find(rest);
        // A session the caller may not talk to looks like a missing one.
        if (!s || !can_talk(*who, *s.value())) {
            reply r_ = error_reply(404, "not_found_error", "no session '" + rest + "'");
            co_return co_await write_reply(stream, req, std::move(r_), st);
        }
        const bool reader = can_read(*who, *s.value());
        if (sub.empty()) {
            if (method == http::verb::get) {
                reply r_ = json_reply(session_json(*s.value(), reader));
                co_return co_await write_reply(stream, req, std::move(r_), st);
            }
            if (method == http::verb::delete_) {
                if (!reader) {
                    reply r_ = error_reply(403, "permission_error", "this key may not delete the session");
                    co_return co_await write_reply(stream, req, std::move(r_), st);
                }
                if (s.value()->busy) {
                    reply r_ = error_reply(409, "conflict_error", "session is busy");
                    co_return co_await write_reply(stream, req, std::move(r_), st);
                }
                auto rs = st->sessions->remove(rest);
                if (!rs.ok()) {
                    reply r_ = status_reply(rs);
                    co_return co_await write_reply(stream, req, std::move(r_), st);
                }
                {
                    reply r_ = json_reply({{"id", rest}, {"object", "session"}, {"deleted", true}});
                    co_return co_await write_reply(stream, req, std::move(r_), st);
                }
            }
            {
                reply r_ = error_reply(405, "invalid_request_error", "use GET or DELETE");
                co_return co_await write_reply(stream, req, std::move(r_), st);
            }
        }
        if (sub == "messages") {
            if (method != http::verb::post) {
                reply r_ = error_reply(405, "invalid_request_error", "use POST");
                co_return co_await write_reply(stream, req, std::move(r_), st);
            }
            co_return co_await handle_session_message(stream, std::move(req), st, *who, s.value());
        }
        if (sub == "events") {
            if (method != http::verb::get) {
                reply r_ = error_reply(405, "invalid_request_error", "use GET");
                co_return co_await write_reply(stream, req, std::move(r_), st);
            }
            if (!reader) {
                reply r_ = error_reply(403, "permission_error", "this key may not read the session's events");
                co_return co_await write_reply(stream, req, std::move(r_), st);
            }
            auto evs = st->sessions->events(rest);
            if (!evs) {
                reply r_ = status_reply(evs.error());
                co_return co_await write_reply(stream, req, std::move(r_), st);
            }
            json arr = json::array();
            for (const auto& e : evs.value()) {
                json ev = json::parse(e, nullptr, false);
                arr.push_back(ev.is_discarded() ? json(e) : ev);
            }
            {
                reply r_ = json_reply({{"object", "list"}, {"session_id", rest}, {"data", arr}});
                co_return co_await write_reply(stream, req, std::move(r_), st);
            }
        }
    }
    {
        reply r_ = error_reply(404, "not_found_error", "no route for " + path);
        co_return co_await write_reply(stream, req, std::move(r_), st);
    }
}

// The request parser with field limits. Beast 1.81 applies header_limit to the header only, never to a chunked
// body's trailer, and basic_fields throws std::length_error for a field over 64 KiB, from inside async_read's
// completion, which no coroutine can catch: it escapes io_context::run. Here a field over k_max_field_bytes, or
// trailer fields over k_max_trailer_bytes in all, end the parse with header_limit instead (the caller answers 431).
// Trailer fields within the limits are dropped, not merged into the header (RFC 9110 6.5.1): nothing here uses them,
// and a trailing Authorization or Content-Type must not change a request already read.
class bounded_request_parser : public http::request_parser<http::string_body> {
  public:
    explicit bounded_request_parser(size_t max_body_bytes) {
        body_limit(max_body_bytes);
        header_limit(static_cast<std::uint32_t>(k_max_header_bytes));
    }

  private:
    size_t trailer_bytes_ = 0;  // name and value bytes of the trailer fields so far

    void on_field_impl(http::field f, beast::string_view name, beast::string_view value, error_code& ec) override {
        const size_t n = name.size() + value.size();
        if (is_header_done()) trailer_bytes_ += n;
        if (n > k_max_field_bytes || trailer_bytes_ > k_max_trailer_bytes) {
            ec = http::error::header_limit;
            return;
        }
        if (!is_header_done()) get().insert(f, name, value);
    }
};

// The answer to a request the parser refused: 413 body too large, 431 header or trailer too large, else 400.
unsigned refused_request_status(const error_code& ec) {
    if (ec == http::error::body_limit) return 413;
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) return 431;
    return 400;
}

awaitable<void> serve_connection(beast::tcp_stream stream, state_ptr st) {
    st->m.n_connections++;
    // Bounded: a header or a trailer must fit whole (Beast parses either only once all of it is buffered); a
    // request that needs more ends with buffer_overflow (431) instead of growing the buffer without limit.
    beast::flat_buffer buffer(k_max_header_bytes + k_max_trailer_bytes);
    for (;;) {
        bounded_request_parser parser(st->opt.max_body_bytes);
        stream.expires_after(std::chrono::seconds(60));
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
        if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout)
            break;
        if (ec) {
            // Malformed or oversized request: answer once, then close (the stream is out of sync).
            const unsigned code = refused_request_status(ec);
            request_t dummy{http::verb::get, "/", 11};
            dummy.keep_alive(false);
            std::string message = "malformed HTTP request: " + ec.message();
            if (code == 413) message = "request body exceeds " + std::to_string(st->opt.max_body_bytes) + " bytes";
            if (code == 431)
                message = "request header fields too large (at most " + std::to_string(k_max_header_bytes) +
                          " bytes of header, " + std::to_string(k_max_field_bytes) + " per field, " +
                          std::to_string(k_max_trailer_bytes) + " of trailer)";
            reply rep = error_reply(code, "invalid_request_error", message);
            co_await write_reply(stream, dummy, std::move(rep), st);
            break;
        }
        request_t req = parser.release();
        const std::string method(req.method_string()), target(req.target());
        if (websocket::is_upgrade(req) && target.substr(0, target.find('?')) == "/v1/ws") {
            st->m.n_requests++;
            auto who = authenticate(*st, req, true);
            if (!who) {
                reply rep = error_reply(401, "authentication_error", "missing or invalid API key");
                req.keep_alive(false);
                co_await write_reply(stream, req, std::move(rep), st);
                break;
            }
            if (auto limited = rate_limited(*st, *who, stream)) {
                req.keep_alive(false);
                co_await write_reply(stream, req, *limited, st);
                break;
            }
            if (st->opt.log_requests) std::fprintf(stderr, "mnemos serve: GET /v1/ws (upgrade)\n");
            auto c = std::make_shared<ws_conn>(ws_stream(std::move(stream)), *who);
            co_await serve_ws(c, std::move(req), st);
            st->m.n_connections--;
            co_return;
        }
        const bool keep = co_await handle(stream, std::move(req), st);
        if (st->opt.log_requests)
            std::fprintf(stderr, "mnemos serve: %s %s\n", method.c_str(), target.substr(0, target.find('?')).c_str());
        if (!keep) break;
    }
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    st->m.n_connections--;
}

awaitable<void> accept_loop(tcp::acceptor* acceptor, state_ptr st) {
    for (;;) {
        auto [ec, socket] = co_await acceptor->async_accept(net::make_strand(acceptor->get_executor()), use_tuple);
        if (ec) {
            if (ec == net::error::operation_aborted || !acceptor->is_open()) co_return;
            continue;  // e.g. too many open files: keep serving
        }
        auto ex = socket.get_executor();
        net::co_spawn(ex, serve_connection(beast::tcp_stream(std::move(socket)), st), [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                std::fprintf(stderr, "mnemos serve: connection failed: %s\n", x.what());
            }
        });
    }
}

bool is_loopback(const net::ip::address& a) { return a.is_loopback(); }

// Runs the io_context until it stops. A handler that throws (a bug: every expected failure is a value) loses its
// connection, not the server: the exception is logged and run() resumes, as Asio allows.
void run_io(net::io_context& io) {
    for (;;) {
        try {
            io.run();
            return;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "mnemos serve: an io handler threw (its connection is dropped): %s\n", e.what());
        } catch (...) {
            std::fprintf(stderr, "mnemos serve: an io handler threw (its connection is dropped)\n");
        }
    }
}

}  // namespace

// ---------------------------------------------------------------------------
// Auth config
// ---------------------------------------------------------------------------

result<auth_config> parse_auth_config(const std::string& text) {
    if (tools::json_too_deep(text)) return make_error(errc::invalid_argument, "config: " + tools::json_depth_message());
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error(errc::invalid_argument, "config is not a JSON object");
    auth_config cfg;
    if (auto d = j.find("requests_per_minute"); d != j.end()) {
        if (!d->is_number_integer() || d->get<int64_t>() < 0 || d->get<int64_t>() > 1000000)
            return make_error(errc::invalid_argument,
                              "requests_per_minute must be an integer from 0 (unlimited) to 1000000");
        cfg.requests_per_minute = d->get<int32_t>();
    }
    auto keys = j.find("keys");
    if (keys == j.end()) return cfg;
    if (!keys->is_array()) return make_error(errc::invalid_argument, "'keys' must be an array");
    for (size_t i = 0; i < keys->size(); ++i) {
        const json& k = (*keys)[i];
        const std::string where = "keys[" + std::to_string(i) + "]";
        if (!k.is_object() || !k.contains("key") || !k["key"].is_string() || k["key"].get<std::string>().empty())
            return make_error(errc::invalid_argument, where + ".key must be a non-empty string");
        for (auto it = k.begin(); it != k.end(); ++it)
            if (!std::set<std::string>{"key", "name", "admin", "create", "sessions", "characters", "read",
                                       "requests_per_minute"}
                     .contains(it.key()))
                return make_error(errc::invalid_argument, "unknown field '" + where + "." + it.key() + "'");
        api_key a;
        a.key = k["key"].get<std::string>();
        if (!k.value("name", json(where)).is_string())
            return make_error(errc::invalid_argument, where + ".name must be a string");
        a.name = k.value("name", where);
        for (auto [field, out] : {std::pair{"admin", &a.admin}, std::pair{"create", &a.create}}) {
            if (!k.contains(field)) continue;
            if (!k[field].is_boolean())
                return make_error(errc::invalid_argument, where + "." + field + " must be a boolean");
            *out = k[field].get<bool>();
        }
        if (k.contains("requests_per_minute")) {
            const json& v = k["requests_per_minute"];
            if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 1000000)
                return make_error(errc::invalid_argument,
                                  where + ".requests_per_minute must be an integer from 0 (unlimited) to 1000000");
            a.requests_per_minute = v.get<int32_t>();
        }
        for (auto [field, out] :
             {std::pair{"sessions", &a.sessions}, std::pair{"characters", &a.characters}, std::pair{"read", &a.read}}) {
            if (!k.contains(field)) continue;
            if (!k[field].is_array())
                return make_error(errc::invalid_argument, where + "." + field + " must be an array");
            for (const auto& s : k[field]) {
                if (!s.is_string())
                    return make_error(errc::invalid_argument, where + "." + field + " must hold strings");
                out->push_back(s.get<std::string>());
            }
        }
        cfg.keys.push_back(std::move(a));
    }
    return cfg;
}

result<auth_config> load_auth_config(const std::string& path) {
    std::ifstream f(path);
    if (!f) return make_error(errc::io_error, "cannot read " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    return parse_auth_config(ss.str());
}

// ---------------------------------------------------------------------------
// server
// ---------------------------------------------------------------------------

struct server::impl {
    state_ptr st;
    net::io_context ioc;
    tcp::acceptor acceptor{ioc};
    std::optional<net::signal_set> signals;
    std::vector<std::thread> threads;
    uint16_t port = 0;
    std::mutex stop_mu;  // guards stopped, serializes stop()
    std::condition_variable stop_cv;
    bool stopped = false;

    explicit impl(int n_threads) : ioc(n_threads) {}
};

server::server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

result<std::unique_ptr<server>> server::start(const server_options& options, engine_runner& runner,
                                              session_manager& sessions) {
    error_code ec;
    const auto addr = net::ip::make_address(options.host, ec);
    if (ec) return make_error(errc::invalid_argument, "bad --host '" + options.host + "': " + ec.message());
    if (options.auth.keys.empty() && !is_loopback(addr))
        return make_error(errc::invalid_argument,
                          "open access (no API keys configured) is only allowed on a loopback host; pass --config");
    auto p = std::make_unique<impl>(std::max(1, options.n_io_threads));
    p->st = std::make_shared<server_state>();
    p->st->opt = options;
    p->st->runner = &runner;
    p->st->sessions = &sessions;
    p->st->model_id = runner.mdl().hp().name.empty() ? "mnemos" : runner.mdl().hp().name;
    p->st->hub->sessions = &sessions;
    const tcp::endpoint ep(addr, options.port);
    p->acceptor.open(ep.protocol(), ec);
    if (!ec) p->acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) p->acceptor.bind(ep, ec);
    if (!ec) p->acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
        return make_error(errc::io_error, "cannot listen on " + options.host + ":" + std::to_string(options.port) +
                                              ": " + ec.message());
    p->port = p->acceptor.local_endpoint().port();
    net::co_spawn(p->acceptor.get_executor(), accept_loop(&p->acceptor, p->st), [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            std::fprintf(stderr, "mnemos serve: accept loop failed: %s\n", x.what());
        }
    });
    // Durable events go to the WebSocket event feed while the io_context runs.
    sessions.set_event_observer(
        [hub = p->st->hub, gate = p->st->gate](const std::string& id, uint64_t seq, const std::string& event_json) {
            if (hub->n_subscribed == 0) return;
            std::lock_guard lk(gate->mu);
            if (!gate->open) return;
            json ev = json::parse(event_json, nullptr, false);
            publish(hub, id, dump(json{{"type", "event"}, {"session_id", id}, {"seq", seq}, {"event", ev}}));
        });
    // Tokens of generations run outside the server (mnemos play's turns) join the same feed.
    sessions.set_token_observer([hub = p->st->hub, gate = p->st->gate](const std::string& id, std::string_view text) {
        if (hub->n_subscribed == 0) return;
        std::lock_guard lk(gate->mu);
        if (gate->open) publish_token(hub, id, text);
    });
    std::unique_ptr<server> s(new server(std::move(p)));
    if (options.handle_signals) {
        s->impl_->signals.emplace(s->impl_->ioc, SIGINT, SIGTERM);
        server* raw = s.get();
        s->impl_->signals->async_wait([raw](const error_code& e, int) {
            if (e) return;
            std::fprintf(stderr, "mnemos serve: signal received, shutting down\n");
            std::thread([raw] { raw->stop(); }).detach();
        });
    }
    for (int i = 0; i < std::max(1, options.n_io_threads); ++i)
        s->impl_->threads.emplace_back([io = &s->impl_->ioc] { run_io(*io); });
    return s;
}

uint16_t server::port() const { return impl_->port; }

void server::stop() {
    std::lock_guard lk(impl_->stop_mu);
    if (impl_->stopped) return;
    auto& st = *impl_->st;
    st.stopping = true;
    st.turns.close();  // turns waiting for their session answer 503
    net::post(impl_->acceptor.get_executor(), [a = &impl_->acceptor] {
        error_code ignored;
        a->close(ignored);
    });
    {
        std::lock_guard ilk(st.inflight_mu);
        for (auto id : st.inflight) st.runner->cancel(id);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (st.m.n_active_turns > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (impl_->signals) {
        error_code ignored;
        impl_->signals->cancel(ignored);
    }
    impl_->ioc.stop();
    for (auto& t : impl_->threads)
        if (t.joinable()) t.join();
    {
        std::lock_guard glk(st.gate->mu);
        st.gate->open = false;
    }
    st.sessions->set_event_observer({});
    st.sessions->set_token_observer({});
    impl_->stopped = true;
    impl_->stop_cv.notify_all();
}

void server::wait() {
    std::unique_lock lk(impl_->stop_mu);
    impl_->stop_cv.wait(lk, [&] { return impl_->stopped; });
}

server::~server() {
    stop();
    // The gate is closed: engine callbacks of turns still in flight no longer post to ioc.
}

}  // namespace mnemos::agent

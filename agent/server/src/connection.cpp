// Connections (connection.h): reading requests (request_reader.h), keep-alive, the WebSocket upgrade.
#include "agent/server/src/connection.h"

#include <boost/beast/websocket.hpp>

#include "agent/server/src/http_reply.h"
#include "agent/server/src/lingering_close.h"
#include "agent/server/src/request_reader.h"
#include "agent/server/src/routes.h"
#include "agent/server/src/ws.h"

namespace mnemos::agent::server_detail {

namespace {

// The peer's address ("" when the socket has none any more).
std::string peer_address(beast::tcp_stream& stream) {
    error_code ec;
    const auto ep = stream.socket().remote_endpoint(ec);
    return ec ? std::string() : ep.address().to_string();
}

// A request that could not be read (malformed, a body or header over the limits): answered once, logged; the
// caller closes the connection (the stream is out of sync).
awaitable<void> refuse_unreadable(beast::tcp_stream& stream, bounded_request_parser& parser, const error_code& ec,
                                  const state_ptr& st, access_record& rec) {
    const unsigned code = refused_request_status(ec);
    rec.method = parser.is_header_done() ? std::string(parser.get().method_string()) : "-";
    rec.path = parser.is_header_done() ? std::string(parser.get().target()) : "-";
    rec.path = rec.path.substr(0, rec.path.find('?'));
    rec.status = code;
    request_t dummy{http::verb::get, "/", 11};
    dummy.keep_alive(false);
    // A browser needs CORS headers to read the refusal: the Origin of the fields read so far (a body over
    // the limit is refused while the header is being finished, before is_header_done()).
    if (auto o = parser.get().find(http::field::origin); o != parser.get().end())
        dummy.set(http::field::origin, o->value());
    std::string message = "malformed HTTP request: " + ec.message();
    if (code == 413) message = "request body exceeds " + std::to_string(st->opt.max_body_bytes) + " bytes";
    if (code == 431)
        message = "request header fields too large (at most " + std::to_string(k_max_header_bytes) +
                  " bytes of header, " + std::to_string(k_max_field_bytes) + " per field, " +
                  std::to_string(k_max_trailer_bytes) + " of trailer)";
    reply rep = code == 413   ? error_reply(http_refusal::payload_too_large, message)
                : code == 431 ? error_reply(http_refusal::headers_too_large, message)
                              : error_reply(errc::invalid_argument, message);
    co_await write_reply(stream, dummy, std::move(rep), st);
    finish_request(*st, rec);
}

// GET /v1/ws with an upgrade: the caller's key and rate limit, then the logged upgrade. Returns the caller, or
// none when refused (the refusal is written and logged).
awaitable<std::optional<caller>> admit_ws(beast::tcp_stream& stream, request_t& req, const state_ptr& st,
                                          access_record& rec) {
    rec.endpoint = "/v1/ws";
    auto who = authenticate(*st, req, true);
    std::optional<reply> refused;
    if (!who)
        refused = error_reply(http_refusal::unauthorized, "missing or invalid API key");
    else
        refused = rate_limited(*st, *who, stream);
    if (refused) {
        if (who) rec.key_name = who->name();
        rec.status = refused->status;
        req.keep_alive(false);
        co_await write_reply(stream, req, std::move(*refused), st);
        finish_request(*st, rec);
        co_return std::nullopt;
    }
    rec.key_name = who->name();
    rec.status = 101;  // logged at the upgrade; the WebSocket's turns are counted by the runner
    finish_request(*st, rec);
    co_return who;
}

}  // namespace

awaitable<void> serve_connection(beast::tcp_stream stream, state_ptr st) {
    st->m.n_connections++;
    // Bounded: a header or a trailer must fit whole (Beast parses either only once all of it is buffered); a
    // request that needs more ends with buffer_overflow (431) instead of growing the buffer without limit.
    beast::flat_buffer buffer(k_max_header_bytes + k_max_trailer_bytes);
    const std::string client = peer_address(stream);
    for (;;) {
        bounded_request_parser parser(st->opt.max_body_bytes);
        stream.expires_after(std::chrono::seconds(60));
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
        if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout)
            break;
        access_record rec;
        rec.client = client;
        if (ec) {
            co_await refuse_unreadable(stream, parser, ec, st, rec);
            co_await lingering_close(stream);  // the client may still be sending the refused request
            break;
        }
        request_t req = parser.release();
        const std::string target(req.target());
        rec.method = std::string(req.method_string());
        rec.path = target.substr(0, target.find('?'));
        if (websocket::is_upgrade(req) && rec.path == "/v1/ws") {
            auto who = co_await admit_ws(stream, req, st, rec);
            if (!who) break;
            auto c = std::make_shared<ws_conn>(ws_stream(std::move(stream)), *who);
            co_await serve_ws(c, std::move(req), st);
            st->m.n_connections--;
            co_return;
        }
        const bool keep = co_await dispatch(stream, std::move(req), st, rec);
        finish_request(*st, rec);
        if (!keep) break;
    }
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    st->m.n_connections--;
}

namespace {

// accept() failing for want of resources (file descriptors, memory) fails again at once until some are
// freed: wait instead of spinning a core, and say so once per episode.
constexpr auto k_accept_backoff = std::chrono::milliseconds(100);

bool out_of_resources(const error_code& ec) {
    return ec == net::error::no_descriptors || ec == net::error::no_buffer_space || ec == net::error::no_memory ||
           ec.value() == ENFILE;
}

}  // namespace

awaitable<void> accept_loop(tcp::acceptor* acceptor, state_ptr st) {
    bool backing_off = false;
    for (;;) {
        auto [ec, socket] = co_await acceptor->async_accept(net::make_strand(acceptor->get_executor()), use_tuple);
        if (ec) {
            if (ec == net::error::operation_aborted || !acceptor->is_open()) co_return;
            st->m.n_accept_errors++;
            if (!out_of_resources(ec)) continue;
            if (!backing_off)
                std::fprintf(stderr, "mnemos serve: accept: %s; retrying every 100 ms until it clears\n",
                             ec.message().c_str());
            backing_off = true;
            net::steady_timer wait(acceptor->get_executor(), k_accept_backoff);
            co_await wait.async_wait(use_tuple);
            continue;
        }
        backing_off = false;
        auto ex = socket.get_executor();
        net::co_spawn(ex, serve_connection(beast::tcp_stream(std::move(socket)), st), log_exception("connection"));
    }
}

}  // namespace mnemos::agent::server_detail

// Replies and SSE (http_reply.h).
#include "agent/server/src/http_reply.h"

#include <cctype>

#include "agent/server/src/cors.h"
#include "agent/server/src/server_state.h"

namespace mnemos::agent::server_detail {

namespace {

json make_error_json(const char* type, const char* code, const std::string& message, const error_detail& d) {
    return {{"error",
             {{"message", message},
              {"type", type},
              {"param", d.param.empty() ? json() : json(d.param)},
              {"code", d.code ? d.code : code}}}};
}

}  // namespace

json error_json(errc c, const std::string& message, const error_detail& d) {
    const errc_http& row = errc_http_of(c);
    return make_error_json(row.type, row.openai_code, message, d);
}

reply error_reply(errc c, const std::string& message, const error_detail& d) {
    return {errc_http_of(c).http_status, dump(error_json(c, message, d))};
}

reply error_reply(http_refusal r, const std::string& message, const error_detail& d) {
    const refusal_http& row = refusal_http_of(r);
    return {row.http_status, dump(make_error_json(row.type, row.openai_code, message, d))};
}

reply error_reply(errc c, const std::string& message) { return error_reply(c, message, error_detail{}); }

reply error_reply(http_refusal r, const std::string& message) { return error_reply(r, message, error_detail{}); }

std::string param_of_message(const std::string& message) {
    if (message.size() < 3 || message[0] != '\'') return {};
    const size_t end = message.find('\'', 1);
    if (end == std::string::npos || end == 1 || end > 64) return {};
    const std::string name = message.substr(1, end - 1);
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') return {};
    return name;
}

reply status_reply(const status& s) {
    error_detail d;
    if (s.code() == errc::invalid_argument || s.code() == errc::unsupported) d.param = param_of_message(s.message());
    if (s.code() == errc::context_exceeded) d.param = "messages";
    return error_reply(s.code(), s.message(), d);
}

reply json_reply(const json& j, unsigned status) { return {status, dump(j)}; }

awaitable<bool> write_reply(beast::tcp_stream& stream, const request_t& req, reply rep, state_ptr st) {
    http::response<http::string_body> res{static_cast<http::status>(rep.status), req.version()};
    res.set(http::field::server, "mnemos");
    res.set(http::field::content_type, rep.content_type);
    if (rep.retry_after >= 0) res.set(http::field::retry_after, std::to_string(rep.retry_after));
    for (auto& [name, value] : rep.headers) res.set(name, value);
    if (auto origin = cors_allow_origin(st->opt, req); !origin.empty()) add_cors_headers(res, origin);
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

awaitable<bool> sse_send(sse_writer* w, unsigned version, std::string data) {
    if (!w->ok) co_return false;
    if (!w->header_sent) {
        http::response<http::empty_body> res{http::status::ok, version};
        res.set(http::field::server, "mnemos");
        res.set(http::field::content_type, "text/event-stream");
        res.set(http::field::cache_control, "no-cache");
        res.chunked(true);
        if (!w->allow_origin.empty()) add_cors_headers(res, w->allow_origin);
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

}  // namespace mnemos::agent::server_detail

// The route table and dispatch (routes.h).
#include "agent/server/src/routes.h"

#include <algorithm>

#include "agent/server/src/authz.h"
#include "agent/server/src/cluster_routes.h"
#include "agent/server/src/completions.h"
#include "agent/server/src/cors.h"
#include "agent/server/src/openai.h"
#include "agent/server/src/responses.h"
#include "agent/server/src/sessions.h"

namespace mnemos::agent::server_detail {

namespace {

reply handle_healthz(request_ctx&) { return json_reply({{"status", "ok"}}); }

reply handle_spectator(request_ctx&) { return {200, spectator_page(), "text/html; charset=utf-8"}; }

reply handle_metrics(request_ctx& cx) {
    if (!may_see_metrics(cx.who))
        return error_reply(http_refusal::forbidden, "/metrics needs an admin key or the \"metrics\" grant");
    return {200, metrics_text(*cx.st), "text/plain; version=0.0.4"};
}

reply handle_embeddings(request_ctx&) {
    return error_reply(http_refusal::not_implemented,
                       "embeddings are not implemented by mnemos serve: it serves a chat model; use a dedicated "
                       "embedding server for /v1/embeddings");
}

// GET /v1/ws without an upgrade (the upgrade is taken by the connection before routing).
reply handle_ws_without_upgrade(request_ctx&) {
    return error_reply(http_refusal::upgrade_required, "GET /v1/ws needs a WebSocket upgrade");
}

api_router make_routes() {
    using http::verb;
    constexpr auto open = route_access::open;
    constexpr auto key = route_access::key;
    api_router r;
    r.add(verb::get, "/healthz", {open, &handle_healthz});
    r.add(verb::get, "/health", {open, &handle_healthz});
    r.add(verb::get, "/", {open, &handle_spectator});
    r.add(verb::get, "/index.html", {open, &handle_spectator});
    r.add(verb::unknown, "/v1/ws", {key, &handle_ws_without_upgrade});
    r.add(verb::get, "/metrics", {key, &handle_metrics});
    r.add(verb::get, "/v1/models", {key, &handle_models});
    r.add(verb::get, "/v1/models/{id}", {key, &handle_model});
    r.add(verb::post, "/v1/embeddings", {key, &handle_embeddings});
    r.add(verb::post, "/v1/chat/completions", {key, &handle_chat_completions});
    r.add(verb::post, "/v1/completions", {key, &handle_completions});
    r.add(verb::post, "/v1/responses", {key, &handle_create_response});
    r.add(verb::get, "/v1/responses/{id}", {key, &handle_get_response});
    r.add(verb::get, "/v1/prefixes", {key, &handle_list_prefixes});
    r.add(verb::get, "/v1/prefixes/{id}", {key, &handle_get_prefix});
    r.add(verb::put, "/v1/prefixes/{id}", {key, &handle_put_prefix});
    r.add(verb::post, "/v1/sessions", {key, &handle_create_session});
    r.add(verb::get, "/v1/sessions", {key, &handle_list_sessions});
    r.add(verb::get, "/v1/sessions/{id}", {key, &handle_get_session});
    r.add(verb::delete_, "/v1/sessions/{id}", {key, &handle_delete_session});
    r.add(verb::post, "/v1/sessions/{id}/messages", {key, &handle_session_message});
    r.add(verb::get, "/v1/sessions/{id}/events", {key, &handle_session_events});
    r.add(verb::get, "/v1/cluster", {key, &handle_cluster});
    return r;
}

// True when the path belongs to an open route (its method does not matter: a wrong one gets 405 unauthenticated).
bool open_path(const api_router::match& m, const api_router& routes, std::string_view path) {
    if (m.r) return m.r->handler.access == route_access::open;
    path_params ignored;
    for (const auto& r : routes.routes())
        if (r.handler.access == route_access::open && match_path(r.pattern, path, ignored)) return true;
    return false;
}

// "GET, POST": the methods of the routes whose pattern matches path (a route for any method counts as GET).
std::string methods_of(const api_router& routes, std::string_view path) {
    std::vector<http::verb> methods;
    path_params ignored;
    for (const auto& r : routes.routes()) {
        if (!match_path(r.pattern, path, ignored)) continue;
        const http::verb v = r.method == http::verb::unknown ? http::verb::get : r.method;
        if (std::find(methods.begin(), methods.end(), v) == methods.end()) methods.push_back(v);
    }
    std::string out;
    for (auto v : methods) out += (out.empty() ? "" : ", ") + std::string(http::to_string(v));
    return out;
}

awaitable<bool> run(const api_handler& h, request_ctx& cx) {
    if (auto* plain = std::get_if<plain_handler>(&h.fn)) co_return co_await respond(cx, (*plain)(cx));
    const bool keep = co_await std::get<stream_handler>(h.fn)(cx);
    // A stream handler answers through respond() (which records the status) or with an SSE stream, always 200:
    // one that kept the connection without the former wrote the latter.
    if (cx.rec.status == 0 && keep) cx.rec.status = 200;
    co_return keep;
}

}  // namespace

const api_router& api_routes() {
    static const api_router routes = make_routes();
    return routes;
}

awaitable<bool> dispatch(beast::tcp_stream& stream, request_t req, state_ptr st, access_record& rec) {
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    const auto& routes = api_routes();
    auto m = routes.find(req.method(), path);
    if (m.r) rec.endpoint = m.r->pattern;
    request_ctx cx{stream, std::move(req), st, caller{}, std::move(m.params), rec};
    // A CORS preflight carries no key: answered before authentication, for paths that exist.
    if (!st->opt.cors_origins.empty() && is_preflight(cx.req) && m.path_found)
        co_return co_await respond(cx, preflight_reply(st->opt, cx.req, methods_of(routes, path)));
    if (!open_path(m, routes, path)) {
        auto who = authenticate(*st, cx.req);
        if (!who) co_return co_await respond(cx, error_reply(http_refusal::unauthorized, "missing or invalid API key"));
        cx.who = *who;
        rec.key_name = cx.who.name();
        if (auto limited = rate_limited(*st, cx.who, stream)) co_return co_await respond(cx, std::move(*limited));
    }
    if (!m.r && m.path_found)
        co_return co_await respond(cx, error_reply(http_refusal::method_not_allowed, "use " + m.allowed));
    if (!m.r) co_return co_await respond(cx, error_reply(errc::not_found, "no route for " + path));
    if (auto moved = cluster_redirect(cx, target)) co_return co_await respond(cx, std::move(*moved));
    co_return co_await run(m.r->handler, cx);
}

}  // namespace mnemos::agent::server_detail

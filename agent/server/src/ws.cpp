// GET /v1/ws (ws.h): frames in, turns and the event feed out.
#include "agent/server/src/ws.h"

#include <set>

#include "agent/core/util.h"
#include "agent/server/src/authz.h"
#include "agent/server/src/cluster_routes.h"
#include "agent/server/src/engine_bridge.h"
#include "agent/server/src/openai.h"
#include "agent/server/src/request_parse.h"
#include "agent/server/src/session_turn.h"
#include "tools/json_limits.h"

namespace mnemos::agent::server_detail {

namespace {

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
        unreported_error(*st, "end_turn after a prompt too long", st->sessions->end_turn(s, {}, false));
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
    // The tokens are sent: a failure here can only be counted and logged.
    unreported_error(
        *st, "end_turn of a WebSocket turn",
        st->sessions->end_turn(s, out.text, out.info.reason != engine::finish_reason::error, context_event_extra(cw)));
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

// A game log's metadata (mnemos play: session "<scenario>.game") as e["game"]: its title, steps, probes, phases and
// names, for the spectator page's progress and score.
void add_game_meta(const server_state& st, const std::string& sid, json& e) {
    static constexpr std::string_view suffix = ".game";
    if (sid.size() <= suffix.size() || sid.compare(sid.size() - suffix.size(), suffix.size(), suffix) != 0) return;
    auto meta = st.sessions->store().get_session(sid);
    json m = meta ? json::parse(meta.value(), nullptr, false) : json();
    if (!m.is_object() || m.value("kind", json()) != json("game")) return;
    json g = json::object();
    for (const char* k : {"scenario", "title", "n_steps", "n_probes", "phases", "names"})
        if (m.contains(k)) g[k] = m[k];
    e["game"] = std::move(g);
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
        add_game_meta(st, sid, e);
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
    const bool allowed = c.who.may_create() || (!c.who.key->name.empty() && c.who.key->name == name);
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

// {"type": "subscribe" | "unsubscribe", "topic": "events"}.
awaitable<void> ws_subscribe(std::shared_ptr<ws_conn> c, json b, state_ptr st, bool on) {
    if (!on) {
        if (c->subscribed) {
            c->subscribed = false;
            st->hub->n_subscribed--;
        }
        co_return;
    }
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
}

// The "role" of a message frame (default "user"; "developer" is "system"). Errors: invalid_argument.
status read_frame_role(const json& b, std::string& role) {
    auto r = b.find("role");
    if (r == b.end() || r->is_null()) return {};
    static const std::set<std::string> roles = {"user", "tool", "assistant", "system", "developer"};
    if (!r->is_string() || !roles.contains(r->get<std::string>()))
        return make_error(errc::invalid_argument,
                          "'role' must be \"user\", \"tool\", \"assistant\", \"system\" or \"developer\"");
    role = *r == "developer" ? std::string("system") : r->get<std::string>();
    return {};
}

// Cluster mode: the error frame of a turn for a session another node owns, with that node's /v1/ws.
std::string owned_elsewhere_frame(const std::string& sid, std::string url) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    return dump(json{{"type", "error"},
                     {"session_id", sid},
                     {"message", "session '" + sid + "' is served by another node: " + url},
                     {"redirect", url + "/v1/ws"}});
}

// A {"type": "message", "session_id", "content", "role"?, sampling...} frame: checks it, then starts its turn.
awaitable<void> ws_message(std::shared_ptr<ws_conn> c, json b, state_ptr st) {
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
    if (ps.ok()) ps = read_frame_role(b, m.role);
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
    if (auto owner = cluster_owner(*st, sid); !owner || !owner->empty()) {  // cluster mode: owned elsewhere
        if (!owner) {
            co_await ws_error(c, "session '" + sid + "': its owner is unknown: " + owner.error().message());
        } else {
            co_await ws_send(c, owned_elsewhere_frame(sid, *owner));
        }
        co_return;
    }
    auto s = st->sessions->find(sid);
    if (!s || !can_talk(c->who, *s.value())) {
        co_await ws_error(c, "no session '" + sid + "'");
        co_return;
    }
    std::vector<engine::chat_message> msgs{std::move(m)};
    if (auto why = role_refusal(c->who, *s.value(), msgs)) {
        co_await ws_error(c, *why);
        co_return;
    }
    if (!s.value()->agent_json.empty()) {
        co_await ws_error(c, "agent sessions do not stream; use POST /v1/sessions/{id}/messages");
        co_return;
    }
    // The turn waits for its session and streams on its own coroutine (same strand) so the socket keeps
    // reading; coroutines spawned in frame order reach the session's queue in that order.
    auto ex = co_await net::this_coro::executor;
    net::co_spawn(ex, ws_turn(c, st, s.value(), std::move(msgs), g), log_exception("WebSocket turn"));
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
    if (type == "subscribe" || type == "unsubscribe") {
        co_await ws_subscribe(c, std::move(b), st, type == "subscribe");
    } else if (type == "player") {
        co_await ws_send(c, ws_player_reply(*c, b, *st));
    } else if (type == "message") {
        co_await ws_message(c, std::move(b), st);
    } else {
        co_await ws_error(c, "unknown type '" + type + "'");
    }
}

}  // namespace

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
    net::co_spawn(ex, ws_writer(c), log_exception("WebSocket writer"));
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
        if (auto w = wk.lock()) w->abandon();
    c->waiters.clear();
    if (c->subscribed) {
        c->subscribed = false;
        st->hub->n_subscribed--;
    }
    c->out.close();
}

}  // namespace mnemos::agent::server_detail

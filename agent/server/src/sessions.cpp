// The sessions API (sessions.h); shared prefixes are in prefixes.cpp.
#include "agent/server/src/sessions.h"

#include "agent/server/src/agent.h"
#include "agent/server/src/authz.h"
#include "agent/server/src/openai.h"
#include "agent/server/src/request_parse.h"
#include "agent/server/src/session_turn.h"
#include "agent/tooling/agent_loop.h"
#include "tools/prompt.h"

namespace mnemos::agent::server_detail {

namespace {

// include_private: the character's private fields and the agent settings (callers with read access).
json session_json(const session& s, bool include_private) {
    const session_stats now = s.stats();
    return {{"id", s.id},
            {"object", "session"},
            {"character", character_to_json(s.chr, include_private)},
            {"created", s.created},
            {"n_messages", now.n_messages},
            {"n_tokens", now.n_tokens},
            {"n_turns", now.n_turns},
            {"agent", s.agent_json.empty() || !include_private ? json() : json::parse(s.agent_json, nullptr, false)},
            {"busy", now.busy}};
}

// The session of the path's {id} when the caller may talk to it; a session the caller may not talk to
// looks like a missing one (404).
std::variant<session_ptr, reply> talkable_session(request_ctx& cx) {
    const std::string& id = cx.params.get("id");
    auto s = cx.st->sessions->find(id);
    if (!s && s.error().code() != errc::not_found) return status_reply(s.error());  // the store failed (cluster)
    if (!s || !can_talk(cx.who, *s.value())) return error_reply(errc::not_found, "no session '" + id + "'");
    return s.value();
}

// The settings of POST /v1/sessions.
struct new_session {
    std::string id;
    character chr;
    std::string system_extra;  // an agent session's tools prompt
    std::string agent_text;    // its settings, as JSON text
};

// Parses {"id"?, "character"?, "agent"?}.
result<new_session> parse_new_session(const json& b, session_manager& sessions) {
    new_session n;
    if (auto it = b.find("id"); it != b.end() && !it->is_null()) {
        if (!it->is_string()) return make_error(errc::invalid_argument, "'id' must be a string");
        n.id = it->get<std::string>();
        if (n.id.empty()) return make_error(errc::invalid_argument, "'id' must not be empty");
    }
    if (auto it = b.find("character"); it != b.end() && !it->is_null()) {
        auto c = character_from_json(*it);
        if (!c) return c.error();
        n.chr = std::move(c.value());
    }
    if (auto it = b.find("agent"); it != b.end() && !it->is_null()) {
        auto a = parse_agent_settings(*it);
        if (!a) return a.error();
        auto reg = make_agent_tools(a.value(), "probe", sessions);
        if (!reg) return reg.error();
        n.system_extra = tools::render_tools_prompt(*reg.value());
        n.agent_text = agent_settings_to_json(a.value()).dump();
    }
    return n;
}

// The messages of POST /v1/sessions/{id}/messages: "messages" (OpenAI) or one "content" with an
// optional "role" ("user" or "tool").
status parse_turn_messages(const json& b, std::vector<engine::chat_message>& msgs) {
    if (b.contains("messages")) return parse_messages(b, msgs);
    engine::chat_message m{"user", {}};
    auto c = b.find("content");
    if (c == b.end() || !c->is_string()) return make_error(errc::invalid_argument, "'content' must be a string");
    if (auto ps = parse_content(*c, m.content); !ps.ok()) return ps;
    if (auto r = b.find("role"); r != b.end() && !r->is_null()) {
        if (!r->is_string() || (r->get<std::string>() != "user" && r->get<std::string>() != "tool"))
            return make_error(errc::invalid_argument, "'role' must be \"user\" or \"tool\"");
        m.role = r->get<std::string>();
    }
    msgs.push_back(std::move(m));
    return {};
}

}  // namespace

reply handle_list_sessions(request_ctx& cx) {
    if (!cx.who.admin()) return error_reply(http_refusal::forbidden, "listing sessions needs an admin key");
    auto& store = cx.st->sessions->store();
    json data = json::array();
    for (const auto& sid : store.list_sessions()) {
        auto meta = store.get_session(sid);
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
    return json_reply({{"object", "list"}, {"data", data}});
}

reply handle_create_session(request_ctx& cx) {
    if (!cx.who.may_create()) return error_reply(http_refusal::forbidden, "this key may not create sessions");
    json b = json::object();
    if (!cx.req.body().empty()) {
        auto parsed = parse_body(cx.req);
        if (auto* e = std::get_if<reply>(&parsed)) return std::move(*e);
        b = std::move(std::get<json>(parsed));
    }
    auto n = parse_new_session(b, *cx.st->sessions);
    if (!n) return status_reply(n.error());
    if (!n->chr.shared_prefix.empty() && !may_read_prefixes(cx.who))
        return error_reply(http_refusal::forbidden,
                           "character.shared_prefix needs a key with the \"prefixes\" grant (read or write)",
                           {"character", nullptr});
    auto s = cx.st->sessions->create(n->id, std::move(n->chr), cx.who.name(), std::move(n->system_extra),
                                     std::move(n->agent_text));
    if (!s) return status_reply(s.error());
    return json_reply(session_json(*s.value(), true), 201);
}

reply handle_get_session(request_ctx& cx) {
    auto found = talkable_session(cx);
    if (auto* e = std::get_if<reply>(&found)) return std::move(*e);
    const session_ptr& s = std::get<session_ptr>(found);
    return json_reply(session_json(*s, can_read(cx.who, *s)));
}

reply handle_delete_session(request_ctx& cx) {
    auto found = talkable_session(cx);
    if (auto* e = std::get_if<reply>(&found)) return std::move(*e);
    const session_ptr& s = std::get<session_ptr>(found);
    if (!can_read(cx.who, *s)) return error_reply(http_refusal::forbidden, "this key may not delete the session");
    if (s->busy()) return error_reply(errc::busy, "session is busy");
    if (auto rs = cx.st->sessions->remove(s->id); !rs.ok()) return status_reply(rs);
    return json_reply({{"id", s->id}, {"object", "session"}, {"deleted", true}});
}

reply handle_session_events(request_ctx& cx) {
    auto found = talkable_session(cx);
    if (auto* e = std::get_if<reply>(&found)) return std::move(*e);
    const session_ptr& s = std::get<session_ptr>(found);
    if (!can_read(cx.who, *s))
        return error_reply(http_refusal::forbidden, "this key may not read the session's events");
    auto evs = cx.st->sessions->events(s->id);
    if (!evs) return status_reply(evs.error());
    json arr = json::array();
    for (const auto& e : evs.value()) {
        json ev = json::parse(e, nullptr, false);
        arr.push_back(ev.is_discarded() ? json(e) : ev);
    }
    return json_reply({{"object", "list"}, {"session_id", s->id}, {"data", arr}});
}

awaitable<bool> handle_session_message(request_ctx& cx) {
    auto found = talkable_session(cx);
    if (auto* e = std::get_if<reply>(&found)) co_return co_await respond(cx, std::move(*e));
    const session_ptr s = std::get<session_ptr>(found);
    auto parsed = parse_turn_request(cx.req, parse_turn_messages);
    if (auto* e = std::get_if<reply>(&parsed)) co_return co_await respond(cx, std::move(*e));
    auto& [b, g, msgs] = std::get<turn_request>(parsed);
    if (g.n > 1)
        co_return co_await respond(cx, error_reply(errc::invalid_argument, "'n' must be 1: a session has one history"));
    if (auto refused = refuse_roles(cx.who, *s, msgs)) co_return co_await respond(cx, std::move(*refused));
    if (b.contains("tool_choice") && !owns(cx.who, *s)) {
        // Built outside the co_await: GCC 12 mishandles reference-bound temporaries within a co_await expression.
        reply refused = error_reply(http_refusal::forbidden,
                                    "'tool_choice' on session '" + s->id + "' needs a key that owns or administers it",
                                    error_detail{"tool_choice"});
        co_return co_await respond(cx, std::move(refused));
    }
    // The session's earlier turns first (held until this turn's reply is written).
    turn_ticket ticket = co_await acquire_turn(cx.st, s.get(), &cx.stream.socket(), nullptr);
    if (!ticket.slot) {
        if (ticket.client_gone) co_return false;
        co_return co_await respond(cx, std::move(ticket.err));
    }
    if (!s->agent_json.empty()) {
        if (g.stream)
            co_return co_await respond(
                cx, error_reply(errc::invalid_argument, "agent sessions do not stream; leave 'stream' unset"));
        json first_choice = b.contains("tool_choice") ? b["tool_choice"] : json("auto");
        co_return co_await agent_turn(cx, s, std::move(msgs), g, std::move(first_choice));
    }
    auto plan = cx.st->sessions->begin_turn(s, msgs);
    if (!plan) co_return co_await respond(cx, status_reply(plan.error()));
    co_return co_await complete(cx, s, std::move(plan.value()), g, nullptr);
}

}  // namespace mnemos::agent::server_detail

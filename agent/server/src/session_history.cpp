// "session_id" on chat completions (session_history.h).
#include "agent/server/src/session_history.h"

#include "agent/server/history_match.h"
#include "agent/server/src/authz.h"

namespace mnemos::agent::server_detail {

namespace {

// 1 when s's log starts with the session's own system message (its character's or agent's), else 0.
size_t own_system_messages(const session& s, const std::vector<engine::chat_message>& log, const session_manager& sm) {
    if (log.empty() || log[0].role != "system") return 0;
    if (!s.agent_json.empty()) return 1;
    const std::string prefix =
        s.chr.shared_prefix.empty() ? std::string() : sm.shared_prefix(s.chr.shared_prefix).value_or("");
    return character_system_prompt(s.chr, prefix).empty() ? 0 : 1;
}

}  // namespace

std::variant<session_ptr, reply> find_or_create_session(request_ctx& cx, const std::string& sid, const json& body) {
    auto& sessions = *cx.st->sessions;
    auto found = sessions.find(sid);
    if (!found && found.error().code() != errc::not_found) return status_reply(found.error());
    if (found) {
        if (!can_talk(cx.who, *found.value()))
            return error_reply(errc::not_found, "no session '" + sid + "'", {"session_id", nullptr});
        return found.value();
    }
    if (!cx.who.may_create())
        return error_reply(http_refusal::forbidden,
                           "no session '" + sid + "', and this key may not create sessions (POST /v1/sessions)",
                           {"session_id", nullptr});
    character chr;
    if (auto it = body.find("character"); it != body.end() && !it->is_null()) {
        auto c = character_from_json(*it);
        if (!c) return error_reply(c.error().code(), "'character': " + c.error().message(), {"character", nullptr});
        chr = std::move(c.value());
    }
    if (!chr.shared_prefix.empty() && !may_read_prefixes(cx.who))
        return error_reply(http_refusal::forbidden,
                           "character.shared_prefix needs a key with the \"prefixes\" grant (read or write)",
                           {"character", nullptr});
    auto made = sessions.create(sid, std::move(chr), cx.who.name());
    if (made) return made.value();
    // Created meanwhile by a concurrent first request: use that one.
    if (made.error().code() == errc::already_exists) {
        auto again = sessions.find(sid);
        if (again && can_talk(cx.who, *again.value())) return again.value();
    }
    const errc code = made.error().code();
    return error_reply(code, made.error().message(), {"session_id", nullptr});
}

std::variant<std::vector<engine::chat_message>, reply> new_messages_of(const session& s, const session_manager& sm,
                                                                       const std::vector<engine::chat_message>& msgs) {
    const auto log = s.messages();
    history_match m = match_history(log, own_system_messages(s, log, sm), msgs);
    if (m.kind == history_match::append) return std::move(m.tail);
    return error_reply(errc::busy, "session '" + s.id + "': " + m.message, {"messages", "session_history_mismatch"});
}

}  // namespace mnemos::agent::server_detail

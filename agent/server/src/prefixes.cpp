// Shared prefixes (sessions.h): GET /v1/prefixes, GET /v1/prefixes/{id}, PUT /v1/prefixes/{id} {"text"}:
// texts (e.g. a game's rules) that characters name in character.shared_prefix. Reading needs the "prefixes"
// grant (read or write), writing "prefixes": "write" (admin keys both; create does not imply either): the
// text is often a game's solution, and becomes part of characters' system prompts. A replacement is a new
// version: sessions created earlier keep the text they were created with (their first event holds it).
#include "agent/core/util.h"
#include "agent/server/src/authz.h"
#include "agent/server/src/request_parse.h"
#include "agent/server/src/sessions.h"

namespace mnemos::agent::server_detail {

namespace {

std::optional<reply> refuse_unless_reader(const request_ctx& cx) {
    if (may_read_prefixes(cx.who)) return std::nullopt;
    return error_reply(http_refusal::forbidden, "reading shared prefixes needs the \"prefixes\" grant (read or write)");
}

std::optional<reply> refuse_unless_writer(const request_ctx& cx) {
    if (may_write_prefixes(cx.who)) return std::nullopt;
    return error_reply(http_refusal::forbidden, "writing shared prefixes needs \"prefixes\": \"write\"");
}

// The "text" of a PUT body: a non-empty UTF-8 string.
status check_prefix_text(const json& b) {
    auto it = b.find("text");
    if (it == b.end() || !it->is_string()) return make_error(errc::invalid_argument, "'text' must be a string");
    if (it->get_ref<const std::string&>().empty())
        return make_error(errc::invalid_argument, "'text' must not be empty");
    if (!valid_utf8(it->get_ref<const std::string&>()))
        return make_error(errc::invalid_argument, "'text' is not valid UTF-8");
    return {};
}

}  // namespace

reply handle_list_prefixes(request_ctx& cx) {
    if (auto refused = refuse_unless_reader(cx)) return std::move(*refused);
    json data = json::array();
    for (const auto& [pid, text] : cx.st->sessions->shared_prefixes())
        data.push_back({{"id", pid}, {"object", "prefix"}, {"bytes", text.size()}});
    return json_reply({{"object", "list"}, {"data", data}});
}

reply handle_get_prefix(request_ctx& cx) {
    if (auto refused = refuse_unless_reader(cx)) return std::move(*refused);
    const std::string& id = cx.params.get("id");
    auto text = cx.st->sessions->shared_prefix(id);
    if (!text) return error_reply(errc::not_found, "no prefix '" + id + "'");
    return json_reply({{"id", id}, {"object", "prefix"}, {"text", *text}, {"bytes", text->size()}});
}

reply handle_put_prefix(request_ctx& cx) {
    if (auto refused = refuse_unless_writer(cx)) return std::move(*refused);
    auto& st = *cx.st;
    const std::string& id = cx.params.get("id");
    auto parsed = parse_body(cx.req);
    if (auto* e = std::get_if<reply>(&parsed)) return std::move(*e);
    const json& b = std::get<json>(parsed);
    if (auto cs = check_prefix_text(b); !cs.ok()) return status_reply(cs);
    std::string text = b["text"].get<std::string>();
    // It must leave room in the window for a persona and a conversation: half the context under full
    // attention; with sparse attention a prefix may be longer than the context.
    const int32_t n_tokens = static_cast<int32_t>(st.runner->mdl().tok().encode(text, false, false).size());
    const bool full = st.runner->attention().mode == engine::attention_mode::full;
    const int32_t limit = (full ? st.runner->n_ctx() : st.runner->history_limit()) / 2;
    if (n_tokens > limit)
        return error_reply(http_refusal::payload_too_large, "prefix has " + std::to_string(n_tokens) +
                                                                " tokens; at most " + std::to_string(limit) +
                                                                " (half the context) are allowed");
    const bool existed = st.sessions->shared_prefix(id).has_value();
    const size_t bytes = text.size();
    if (auto ps = st.sessions->put_shared_prefix(id, std::move(text)); !ps.ok()) return status_reply(ps);
    return json_reply({{"id", id}, {"object", "prefix"}, {"bytes", bytes}, {"n_tokens", n_tokens}},
                      existed ? 200 : 201);
}

}  // namespace mnemos::agent::server_detail

// Matching a request's messages against a session's log (agent/server/history_match.h).
#include "agent/server/history_match.h"

#include <nlohmann/json.hpp>

#include "agent/tooling/tool_call_format.h"

namespace mnemos::agent::server_detail {

namespace {

using nlohmann::json;

std::string trimmed(const std::string& s) {
    const size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return {};
    const size_t e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

// {"name", "content"} of a rendered tool result ("<tool_response>\n{...}\n</tool_response>"); null otherwise.
json tool_result_of(const std::string& text) {
    const std::string t = trimmed(text);
    static const std::string open = "<tool_response>", close = "</tool_response>";
    if (!t.starts_with(open) || !t.ends_with(close)) return {};
    json j = json::parse(t.substr(open.size(), t.size() - open.size() - close.size()), nullptr, false);
    return j.is_object() ? j : json();
}

bool same_tool_result(const std::string& a, const std::string& b) {
    const json ja = tool_result_of(a), jb = tool_result_of(b);
    if (ja.is_null() || jb.is_null()) return trimmed(a) == trimmed(b);
    const std::string na = ja.value("name", json("")).is_string() ? ja.value("name", "") : "";
    const std::string nb = jb.value("name", json("")).is_string() ? jb.value("name", "") : "";
    if (!na.empty() && !nb.empty() && na != nb) return false;
    return ja.value("content", json()) == jb.value("content", json());
}

bool same_assistant(const std::string& a, const std::string& b) {
    if (trimmed(a) == trimmed(b)) return true;
    const auto pa = extract_tool_calls(a, false), pb = extract_tool_calls(b, false);
    if (pa.calls.empty() || pa.calls.size() != pb.calls.size() || trimmed(pa.content) != trimmed(pb.content))
        return false;
    for (size_t i = 0; i < pa.calls.size(); ++i)
        if (pa.calls[i].name != pb.calls[i].name || pa.calls[i].arguments != pb.calls[i].arguments) return false;
    return true;
}

// The start of a message's content for an error message: at most 60 bytes (not cutting a UTF-8 sequence).
std::string excerpt(const std::string& s) {
    std::string t = trimmed(s);
    if (t.size() <= 60) return json(t).dump(-1, ' ', false, json::error_handler_t::replace);
    size_t n = 60;
    while (n > 0 && (static_cast<unsigned char>(t[n]) & 0xC0) == 0x80) --n;
    return json(t.substr(0, n) + "...").dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string describe(const engine::chat_message& m) { return m.role + " " + excerpt(m.content); }

}  // namespace

bool same_message(const engine::chat_message& a, const engine::chat_message& b) {
    if (a.role != b.role) return false;
    if (a.role == "assistant") return same_assistant(a.content, b.content);
    if (a.role == "tool") return same_tool_result(a.content, b.content);
    return trimmed(a.content) == trimmed(b.content);
}

history_match match_history(const std::vector<engine::chat_message>& log, size_t n_own,
                            const std::vector<engine::chat_message>& request) {
    history_match m;
    if (n_own > log.size()) n_own = log.size();
    // A request that starts with the session's own system message resends it too.
    if (n_own > 0 && !request.empty() && same_message(request[0], log[0])) n_own = 0;
    const size_t n_log = log.size() - n_own;
    bool resent = request.size() >= 2 && n_log > 0 && same_message(request[0], log[n_own]);
    for (const auto& r : request) resent = resent || r.role == "assistant" || r.role == "system";
    if (!resent || n_log == 0) {
        m.tail = request;
        return m;
    }
    for (size_t i = 0; i < request.size() && i < n_log; ++i) {
        const auto& want = log[n_own + i];
        if (same_message(request[i], want)) continue;
        m.kind = history_match::conflict;
        m.index = i;
        m.message = "messages[" + std::to_string(i) + "] differs from the session's log: expected " + describe(want) +
                    ", got " + describe(request[i]) +
                    " (with session_id, send only new messages, or the whole history unchanged plus new ones)";
        return m;
    }
    if (request.size() <= n_log) {
        m.kind = history_match::nothing_new;
        m.index = request.size();
        m.message = "the request's " + std::to_string(request.size()) +
                    " messages are all in the session's log already (" + std::to_string(n_log) +
                    " messages); add a new message";
        return m;
    }
    m.tail.assign(request.begin() + static_cast<std::ptrdiff_t>(n_log), request.end());
    return m;
}

}  // namespace mnemos::agent::server_detail

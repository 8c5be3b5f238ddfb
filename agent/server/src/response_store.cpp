// Stored responses (response_store.h).
#include "agent/server/src/response_store.h"

#include "agent/core/util.h"

namespace mnemos::agent::server_detail {

namespace {

constexpr std::string_view k_session_prefix = "resp-";
constexpr std::string_view k_response_prefix = "resp_";
constexpr size_t k_session_hex = 24;
constexpr size_t k_response_hex = 40;

bool all_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

result<stored_response> not_stored(const std::string& id) {
    return make_error(errc::not_found, "no stored response '" + id + "'");
}

}  // namespace

std::string new_chain_session_id() { return std::string(k_session_prefix) + random_hex(k_session_hex); }

std::string new_response_id(const std::string& session_id) {
    if (session_id.empty()) return std::string(k_response_prefix) + random_hex(k_response_hex);
    return std::string(k_response_prefix) + session_id.substr(k_session_prefix.size()) +
           random_hex(k_response_hex - k_session_hex);
}

std::optional<std::string> session_of_response(std::string_view id) {
    if (id.size() != k_response_prefix.size() + k_response_hex ||
        id.substr(0, k_response_prefix.size()) != k_response_prefix)
        return std::nullopt;
    const std::string_view hex = id.substr(k_response_prefix.size());
    if (!all_hex(hex)) return std::nullopt;
    return std::string(k_session_prefix) + std::string(hex.substr(0, k_session_hex));
}

std::optional<std::string> response_of_item(std::string_view item_id) {
    for (std::string_view prefix : {std::string_view("msg_"), std::string_view("fc_")}) {
        if (item_id.substr(0, prefix.size()) != prefix) continue;
        const std::string_view hex = item_id.substr(prefix.size(), k_response_hex);
        if (hex.size() != k_response_hex || !all_hex(hex)) return std::nullopt;
        return std::string(k_response_prefix) + std::string(hex);
    }
    return std::nullopt;
}

std::string message_item_id(std::string_view response_id) {
    return "msg_" + std::string(response_id.substr(k_response_prefix.size()));
}

std::string call_item_id(std::string_view response_id, size_t k) {
    return "fc_" + std::string(response_id.substr(k_response_prefix.size())) + "_" + std::to_string(k);
}

json response_event(const stored_response& r) {
    return {{"type", "response"},
            {"response_id", r.response.value("id", "")},
            {"n_messages", r.n_messages},
            {"system", r.system},
            {"response", r.response}};
}

result<stored_response> load_response(session_manager& sessions, const std::string& id) {
    auto sid = session_of_response(id);
    if (!sid) return not_stored(id);
    auto evs = sessions.events(*sid);
    if (!evs) {
        if (evs.error().code() == errc::not_found) return not_stored(id);
        return evs.error();
    }
    for (auto it = evs->rbegin(); it != evs->rend(); ++it) {
        if (it->find(id) == std::string::npos) continue;  // cheap before parsing
        json ev = json::parse(*it, nullptr, false);
        if (!ev.is_object() || ev.value("type", json()) != json("response") ||
            ev.value("response_id", json()) != json(id))
            continue;
        stored_response r;
        r.session_id = *sid;
        if (!ev.contains("n_messages") || !ev["n_messages"].is_number_unsigned() || !ev.contains("response") ||
            !ev["response"].is_object())
            return make_error(errc::corrupt, "stored response '" + id + "' is malformed");
        r.n_messages = ev["n_messages"].get<size_t>();
        r.system = ev.value("system", json("")).is_string() ? ev.value("system", "") : "";
        r.response = std::move(ev["response"]);
        return r;
    }
    return not_stored(id);
}

result<json> find_item(const stored_response& r, const std::string& item_id) {
    if (auto it = r.response.find("output"); it != r.response.end() && it->is_array())
        for (const auto& item : *it)
            if (item.is_object() && item.value("id", json()) == json(item_id)) return item;
    return make_error(errc::not_found, "no stored item '" + item_id + "'");
}

std::map<std::string, std::string> call_names(const json& response) {
    std::map<std::string, std::string> names;
    if (auto it = response.find("output"); it != response.end() && it->is_array())
        for (const auto& item : *it)
            if (item.is_object() && item.value("type", json()) == json("function_call") &&
                item.value("call_id", json()).is_string() && item.value("name", json()).is_string())
                names[item["call_id"].get<std::string>()] = item["name"].get<std::string>();
    return names;
}

}  // namespace mnemos::agent::server_detail

// The reply shapes of the Responses API (responses_output.h).
#include "agent/server/src/responses_output.h"

#include "agent/core/util.h"
#include "agent/server/src/response_store.h"
#include "agent/tooling/tool_call_format.h"

namespace mnemos::agent::server_detail {

namespace {

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

// The request's value of key, or fallback when it has none.
json echoed(const json& req, const char* key, json fallback) {
    auto it = req.find(key);
    return it == req.end() || it->is_null() ? std::move(fallback) : *it;
}

}  // namespace

response_output split_output(const std::string& text, const engine::finish_info& info, bool tools_on, bool forced) {
    response_output o;
    o.incomplete = info.reason == engine::finish_reason::length;
    if (!tools_on) {
        o.text = text;
        return o;
    }
    tools::parsed_output parsed = extract_tool_calls(text, forced);
    if (parsed.calls.empty()) {  // none, or a forced call cut short: the text as it is
        o.text = text;
        return o;
    }
    o.text = forced ? std::string() : parsed.content;
    o.calls = std::move(parsed.calls);
    for (size_t i = 0; i < o.calls.size(); ++i) o.call_ids.push_back("call_" + random_hex(24));
    return o;
}

json response_usage(const engine::finish_info& i) {
    return {{"input_tokens", i.n_prompt},
            {"input_tokens_details", {{"cached_tokens", i.n_reused}}},
            {"output_tokens", i.n_generated},
            {"output_tokens_details", {{"reasoning_tokens", 0}}},
            {"total_tokens", i.n_prompt + i.n_generated}};
}

json message_item(const response_head& h, const std::string& text, const char* status) {
    json content = json::array();
    if (std::string_view(status) != "in_progress")
        content.push_back({{"type", "output_text"}, {"text", text}, {"annotations", json::array()}});
    return {{"id", message_item_id(h.id)},
            {"type", "message"},
            {"status", status},
            {"role", "assistant"},
            {"content", std::move(content)}};
}

json call_item(const response_head& h, size_t k, const std::string& call_id, const std::string& name,
               const std::string& arguments, const char* status) {
    return {{"id", call_item_id(h.id, k)},
            {"type", "function_call"},
            {"status", status},
            {"call_id", call_id},
            {"name", name},
            {"arguments", arguments}};
}

bool has_message_item(const response_output& o) { return o.calls.empty() || !blank(o.text); }

json output_items(const response_head& h, const response_output& o) {
    json out = json::array();
    if (has_message_item(o)) out.push_back(message_item(h, o.text, o.incomplete ? "incomplete" : "completed"));
    for (size_t k = 0; k < o.calls.size(); ++k)
        out.push_back(call_item(h, k, o.call_ids[k], o.calls[k].name, dump(o.calls[k].arguments), "completed"));
    return out;
}

json response_json(const response_head& h, const char* status, json output, json usage) {
    const json& q = h.request;
    const bool incomplete = std::string_view(status) == "incomplete";
    json r = {{"id", h.id},
              {"object", "response"},
              {"created_at", h.created_at},
              {"status", status},
              {"error", nullptr},
              {"incomplete_details", incomplete ? json{{"reason", "max_output_tokens"}} : json()},
              {"instructions", echoed(q, "instructions", json())},
              {"max_output_tokens", echoed(q, "max_output_tokens", json())},
              {"metadata", echoed(q, "metadata", json::object())},
              {"model", h.model},
              {"output", std::move(output)},
              {"parallel_tool_calls", echoed(q, "parallel_tool_calls", true)},
              {"previous_response_id", h.previous_id.empty() ? json() : json(h.previous_id)},
              {"reasoning", {{"effort", nullptr}, {"summary", nullptr}}},
              {"store", echoed(q, "store", true)},
              {"temperature", echoed(q, "temperature", 1.0)},
              {"text", echoed(q, "text", json{{"format", {{"type", "text"}}}})},
              {"tool_choice", echoed(q, "tool_choice", "auto")},
              {"tools", echoed(q, "tools", json::array())},
              {"top_p", echoed(q, "top_p", 1.0)},
              {"truncation", echoed(q, "truncation", "disabled")},
              {"usage", std::move(usage)},
              {"user", echoed(q, "user", json())}};
    if (!h.session_id.empty()) r["session_id"] = h.session_id;
    return r;
}

}  // namespace mnemos::agent::server_detail

// Tool-call parsing from model text. See tools/tool_call_parser.h.
#include "tools/tool_call_parser.h"

#include "tools/json_limits.h"

namespace mnemos::tools {

using nlohmann::json;

const char* tool_call_format_name(tool_call_format f) {
    switch (f) {
        case tool_call_format::none:
            return "none";
        case tool_call_format::hermes:
            return "hermes";
        case tool_call_format::llama3:
            return "llama3";
        case tool_call_format::plain:
            return "plain";
    }
    return "?";
}

namespace {

constexpr std::string_view k_open = "<tool_call>";
constexpr std::string_view k_close = "</tool_call>";
constexpr std::string_view k_python_tag = "<|python_tag|>";

std::string_view trim(std::string_view s) {
    const auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
    while (!s.empty() && ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && ws(s.back())) s.remove_suffix(1);
    return s;
}

// Length of the JSON value (object or array) at the start of s, by bracket matching outside strings;
// 0 when it does not close.
size_t json_extent(std::string_view s) {
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (--depth == 0) return i + 1;
            if (depth < 0) return 0;
        }
    }
    return 0;
}

status error(size_t idx, const std::string& why) {
    return make_error(errc::invalid_argument, "tool call " + std::to_string(idx) + ": " + why);
}

// One call object -> tool_call.
result<tool_call> to_call(const json& j, size_t idx) {
    if (!j.is_object()) return error(idx, "expected a JSON object, got " + std::string(j.type_name()));
    const auto name = j.find("name");
    if (name == j.end()) return error(idx, "missing \"name\"");
    if (!name->is_string() || name->get_ref<const std::string&>().empty())
        return error(idx, "\"name\" must be a non-empty string");
    tool_call c;
    c.name = name->get<std::string>();
    auto args = j.find("arguments");
    if (args == j.end()) args = j.find("parameters");
    if (args == j.end() || args->is_null()) return c;  // no arguments: {}
    if (args->is_string()) {
        const std::string& text = args->get_ref<const std::string&>();
        if (json_too_deep(text)) return error(idx, "\"arguments\": " + json_depth_message());
        json inner = json::parse(text, nullptr, false);
        if (inner.is_discarded()) return error(idx, "\"arguments\" is a string that is not valid JSON");
        if (!inner.is_object()) return error(idx, "\"arguments\" must be an object");
        c.arguments = std::move(inner);
        return c;
    }
    if (!args->is_object()) return error(idx, "\"arguments\" must be an object, got " + std::string(args->type_name()));
    c.arguments = *args;
    return c;
}

// Parses one JSON text holding a call or an array of calls (first index first_idx).
status parse_json_calls(std::string_view text, size_t first_idx, std::vector<tool_call>& out) {
    text = trim(text);
    if (text.empty()) return error(first_idx, "empty");
    if (json_too_deep(text)) return error(first_idx, json_depth_message());
    json j = json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) {
        if ((text.front() == '{' || text.front() == '[') && json_extent(text) == 0)
            return error(first_idx,
                         "truncated JSON (no closing '" + std::string(text.front() == '{' ? "}" : "]") + "')");
        return error(first_idx, "invalid JSON");
    }
    if (j.is_array()) {
        if (j.empty()) return error(first_idx, "empty array of calls");
        for (size_t i = 0; i < j.size(); ++i) {
            auto c = to_call(j[i], first_idx + i);
            if (!c) return c.error();
            out.push_back(std::move(c.value()));
        }
        return {};
    }
    auto c = to_call(j, first_idx);
    if (!c) return c.error();
    out.push_back(std::move(c.value()));
    return {};
}

result<parsed_output> parse_hermes(std::string_view text) {
    parsed_output out;
    out.format = tool_call_format::hermes;
    std::string content;
    size_t pos = 0;
    while (true) {
        const size_t open = text.find(k_open, pos);
        if (open == std::string_view::npos) {
            content += text.substr(pos);
            break;
        }
        content += text.substr(pos, open - pos);
        const size_t body = open + k_open.size();
        const size_t idx = out.calls.size() + 1;
        const size_t close = text.find(k_close, body);
        std::string_view inner;
        if (close != std::string_view::npos) {
            inner = text.substr(body, close - body);
            pos = close + k_close.size();
        } else {
            // No closing tag: accept a complete JSON object followed only by whitespace (the model stopped
            // after the call); anything else is a truncated call.
            const std::string_view rest = trim(text.substr(body));
            if (rest.empty()) return error(idx, "truncated: nothing after <tool_call>");
            const size_t n = (rest.front() == '{' || rest.front() == '[') ? json_extent(rest) : 0;
            if (n == 0) {
                status st = parse_json_calls(rest, idx, out.calls);
                return st.ok() ? error(idx, "truncated: no </tool_call>") : st;
            }
            if (!trim(rest.substr(n)).empty()) return error(idx, "truncated: text after the call but no </tool_call>");
            inner = rest;
            pos = text.size();
        }
        status st = parse_json_calls(inner, idx, out.calls);
        if (!st.ok()) return st;
        if (pos >= text.size()) break;
    }
    out.content = std::string(trim(content));
    return out;
}

// Llama 3.1 style: calls separated by ';' or new lines (each a JSON object or array).
result<parsed_output> parse_json_sequence(std::string_view text, tool_call_format fmt) {
    parsed_output out;
    out.format = fmt;
    text = trim(text);
    while (!text.empty()) {
        const size_t idx = out.calls.size() + 1;
        const size_t n = (text.front() == '{' || text.front() == '[') ? json_extent(text) : 0;
        if (n == 0) {
            status st = parse_json_calls(text, idx, out.calls);
            return st.ok() ? error(idx, "unexpected text after the call") : st;
        }
        status st = parse_json_calls(text.substr(0, n), idx, out.calls);
        if (!st.ok()) return st;
        text = trim(text.substr(n));
        if (!text.empty() && text.front() == ';') text = trim(text.substr(1));
    }
    if (out.calls.empty()) return error(1, "empty");
    return out;
}

bool looks_like_call(std::string_view t) {
    return t.find("\"name\"") != std::string_view::npos &&
           (t.find("\"arguments\"") != std::string_view::npos || t.find("\"parameters\"") != std::string_view::npos);
}

}  // namespace

result<parsed_output> parse_tool_calls(std::string_view text) {
    try {
        if (text.find(k_open) != std::string_view::npos) return parse_hermes(text);
        std::string_view t = trim(text);
        if (t.substr(0, k_python_tag.size()) == k_python_tag) {
            return parse_json_sequence(t.substr(k_python_tag.size()), tool_call_format::llama3);
        }
        if (!t.empty() && (t.front() == '{' || t.front() == '[')) {
            const bool call_like = looks_like_call(t);
            json j = parse_json_bounded(t);
            if (!j.is_discarded()) {
                const bool is_call =
                    (j.is_object() && j.contains("name") && (j.contains("arguments") || j.contains("parameters"))) ||
                    (j.is_array() && !j.empty() && j[0].is_object() && j[0].contains("name"));
                if (!is_call) return parsed_output{tool_call_format::none, {}, std::string(t)};
                const bool llama = j.is_object() ? j.contains("parameters") : j[0].contains("parameters");
                auto r = parse_json_sequence(t, llama ? tool_call_format::llama3 : tool_call_format::plain);
                return r;
            }
            // Several Llama-style calls separated by ';' or new lines, or a broken call.
            if (call_like) {
                const bool llama = t.find("\"parameters\"") != std::string_view::npos;
                return parse_json_sequence(t, llama ? tool_call_format::llama3 : tool_call_format::plain);
            }
        }
        return parsed_output{tool_call_format::none, {}, std::string(t)};
    } catch (const std::exception& e) {
        return make_error(errc::invalid_argument, std::string("tool call: ") + e.what());
    }
}

}  // namespace mnemos::tools

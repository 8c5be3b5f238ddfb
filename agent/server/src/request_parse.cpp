// Request bodies (request_parse.h).
#include "agent/server/src/request_parse.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "agent/core/util.h"
#include "agent/server/server.h"
#include "agent/server/src/choices.h"
#include "agent/server/src/http_reply.h"
#include "agent/tooling/agent_loop.h"
#include "tools/json_limits.h"
#include "tools/prompt.h"

namespace mnemos::agent::server_detail {

std::variant<json, reply> parse_body(const request_t& req) {
    if (tools::json_too_deep(req.body())) return error_reply(errc::invalid_argument, tools::json_depth_message());
    json b = json::parse(req.body(), nullptr, false);
    if (b.is_discarded()) return error_reply(errc::invalid_argument, "body is not valid JSON");
    if (!b.is_object()) return error_reply(errc::invalid_argument, "body must be a JSON object");
    return b;
}

namespace {

// A bound as a short number ("2", "0.5", "1e+06").
std::string bound_text(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// The value a client sent, short, for a message.
std::string sent_text(const json& v) {
    std::string t = dump(v);
    return t.size() > 40 ? t.substr(0, 40) + "..." : t;
}

// b[key], when present and not null, into out: a number in [lo, hi].
template <typename T>
status read_number(const json& b, const char* key, double lo, double hi, T& out) {
    auto it = b.find(key);
    if (it == b.end() || it->is_null()) return {};
    if (!it->is_number()) return make_error(errc::invalid_argument, std::string("'") + key + "' must be a number");
    const double v = it->get<double>();
    if (!(v >= lo && v <= hi))
        return make_error(errc::invalid_argument, std::string("'") + key + "' must be from " + bound_text(lo) + " to " +
                                                      bound_text(hi) + ", got " + sent_text(*it));
    out = static_cast<T>(v);
    return {};
}

status parse_max_tokens(const json& b, gen_params& g) {
    for (const char* key : {"max_tokens", "max_completion_tokens"}) {
        auto it = b.find(key);
        if (it == b.end() || it->is_null()) continue;
        if (!it->is_number() || it->get<double>() < 1 || it->get<double>() > static_cast<double>(k_max_max_tokens) ||
            (!it->is_number_integer() && it->get<double>() != std::floor(it->get<double>())))
            return make_error(errc::invalid_argument,
                              std::string("'") + key + "' must be an integer from 1 to " +
                                  std::to_string(k_max_max_tokens) + " (at most " + std::to_string(k_max_max_tokens) +
                                  " tokens, and no more than the context leaves), got " + sent_text(*it));
        g.max_tokens = static_cast<int32_t>(it->get<int64_t>());
    }
    return {};
}

// The sampler: OpenAI's defaults, the request's values, and its seed (a random one when it gives none).
status parse_sampling(const json& b, engine::sampler_params& sp) {
    sp.temperature = 1.0f;
    sp.top_p = 1.0f;
    sp.top_k = 0;
    sp.min_p = 0.0f;
    for (auto st : {read_number(b, "temperature", 0, 2, sp.temperature), read_number(b, "top_p", 0, 1, sp.top_p),
                    read_number(b, "top_k", 0, 1e6, sp.top_k), read_number(b, "min_p", 0, 1, sp.min_p),
                    read_number(b, "presence_penalty", -2, 2, sp.presence_penalty),
                    read_number(b, "frequency_penalty", -2, 2, sp.frequency_penalty)})
        if (!st.ok()) return st;
    if (sp.top_p <= 0) return make_error(errc::invalid_argument, "'top_p' must be > 0");
    if (auto it = b.find("seed"); it != b.end() && !it->is_null()) {
        if (!it->is_number_integer()) return make_error(errc::invalid_argument, "'seed' must be an integer");
        sp.seed = static_cast<uint64_t>(it->get<int64_t>());
    } else {
        sp.seed = std::stoull(random_hex(13), nullptr, 16);  // 52 bits: exact in JavaScript
    }
    return {};
}

status parse_stop(const json& b, std::vector<std::string>& stop) {
    auto it = b.find("stop");
    if (it == b.end() || it->is_null()) return {};
    if (it->is_string()) {
        stop.push_back(it->get<std::string>());
    } else if (it->is_array() && it->size() <= 4) {
        for (const auto& s : *it) {
            if (!s.is_string()) return make_error(errc::invalid_argument, "'stop' must hold strings");
            stop.push_back(s.get<std::string>());
        }
    } else {
        return make_error(errc::invalid_argument, "'stop' must be a string or an array of at most 4 strings");
    }
    for (const auto& s : stop)
        if (s.empty() || !valid_utf8(s))
            return make_error(errc::invalid_argument, "'stop' strings must be non-empty UTF-8");
    return {};
}

// "stream" and "stream_options": {"include_usage"}.
status parse_stream(const json& b, gen_params& g) {
    if (auto it = b.find("stream"); it != b.end() && !it->is_null()) {
        if (!it->is_boolean()) return make_error(errc::invalid_argument, "'stream' must be a boolean");
        g.stream = it->get<bool>();
    }
    auto it = b.find("stream_options");
    if (it == b.end() || it->is_null()) return {};
    if (!it->is_object()) return make_error(errc::invalid_argument, "'stream_options' must be an object");
    if (auto u = it->find("include_usage"); u != it->end() && !u->is_null()) {
        if (!u->is_boolean())
            return make_error(errc::invalid_argument, "'stream_options.include_usage' must be a boolean");
        g.include_usage = u->get<bool>();
    }
    return {};
}

status parse_n(const json& b, gen_params& g) {
    auto it = b.find("n");
    if (it == b.end() || it->is_null()) return {};
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > k_max_choices)
        return make_error(errc::invalid_argument,
                          "'n' must be an integer in [1, " + std::to_string(k_max_choices) + "]");
    g.n = static_cast<int32_t>(it->get<int64_t>());
    return {};
}

}  // namespace

status parse_gen_params(const json& b, gen_params& g) {
    for (auto st : {parse_max_tokens(b, g), parse_sampling(b, g.sampling), parse_stop(b, g.stop), parse_stream(b, g),
                    parse_n(b, g)})
        if (!st.ok()) return st;
    return {};
}

// Message content: a string, null, or an array of {"type": "text", "text": ...} parts.
status parse_content(const json& c, std::string& out) {
    if (c.is_null()) return {};
    if (c.is_string()) {
        out = c.get<std::string>();
    } else if (c.is_array()) {
        for (const auto& p : c) {
            if (!p.is_object() || p.value("type", json()) != json("text") || !p.contains("text") ||
                !p["text"].is_string())
                return make_error(errc::invalid_argument,
                                  "content parts must be {\"type\": \"text\", \"text\": string}");
            out += p["text"].get<std::string>();
        }
    } else {
        return make_error(errc::invalid_argument, "'content' must be a string or an array of text parts");
    }
    if (!valid_utf8(out)) return make_error(errc::invalid_argument, "'content' is not valid UTF-8");
    return {};
}

status parse_messages(const json& b, std::vector<engine::chat_message>& out) {
    auto it = b.find("messages");
    if (it == b.end() || !it->is_array() || it->empty())
        return make_error(errc::invalid_argument, "'messages' must be a non-empty array");
    if (it->size() > k_max_messages)
        return make_error(errc::invalid_argument, "'messages' has " + std::to_string(it->size()) +
                                                      " entries; at most " + std::to_string(k_max_messages) +
                                                      " messages per request");
    std::map<std::string, std::string> call_names;  // tool_call_id -> function name
    for (const auto& m : *it) {
        if (!m.is_object()) return make_error(errc::invalid_argument, "each message must be an object");
        auto r = m.find("role");
        if (r == m.end() || !r->is_string())
            return make_error(errc::invalid_argument, "each message needs a string 'role'");
        std::string role = r->get<std::string>();
        if (role == "developer") role = "system";
        if (role != "system" && role != "user" && role != "assistant" && role != "tool")
            return make_error(errc::invalid_argument, "unknown role '" + role + "'");
        engine::chat_message cm{role, {}};
        if (auto c = m.find("content"); c != m.end()) {
            if (auto st = parse_content(*c, cm.content); !st.ok()) return st;
        } else if (role != "assistant") {
            return make_error(errc::invalid_argument, "message needs 'content'");
        }
        if (auto tc = m.find("tool_calls"); role == "assistant" && tc != m.end() && !tc->is_null()) {
            if (!tc->is_array()) return make_error(errc::invalid_argument, "'tool_calls' must be an array");
            for (const auto& c : *tc) {
                auto f = c.is_object() ? c.find("function") : c.end();
                if (!c.is_object() || f == c.end() || !f->is_object() || !f->contains("name") ||
                    !(*f)["name"].is_string())
                    return make_error(errc::invalid_argument, "each tool call needs 'function.name'");
                json args = json::object();
                if (auto a = f->find("arguments"); a != f->end() && !a->is_null()) {
                    if (a->is_string() && tools::json_too_deep(a->get_ref<const std::string&>()))
                        return make_error(errc::invalid_argument,
                                          "tool call arguments: " + tools::json_depth_message());
                    args = a->is_string() ? json::parse(a->get<std::string>(), nullptr, false) : *a;
                    if (args.is_discarded() || !args.is_object())
                        return make_error(errc::invalid_argument, "tool call arguments must be a JSON object");
                }
                const std::string name = (*f)["name"].get<std::string>();
                if (c.contains("id") && c["id"].is_string()) call_names[c["id"].get<std::string>()] = name;
                cm.content += (cm.content.empty() ? "" : "\n") + hermes_tool_call(name, args);
            }
        }
        if (role == "tool") {
            std::string name = m.value("name", json("")).is_string() ? m.value("name", "") : "";
            if (auto id = m.find("tool_call_id"); id != m.end() && id->is_string())
                if (auto it = call_names.find(id->get<std::string>()); it != call_names.end()) name = it->second;
            if (tools::json_too_deep(cm.content))
                return make_error(errc::invalid_argument, "tool message content: " + tools::json_depth_message());
            json content = json::parse(cm.content, nullptr, false);
            if (content.is_discarded()) content = cm.content;
            cm.content = tools::render_tool_response(name, content);
        }
        out.push_back(std::move(cm));
    }
    return {};
}

std::variant<turn_request, reply> parse_turn_request(const request_t& req, messages_reader read_messages) {
    auto parsed = parse_body(req);
    if (auto* e = std::get_if<reply>(&parsed)) return std::move(*e);
    turn_request t;
    t.body = std::move(std::get<json>(parsed));
    status ps = parse_gen_params(t.body, t.gen);
    if (ps.ok()) ps = read_messages(t.body, t.messages);
    if (!ps.ok()) return status_reply(ps);
    return t;
}

}  // namespace mnemos::agent::server_detail

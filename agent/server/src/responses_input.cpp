// The request of POST /v1/responses (responses_input.h).
#include "agent/server/src/responses_input.h"

#include <iterator>
#include <set>
#include <sstream>

#include "agent/core/util.h"
#include "agent/tooling/tool_call_format.h"
#include "tools/json_limits.h"
#include "tools/prompt.h"

namespace mnemos::agent::server_detail {

namespace {

// Fields taken as OpenAI defines them, and fields accepted because they change nothing here (routing,
// caching and accounting hints; reasoning settings of a model that does not reason).
const std::set<std::string>& known_fields() {
    static const std::set<std::string> k = [] {
        std::istringstream words(
            "model input instructions tools tool_choice text stream stream_options store seed temperature top_p "
            "max_output_tokens previous_response_id metadata user parallel_tool_calls max_tool_calls include "
            "service_tier prompt_cache_key safety_identifier truncation reasoning top_logprobs background "
            "conversation");
        return std::set<std::string>(std::istream_iterator<std::string>(words), std::istream_iterator<std::string>());
    }();
    return k;
}

// Fields whose non-default values this server cannot honour.
status check_unsupported(const json& b) {
    for (const auto& [k, v] : b.items())
        if (!known_fields().count(k)) return invalid_argument("unknown parameter '" + k + "'");
    auto set = [&](const char* k) { return b.contains(k) && !b[k].is_null(); };
    if (set("background") && b["background"] != json(false))
        return invalid_argument("'background' is not supported: responses run while the request is open");
    if (set("conversation"))
        return invalid_argument("'conversation' is not supported; chain responses with previous_response_id");
    if (set("top_logprobs") && b["top_logprobs"] != json(0)) return invalid_argument("'top_logprobs' is not supported");
    if (set("include")) {
        if (!b["include"].is_array()) return invalid_argument("'include' must be an array of strings");
        for (const auto& i : b["include"]) {
            if (!i.is_string()) return invalid_argument("'include' must be an array of strings");
            if (i == json("message.output_text.logprobs"))
                return invalid_argument("'include' value 'message.output_text.logprobs' is not supported");
        }
    }
    if (set("truncation") && b["truncation"] != json("auto") && b["truncation"] != json("disabled"))
        return invalid_argument("'truncation' must be \"auto\" or \"disabled\"");
    if (set("metadata") && !b["metadata"].is_object()) return invalid_argument("'metadata' must be an object");
    for (const char* k : {"parallel_tool_calls", "store"})
        if (set(k) && !b[k].is_boolean()) return invalid_argument(std::string("'") + k + "' must be a boolean");
    return {};
}

// temperature, top_p, seed and stream (parse_gen_params), then max_output_tokens.
status parse_response_gen(const json& b, gen_params& g) {
    json sub = json::object();
    for (const char* k : {"temperature", "top_p", "seed", "stream"})
        if (b.contains(k)) sub[k] = b[k];
    if (auto st = parse_gen_params(sub, g); !st.ok()) return st;
    if (auto it = b.find("max_output_tokens"); it != b.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1 << 20)
            return invalid_argument("'max_output_tokens' must be an integer in [1, 1048576]");
        g.max_tokens = static_cast<int32_t>(it->get<int64_t>());
    }
    return {};
}

// One Responses function tool {"type": "function", "name", "description", "parameters", "strict"} in the
// chat completions' shape.
result<json> chat_tool(const json& t, size_t i) {
    const std::string where = "tools[" + std::to_string(i) + "]";
    if (!t.is_object()) return invalid_argument(where + " must be an object");
    const json type = t.value("type", json());
    if (type != json("function"))
        return invalid_argument(where + ".type " + (type.is_string() ? "'" + type.get<std::string>() + "' " : "") +
                                "is not supported: only \"function\" tools");
    if (!t.contains("name") || !t["name"].is_string()) return invalid_argument(where + ".name must be a string");
    json f = {{"name", t["name"]}};
    for (const char* k : {"description", "parameters", "strict"})
        if (t.contains(k)) f[k] = t[k];
    return json{{"type", "function"}, {"function", f}};
}

// text.format as a chat completions response_format.
result<json> chat_response_format(const json& text) {
    if (!text.is_object()) return invalid_argument("'text' must be an object");
    auto f = text.find("format");
    if (f == text.end() || f->is_null()) return json();
    if (!f->is_object() || !f->contains("type") || !(*f)["type"].is_string())
        return invalid_argument("'text.format' must be an object with a string 'type'");
    const std::string type = (*f)["type"].get<std::string>();
    if (type == "text" || type == "json_object") return json{{"type", type}};
    if (type != "json_schema")
        return invalid_argument("'text.format.type' must be \"text\", \"json_object\" or \"json_schema\"");
    if (!f->contains("schema") || !(*f)["schema"].is_object())
        return invalid_argument("'text.format.schema' must be an object");
    json js = {{"schema", (*f)["schema"]}, {"name", f->value("name", json("response"))}};
    return json{{"type", "json_schema"}, {"json_schema", js}};
}

// tools, tool_choice and text.format through parse_chat_tools; null when none of them asks for anything.
result<std::shared_ptr<const chat_tools>> parse_response_tools(const json& b) {
    json cb = json::object();
    if (auto it = b.find("tools"); it != b.end() && !it->is_null()) {
        if (!it->is_array()) return invalid_argument("'tools' must be an array");
        json tools = json::array();
        for (size_t i = 0; i < it->size() && i <= k_max_tools; ++i) {
            auto t = chat_tool((*it)[i], i);
            if (!t) return t.error();
            tools.push_back(std::move(t.value()));
        }
        cb["tools"] = std::move(tools);
    }
    if (auto it = b.find("tool_choice"); it != b.end() && !it->is_null()) {
        if (it->is_object() && it->value("type", json()) == json("function") && it->contains("name"))
            cb["tool_choice"] = {{"type", "function"}, {"function", {{"name", (*it)["name"]}}}};
        else if (it->is_object())
            return invalid_argument("'tool_choice' object must be {\"type\": \"function\", \"name\": ...}");
        else
            cb["tool_choice"] = *it;
    }
    if (auto it = b.find("text"); it != b.end() && !it->is_null()) {
        auto rf = chat_response_format(*it);
        if (!rf) return rf.error();
        if (!rf->is_null()) cb["response_format"] = std::move(rf.value());
    }
    auto parsed = parse_chat_tools(cb);
    if (!parsed) return parsed.error();
    std::shared_ptr<const chat_tools> ct;
    if (parsed->constraint || parsed->choice != tool_choice::none)
        ct = std::make_shared<chat_tools>(std::move(parsed.value()));
    return ct;
}

// A message item's content: a string or input_text / output_text parts.
status item_content(const json& c, const std::string& where, std::string& out) {
    if (c.is_string()) {
        out = c.get<std::string>();
    } else if (c.is_array()) {
        for (const auto& p : c) {
            const json type = p.is_object() ? p.value("type", json()) : json();
            if (type != json("input_text") && type != json("output_text") && type != json("text"))
                return invalid_argument(where + ".content: part type " +
                                        (type.is_string() ? "'" + type.get<std::string>() + "'" : "") +
                                        " is not supported (input_text and output_text are)");
            if (!p.contains("text") || !p["text"].is_string())
                return invalid_argument(where + ".content: a part needs a string 'text'");
            out += p["text"].get<std::string>();
        }
    } else {
        return invalid_argument(where + ".content must be a string or an array of parts");
    }
    if (!valid_utf8(out)) return invalid_argument(where + ".content is not valid UTF-8");
    return {};
}

// The messages so far, to which an item is added.
struct input_builder {
    input_context& cx;
    std::vector<engine::chat_message>& out;
};

status add_message_item(input_builder& ib, const json& it, const std::string& where) {
    if (!it.contains("role") || !it["role"].is_string()) return invalid_argument(where + " needs a string 'role'");
    std::string role = it["role"].get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant")
        return invalid_argument(where + ".role '" + role + "' is unknown");
    engine::chat_message m{role, {}};
    if (!it.contains("content")) return invalid_argument(where + " needs 'content'");
    if (auto st = item_content(it["content"], where, m.content); !st.ok()) return st;
    ib.out.push_back(std::move(m));
    return {};
}

status add_function_call(input_builder& ib, const json& it, const std::string& where) {
    for (const char* k : {"call_id", "name", "arguments"})
        if (!it.contains(k) || !it[k].is_string()) return invalid_argument(where + " needs a string '" + k + "'");
    const std::string& a = it["arguments"].get_ref<const std::string&>();
    if (tools::json_too_deep(a)) return invalid_argument(where + ".arguments: " + tools::json_depth_message());
    json args = a.empty() ? json::object() : json::parse(a, nullptr, false);
    if (args.is_discarded() || !args.is_object())
        return invalid_argument(where + ".arguments must be a JSON object as a string");
    const std::string name = it["name"].get<std::string>();
    ib.cx.call_names[it["call_id"].get<std::string>()] = name;
    const std::string call = hermes_tool_call(name, args);
    if (!ib.out.empty() && ib.out.back().role == "assistant")
        ib.out.back().content += (ib.out.back().content.empty() ? "" : "\n") + call;
    else
        ib.out.push_back({"assistant", call});
    return {};
}

status add_function_output(input_builder& ib, const json& it, const std::string& where) {
    if (!it.contains("call_id") || !it["call_id"].is_string())
        return invalid_argument(where + " needs a string 'call_id'");
    const std::string id = it["call_id"].get<std::string>();
    auto name = ib.cx.call_names.find(id);
    if (name == ib.cx.call_names.end())
        return invalid_argument(where + ".call_id '" + id +
                                "' names no function_call of this input or the previous response");
    std::string text;
    if (!it.contains("output")) return invalid_argument(where + " needs 'output'");
    if (auto st = item_content(it["output"], where, text); !st.ok()) return st;
    if (tools::json_too_deep(text)) return invalid_argument(where + ".output: " + tools::json_depth_message());
    json content = json::parse(text, nullptr, false);
    if (content.is_discarded()) content = text;
    ib.out.push_back({"tool", tools::render_tool_response(name->second, content)});
    return {};
}

status add_item(input_builder& ib, const json& it, const std::string& where, bool resolved);

status add_reference(input_builder& ib, const json& it, const std::string& where) {
    if (!it.contains("id") || !it["id"].is_string()) return invalid_argument(where + " needs a string 'id'");
    const std::string id = it["id"].get<std::string>();
    auto stored = ib.cx.resolve ? ib.cx.resolve(id) : result<json>(make_error(errc::not_found, ""));
    if (!stored) return invalid_argument(where + ": no stored item '" + id + "'");
    return add_item(ib, stored.value(), where, true);
}

status add_item(input_builder& ib, const json& it, const std::string& where, bool resolved) {
    if (!it.is_object()) return invalid_argument(where + " must be an object");
    const json type = it.value("type", json("message"));
    if (type == json("message")) return add_message_item(ib, it, where);
    if (type == json("function_call")) return add_function_call(ib, it, where);
    if (type == json("function_call_output")) return add_function_output(ib, it, where);
    if (type == json("item_reference") && !resolved) return add_reference(ib, it, where);
    if (type == json("reasoning")) return {};  // a reasoning model's summary: nothing to render
    return invalid_argument(where + ".type " + (type.is_string() ? "'" + type.get<std::string>() + "' " : "") +
                            "is not supported");
}

}  // namespace

result<response_request> parse_response_request(const json& b) {
    if (auto st = check_unsupported(b); !st.ok()) return st;
    response_request r;
    r.body = b;
    if (auto st = parse_response_gen(b, r.gen); !st.ok()) return st;
    if (auto it = b.find("instructions"); it != b.end() && !it->is_null()) {
        if (!it->is_string() || !valid_utf8(it->get_ref<const std::string&>()))
            return invalid_argument("'instructions' must be a UTF-8 string");
        r.instructions = it->get<std::string>();
    }
    if (auto it = b.find("previous_response_id"); it != b.end() && !it->is_null()) {
        if (!it->is_string() || it->get_ref<const std::string&>().empty())
            return invalid_argument("'previous_response_id' must be a non-empty string");
        r.previous_id = it->get<std::string>();
    }
    if (auto it = b.find("store"); it != b.end() && it->is_boolean()) r.store = it->get<bool>();
    auto ct = parse_response_tools(b);
    if (!ct) return ct.error();
    r.tools = std::move(ct.value());
    return r;
}

status parse_response_input(const json& b, input_context& cx, std::vector<engine::chat_message>& out) {
    auto it = b.find("input");
    if (it == b.end() || it->is_null()) return invalid_argument("'input' is required: a string or an array of items");
    if (it->is_string()) {
        if (!valid_utf8(it->get_ref<const std::string&>())) return invalid_argument("'input' is not valid UTF-8");
        out.push_back({"user", it->get<std::string>()});
        return {};
    }
    if (!it->is_array()) return invalid_argument("'input' must be a string or an array of items");
    if (it->size() > k_max_input_items)
        return invalid_argument("'input' has " + std::to_string(it->size()) + " items; at most " +
                                std::to_string(k_max_input_items) + " per request");
    input_builder ib{cx, out};
    for (size_t i = 0; i < it->size(); ++i)
        if (auto st = add_item(ib, (*it)[i], "input[" + std::to_string(i) + "]", false); !st.ok()) return st;
    if (out.empty()) return invalid_argument("'input' has no message");
    return {};
}

std::string response_system_text(const response_request& r) {
    std::string s = r.instructions;
    if (r.tools && !r.tools->system_text.empty()) s += (s.empty() ? "" : "\n\n") + r.tools->system_text;
    return s;
}

}  // namespace mnemos::agent::server_detail

// OpenAI tools on chat completions (agent/tooling/openai_tools.h).
#include "agent/tooling/openai_tools.h"

#include "agent/core/runtime.h"
#include "agent/tooling/tool_call_format.h"
#include "tools/prompt.h"

namespace mnemos::agent {

using json = nlohmann::json;

namespace {

std::string dump_safe(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// One entry of `tools` (where: "tools[i]") as a registry tool whose handler refuses (the client runs it).
result<tools::tool> parse_tool_definition(const json& t, const std::string& where) {
    if (!t.is_object() || t.value("type", json()) != json("function"))
        return invalid_argument(where + ".type must be \"function\"");
    auto f = t.find("function");
    if (f == t.end() || !f->is_object()) return invalid_argument(where + ".function must be an object");
    auto n = f->find("name");
    if (n == f->end() || !n->is_string()) return invalid_argument(where + ".function.name must be a string");
    tools::tool tl;
    tl.name = n->get<std::string>();
    if (auto d = f->find("description"); d != f->end() && !d->is_null()) {
        if (!d->is_string()) return invalid_argument(where + ".function.description must be a string");
        if (d->get_ref<const std::string&>().size() > k_max_tool_description_bytes)
            return invalid_argument(where + ".function.description exceeds " +
                                    std::to_string(k_max_tool_description_bytes) + " bytes");
        tl.description = d->get<std::string>();
    }
    tl.parameters = json{{"type", "object"}, {"properties", json::object()}};
    if (auto p = f->find("parameters"); p != f->end() && !p->is_null()) {
        if (!p->is_object()) return invalid_argument(where + ".function.parameters must be a JSON Schema object");
        if (dump_safe(*p).size() > k_max_schema_bytes)
            return invalid_argument(where + ".function.parameters exceeds " + std::to_string(k_max_schema_bytes) +
                                    " bytes of JSON");
        tl.parameters = *p;
        tl.parameters.erase("additionalProperties");  // implied false by the grammar
        tl.parameters.erase("strict");
    }
    tl.handler = [](const json&, tools::tool_done done) { done(make_error(errc::unsupported, "client-side tool")); };
    return tl;
}

}  // namespace

namespace openai_tools_detail {

result<bool> parse_tool_definitions(const json& b, chat_tools& ct) {
    auto it = b.find("tools");
    if (it == b.end() || it->is_null()) return false;
    if (!it->is_array()) return invalid_argument("'tools' must be an array");
    if (it->size() > k_max_tools)
        return invalid_argument("'tools' has " + std::to_string(it->size()) + " entries; at most " +
                                std::to_string(k_max_tools) + " tools per request");
    for (size_t i = 0; i < it->size(); ++i) {
        const std::string where = "tools[" + std::to_string(i) + "]";
        auto tl = parse_tool_definition((*it)[i], where);
        if (!tl) return tl.error();
        if (auto st = ct.registry.add(std::move(tl.value())); !st.ok())
            return invalid_argument(where + ".function: " + st.message());
    }
    return !ct.registry.list().empty();
}

status parse_tool_choice(const json& b, chat_tools& ct) {
    auto it = b.find("tool_choice");
    auto spec = parse_tool_choice_value(it == b.end() ? json() : *it, ct.registry);
    if (!spec) return spec.error();
    ct.choice = spec->choice;
    ct.named = std::move(spec->named);
    return {};
}

status compile_choice(chat_tools& ct) {
    if (ct.choice != tool_choice::none) ct.system_text = tools::render_tools_prompt(ct.registry);
    auto g = tool_call_grammar(ct.registry, {ct.choice, ct.named});
    if (!g) return g.error();
    ct.constraint = g.value();
    ct.forced_call = ct.choice == tool_choice::required || ct.choice == tool_choice::named;
    if (ct.choice == tool_choice::automatic) ct.trigger = std::string(k_call_open);
    return {};
}

status parse_response_format(const json& b, chat_tools& ct) {
    auto it = b.find("response_format");
    if (it == b.end() || it->is_null()) return {};
    if (!it->is_object() || !it->contains("type") || !(*it)["type"].is_string())
        return invalid_argument("'response_format' must be an object with a string 'type'");
    const std::string type = (*it)["type"].get<std::string>();
    json schema;
    if (type == "text") {
        return {};
    } else if (type == "json_object") {
        schema = json{{"type", "object"}};
    } else if (type == "json_schema") {
        auto js = it->find("json_schema");
        if (js == it->end() || !js->is_object() || !js->contains("schema") || !(*js)["schema"].is_object())
            return invalid_argument("'response_format.json_schema.schema' must be an object");
        if (dump_safe((*js)["schema"]).size() > k_max_schema_bytes)
            return invalid_argument("'response_format.json_schema.schema' exceeds " +
                                    std::to_string(k_max_schema_bytes) + " bytes of JSON");
        schema = (*js)["schema"];
        schema.erase("additionalProperties");
    } else {
        return invalid_argument("'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"");
    }
    if (ct.forced_call) return invalid_argument("'response_format' cannot be combined with a forced tool call");
    // The same options the choice's grammar was compiled with (automatic allows one leading whitespace).
    engine::grammar_options go;
    if (ct.choice == tool_choice::automatic) go.max_leading_whitespace = 1;
    auto g = engine::grammar::from_json_schema(dump_safe(schema), go);
    if (!g) return invalid_argument("'response_format': " + g.error().message());
    ct.constraint = g.value();
    ct.trigger.clear();
    ct.json_output = true;
    ct.choice = tool_choice::none;
    ct.system_text.clear();
    return {};
}

}  // namespace openai_tools_detail

result<chat_tools> parse_chat_tools(const json& b) {
    using namespace openai_tools_detail;
    chat_tools ct;
    auto has_tools = parse_tool_definitions(b, ct);
    if (!has_tools) return has_tools.error();
    if (auto st = parse_tool_choice(b, ct); !st.ok()) return st;
    if (auto st = compile_choice(ct); !st.ok()) return st;
    if (auto st = parse_response_format(b, ct); !st.ok()) return st;
    return ct;
}

result<tool_choice_spec> parse_tool_choice_value(const json& v, const tools::tool_registry& reg) {
    const bool has_tools = !reg.list().empty();
    tool_choice_spec spec{has_tools ? tool_choice::automatic : tool_choice::none, ""};
    if (v.is_null()) return spec;
    if (v.is_string()) {
        const std::string c = v.get<std::string>();
        if (c == "none")
            spec.choice = tool_choice::none;
        else if (c == "auto")
            spec.choice = has_tools ? tool_choice::automatic : tool_choice::none;
        else if (c == "required")
            spec.choice = tool_choice::required;
        else
            return invalid_argument(
                "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", ...}");
    } else if (v.is_object()) {
        auto f = v.find("function");
        if (v.value("type", json()) != json("function") || f == v.end() || !f->is_object() || !f->contains("name") ||
            !(*f)["name"].is_string())
            return invalid_argument(
                "'tool_choice' object must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
        spec.choice = tool_choice::named;
        spec.named = (*f)["name"].get<std::string>();
        if (!reg.find(spec.named))
            return invalid_argument("'tool_choice' names an unknown function '" + spec.named + "'");
    } else {
        return invalid_argument("'tool_choice' must be a string or an object");
    }
    if ((spec.choice == tool_choice::required || spec.choice == tool_choice::named) && !has_tools)
        return invalid_argument("'tool_choice' needs 'tools'");
    return spec;
}

result<std::shared_ptr<const engine::grammar>> tool_call_grammar(const tools::tool_registry& reg,
                                                                 const tool_choice_spec& spec) {
    engine::grammar_options go;
    if (spec.choice == tool_choice::named) {
        const tools::tool* t = reg.find(spec.named);
        if (!t) return invalid_argument("'tool_choice' names an unknown function '" + spec.named + "'");
        auto g = engine::grammar::from_json_schema(dump_safe(tools::tool_call_schema(*t)), go);
        if (!g) return invalid_argument("tool '" + spec.named + "': " + g.error().message());
        return g.value();
    }
    if (spec.choice == tool_choice::none) return std::shared_ptr<const engine::grammar>();
    if (spec.choice == tool_choice::automatic) go.max_leading_whitespace = 1;
    auto g = reg.call_grammar(go);
    if (!g) return invalid_argument("'tools': " + g.error().message());
    return g.value();
}

void add_tools_prompt(std::vector<engine::chat_message>& msgs, const std::string& system_text) {
    if (system_text.empty()) return;
    for (auto& m : msgs)
        if (m.role == "system") {
            m.content += (m.content.empty() ? "" : "\n\n") + system_text;
            return;
        }
    msgs.insert(msgs.begin(), engine::chat_message{"system", system_text});
}

json openai_tool_calls(const std::vector<tools::tool_call>& calls) {
    json arr = json::array();
    for (const auto& c : calls)
        arr.push_back({{"id", "call_" + random_hex(24)},
                       {"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", dump_safe(c.arguments)}}}});
    return arr;
}

}  // namespace mnemos::agent

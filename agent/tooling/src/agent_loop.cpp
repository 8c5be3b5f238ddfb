// Tool calling for the server (agent/agent_loop.h): OpenAI tools parsing, the
// Hermes rendering of calls, and the built-in tools of agent sessions backed
// by the session's own event log.
#include "agent/tooling/agent_loop.h"

#include <chrono>

#include "tools/prompt.h"

namespace mnemos::agent {

using json = nlohmann::json;

namespace {

std::string dump_safe(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

status bad(const std::string& m) { return make_error(errc::invalid_argument, m); }

}  // namespace

// ---------------------------------------------------------------------------
// OpenAI tools
// ---------------------------------------------------------------------------

result<chat_tools> parse_chat_tools(const json& b) {
    chat_tools ct;
    bool has_tools = false;
    if (auto it = b.find("tools"); it != b.end() && !it->is_null()) {
        if (!it->is_array()) return bad("'tools' must be an array");
        if (it->size() > k_max_tools)
            return bad("'tools' has " + std::to_string(it->size()) + " entries; at most " +
                       std::to_string(k_max_tools) + " tools per request");
        for (size_t i = 0; i < it->size(); ++i) {
            const json& t = (*it)[i];
            const std::string where = "tools[" + std::to_string(i) + "]";
            if (!t.is_object() || t.value("type", json()) != json("function"))
                return bad(where + ".type must be \"function\"");
            auto f = t.find("function");
            if (f == t.end() || !f->is_object()) return bad(where + ".function must be an object");
            auto n = f->find("name");
            if (n == f->end() || !n->is_string()) return bad(where + ".function.name must be a string");
            tools::tool tl;
            tl.name = n->get<std::string>();
            if (auto d = f->find("description"); d != f->end() && !d->is_null()) {
                if (!d->is_string()) return bad(where + ".function.description must be a string");
                if (d->get_ref<const std::string&>().size() > k_max_tool_description_bytes)
                    return bad(where + ".function.description exceeds " + std::to_string(k_max_tool_description_bytes) +
                               " bytes");
                tl.description = d->get<std::string>();
            }
            tl.parameters = json{{"type", "object"}, {"properties", json::object()}};
            if (auto p = f->find("parameters"); p != f->end() && !p->is_null()) {
                if (!p->is_object()) return bad(where + ".function.parameters must be a JSON Schema object");
                if (dump_safe(*p).size() > k_max_schema_bytes)
                    return bad(where + ".function.parameters exceeds " + std::to_string(k_max_schema_bytes) +
                               " bytes of JSON");
                tl.parameters = *p;
                tl.parameters.erase("additionalProperties");  // implied false by the grammar
                tl.parameters.erase("strict");
            }
            tl.handler = [](const json&, tools::tool_done done) {
                done(make_error(errc::unsupported, "client-side tool"));
            };
            if (auto st = ct.registry.add(std::move(tl)); !st.ok()) return bad(where + ".function: " + st.message());
        }
        has_tools = !ct.registry.list().empty();
    }
    ct.choice = has_tools ? tool_choice::automatic : tool_choice::none;
    if (auto it = b.find("tool_choice"); it != b.end() && !it->is_null()) {
        if (it->is_string()) {
            const std::string c = it->get<std::string>();
            if (c == "none")
                ct.choice = tool_choice::none;
            else if (c == "auto")
                ct.choice = has_tools ? tool_choice::automatic : tool_choice::none;
            else if (c == "required")
                ct.choice = tool_choice::required;
            else
                return bad("'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", ...}");
        } else if (it->is_object()) {
            auto f = it->find("function");
            if (it->value("type", json()) != json("function") || f == it->end() || !f->is_object() ||
                !f->contains("name") || !(*f)["name"].is_string())
                return bad("'tool_choice' object must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
            ct.choice = tool_choice::named;
            ct.named = (*f)["name"].get<std::string>();
            if (!ct.registry.find(ct.named)) return bad("'tool_choice' names an unknown function '" + ct.named + "'");
        } else {
            return bad("'tool_choice' must be a string or an object");
        }
        if ((ct.choice == tool_choice::required || ct.choice == tool_choice::named) && !has_tools)
            return bad("'tool_choice' needs 'tools'");
    }
    if (ct.choice != tool_choice::none) ct.system_text = tools::render_tools_prompt(ct.registry);
    engine::grammar_options go;
    if (ct.choice == tool_choice::named) {
        const tools::tool* t = ct.registry.find(ct.named);
        json schema = {{"type", "object"},
                       {"properties", {{"name", {{"const", t->name}}}, {"arguments", t->parameters}}},
                       {"required", {"name", "arguments"}}};
        auto g = engine::grammar::from_json_schema(dump_safe(schema), go);
        if (!g) return bad("tool '" + ct.named + "': " + g.error().message());
        ct.constraint = g.value();
        ct.forced_call = true;
    } else if (ct.choice == tool_choice::required) {
        auto g = ct.registry.call_grammar(go);
        if (!g) return bad("'tools': " + g.error().message());
        ct.constraint = g.value();
        ct.forced_call = true;
    } else if (ct.choice == tool_choice::automatic) {
        go.max_leading_whitespace = 1;
        auto g = ct.registry.call_grammar(go);
        if (!g) return bad("'tools': " + g.error().message());
        ct.constraint = g.value();
        ct.trigger = "<tool_call>";
    }
    if (auto it = b.find("response_format"); it != b.end() && !it->is_null()) {
        if (!it->is_object() || !it->contains("type") || !(*it)["type"].is_string())
            return bad("'response_format' must be an object with a string 'type'");
        const std::string type = (*it)["type"].get<std::string>();
        json schema;
        if (type == "text") {
            return ct;
        } else if (type == "json_object") {
            schema = json{{"type", "object"}};
        } else if (type == "json_schema") {
            auto js = it->find("json_schema");
            if (js == it->end() || !js->is_object() || !js->contains("schema") || !(*js)["schema"].is_object())
                return bad("'response_format.json_schema.schema' must be an object");
            if (dump_safe((*js)["schema"]).size() > k_max_schema_bytes)
                return bad("'response_format.json_schema.schema' exceeds " + std::to_string(k_max_schema_bytes) +
                           " bytes of JSON");
            schema = (*js)["schema"];
            schema.erase("additionalProperties");
        } else {
            return bad("'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"");
        }
        if (ct.forced_call) return bad("'response_format' cannot be combined with a forced tool call");
        auto g = engine::grammar::from_json_schema(dump_safe(schema), go);
        if (!g) return bad("'response_format': " + g.error().message());
        ct.constraint = g.value();
        ct.trigger.clear();
        ct.json_output = true;
        ct.choice = tool_choice::none;
        ct.system_text.clear();
    }
    return ct;
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

std::string hermes_tool_call(const std::string& name, const json& arguments) {
    return "<tool_call>\n" + dump_safe(json{{"name", name}, {"arguments", arguments}}) + "\n</tool_call>";
}

tools::parsed_output extract_tool_calls(const std::string& text, bool forced_call) {
    tools::parsed_output out;
    out.content = text;
    if (forced_call) {
        json j = json::parse(text, nullptr, false);
        if (!j.is_discarded() && j.is_object() && j.contains("name") && j["name"].is_string()) {
            tools::tool_call c;
            c.name = j["name"].get<std::string>();
            if (j.contains("arguments") && j["arguments"].is_object()) c.arguments = j["arguments"];
            out.calls.push_back(std::move(c));
            out.content.clear();
            out.format = tools::tool_call_format::plain;
        }
        return out;
    }
    if (text.find("<tool_call>") == std::string::npos) return out;
    auto p = tools::parse_tool_calls(text);
    if (!p || p->format != tools::tool_call_format::hermes) {
        // A call cut short (e.g. max_tokens): keep the complete calls before it.
        const size_t cut = text.rfind("<tool_call>");
        if (cut == 0 || cut == std::string::npos) return out;
        auto q = tools::parse_tool_calls(text.substr(0, cut));
        if (!q || q->format != tools::tool_call_format::hermes) return out;
        return std::move(q.value());
    }
    return std::move(p.value());
}

json openai_tool_calls(const std::vector<tools::tool_call>& calls) {
    json arr = json::array();
    for (const auto& c : calls)
        arr.push_back({{"id", "call_" + random_hex(24)},
                       {"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", dump_safe(c.arguments)}}}});
    return arr;
}

// ---------------------------------------------------------------------------
// Agent sessions
// ---------------------------------------------------------------------------

result<agent_settings> parse_agent_settings(const json& j) {
    agent_settings a;
    if (j.is_boolean()) {
        if (j.get<bool>()) a.tools = {"roll_dice", "clock", "note", "recall"};
        return a;
    }
    if (!j.is_object()) return bad("'agent' must be an object or a boolean");
    if (auto it = j.find("tools"); it != j.end() && !it->is_null()) {
        if (it->is_boolean()) {
            if (it->get<bool>()) a.tools = {"roll_dice", "clock", "note", "recall"};
        } else if (it->is_array()) {
            for (const auto& t : *it) {
                if (!t.is_string()) return bad("'agent.tools' must hold tool names");
                const std::string n = t.get<std::string>();
                if (n != "roll_dice" && n != "clock" && n != "note" && n != "recall")
                    return bad("'agent.tools': unknown built-in '" + n + "' (roll_dice, clock, note, recall)");
                a.tools.push_back(n);
            }
        } else {
            return bad("'agent.tools' must be an array of names or a boolean");
        }
    } else {
        a.tools = {"roll_dice", "clock", "note", "recall"};
    }
    auto integer = [&](const char* key, int64_t lo, int64_t hi, auto& out) -> status {
        auto it = j.find(key);
        if (it == j.end() || it->is_null()) return {};
        if (!it->is_number_integer() || it->get<int64_t>() < lo || it->get<int64_t>() > hi)
            return bad(std::string("'agent.") + key + "' must be an integer in [" + std::to_string(lo) + ", " +
                       std::to_string(hi) + "]");
        out = static_cast<std::remove_reference_t<decltype(out)>>(it->get<int64_t>());
        return {};
    };
    for (auto st : {integer("max_steps", 1, 16, a.max_steps), integer("tool_timeout_ms", 1, 600000, a.tool_timeout_ms),
                    integer("seed", 0, INT64_MAX, a.seed)})
        if (!st.ok()) return st;
    return a;
}

json agent_settings_to_json(const agent_settings& a) {
    return {{"tools", a.tools}, {"max_steps", a.max_steps}, {"tool_timeout_ms", a.tool_timeout_ms}, {"seed", a.seed}};
}

namespace {

class event_history final : public tools::history_source_i {
  public:
    explicit event_history(session_store_i& st) : st_(st) {}
    result<std::vector<tools::history_event>> events(const std::string& session, uint64_t from, uint64_t to) override {
        auto evs = st_.read_events(session);
        if (!evs) return evs.error();
        std::vector<tools::history_event> out;
        for (uint64_t i = from; i < std::min<uint64_t>(to, evs->size()); ++i) {
            json e = json::parse((*evs)[i], nullptr, false);
            if (e.is_discarded() || !e.is_object()) continue;
            tools::history_event h;
            h.seq = i;
            if (e.contains("ts") && e["ts"].is_number_integer())
                h.time = std::chrono::system_clock::time_point(std::chrono::seconds(e["ts"].get<int64_t>()));
            const std::string type = e.value("type", "");
            if (type == "message" && e.contains("content") && e["content"].is_string()) {
                h.role = e.value("role", "");
                h.text = e["content"].get<std::string>();
            } else if (type == "note" && e.contains("text") && e["text"].is_string()) {
                h.role = "note";
                h.text = e["text"].get<std::string>();
            } else {
                continue;
            }
            out.push_back(std::move(h));
        }
        return out;
    }

  private:
    session_store_i& st_;
};

class event_notes final : public tools::notes_store_i {
  public:
    explicit event_notes(session_manager& sm) : sm_(sm) {}
    result<int64_t> pin(const std::string& session, const std::string& text,
                        std::chrono::system_clock::time_point time) override {
        std::lock_guard lk(mu_);  // ids: count + 1, one pin at a time
        auto existing = list(session);
        if (!existing) return existing.error();
        const int64_t id = static_cast<int64_t>(existing->size()) + 1;
        const int64_t ts = std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
        auto r = sm_.append_raw_event(session, json{{"type", "note"}, {"id", id}, {"text", text}, {"ts", ts}});
        if (!r) return r.error();
        return id;
    }
    result<std::vector<tools::pinned_note>> list(const std::string& session) const override {
        auto evs = sm_.store().read_events(session);
        if (!evs) return evs.error();
        std::vector<tools::pinned_note> out;
        for (const auto& s : evs.value()) {
            json e = json::parse(s, nullptr, false);
            if (e.is_discarded() || !e.is_object() || e.value("type", "") != "note") continue;
            tools::pinned_note n;
            n.id = e.value("id", int64_t{0});
            n.text = e.value("text", "");
            n.time = std::chrono::system_clock::time_point(std::chrono::seconds(e.value("ts", int64_t{0})));
            out.push_back(std::move(n));
        }
        return out;
    }

  private:
    session_manager& sm_;
    std::mutex mu_;  // serializes pin (id assignment)
};

}  // namespace

std::shared_ptr<tools::history_source_i> make_event_history(session_store_i& store) {
    return std::make_shared<event_history>(store);
}

std::shared_ptr<tools::notes_store_i> make_event_notes(session_manager& sessions) {
    return std::make_shared<event_notes>(sessions);
}

result<std::shared_ptr<tools::tool_registry>> make_agent_tools(const agent_settings& a, const std::string& session,
                                                               session_manager& sessions) {
    auto reg = std::make_shared<tools::tool_registry>();
    for (const auto& n : a.tools) {
        status st;
        if (n == "roll_dice")
            st = reg->add(tools::make_roll_dice_tool(a.seed));
        else if (n == "clock")
            st = reg->add(tools::make_clock_tool());
        else if (n == "note")
            st = reg->add(tools::make_note_tool(make_event_notes(sessions), session));
        else if (n == "recall")
            st = reg->add(tools::make_recall_tool(make_event_history(sessions.store()), session));
        else
            st = bad("unknown built-in tool '" + n + "'");
        if (!st.ok()) return st;
    }
    return reg;
}

}  // namespace mnemos::agent

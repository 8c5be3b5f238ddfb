// Typed events <-> JSON (agent/core/event.h).
#include "agent/core/event.h"

namespace mnemos::agent {

using json = nlohmann::json;

namespace {

// Takes the known fields out of a copy of the event; what is left becomes `extra`.
class field_reader {
  public:
    explicit field_reader(json j) : j_(std::move(j)) { j_.erase("type"); }

    void take(const char* key, std::string& out) { take_if(key, &json::is_string, out); }
    void take(const char* key, int64_t& out) { take_if(key, &json::is_number_integer, out); }
    void take(const char* key, bool& out) { take_if(key, &json::is_boolean, out); }
    template <class T>
    void take(const char* key, std::optional<T>& out) {
        if (!j_.contains(key)) return;
        T v{};
        take(key, v);
        out = std::move(v);
    }
    void take(const char* key, std::vector<std::string>& out) {
        if (!j_.contains(key)) return;
        const json& a = j_[key];
        if (!a.is_array()) return fail(key);
        for (const auto& s : a) {
            if (!s.is_string()) return fail(key);
            out.push_back(s.get<std::string>());
        }
        j_.erase(key);
    }
    void take_any(const char* key, json& out) {
        if (!j_.contains(key)) return;
        out = std::move(j_[key]);
        j_.erase(key);
    }
    // The error of the first field of the wrong type, else the unknown fields.
    result<json> finish() {
        if (!bad_.empty()) return make_error(errc::corrupt, "event field '" + bad_ + "' has the wrong type");
        return std::move(j_);
    }

  private:
    template <class T>
    void take_if(const char* key, bool (json::*is)() const noexcept, T& out) {
        auto it = j_.find(key);
        if (it == j_.end()) return;
        if (!((*it).*is)()) return fail(key);
        out = it->template get<T>();
        j_.erase(it);
    }
    void fail(const char* key) {
        if (bad_.empty()) bad_ = key;
    }

    json j_;
    std::string bad_;
};

const char* message_kind_name(message_kind k) {
    switch (k) {
        case message_kind::tool_call:
            return "tool_call";
        case message_kind::tool_result:
            return "tool_result";
        case message_kind::plain:
            break;
    }
    return "";
}

// Writes `extra`'s fields, then the typed ones over them.
json with_extra(const json& extra, const char* type) {
    json j = extra.is_object() ? extra : json::object();
    j["type"] = type;
    return j;
}

json to_json(const message_event& e) {
    json j = with_extra(e.extra, "message");
    j["role"] = e.role;
    j["content"] = e.content;
    j["ts"] = e.ts;
    if (e.kind != message_kind::plain) j["kind"] = message_kind_name(e.kind);
    if (!e.tool_calls.is_null()) j["tool_calls"] = e.tool_calls;
    if (e.name) j["name"] = *e.name;
    if (e.tool_call_id) j["tool_call_id"] = *e.tool_call_id;
    if (e.step) j["step"] = *e.step;
    if (e.round) j["round"] = *e.round;
    if (!e.context.is_null()) j["context"] = e.context;
    return j;
}

// Notes and prefixes: an id, a text and a time.
template <class E>
json id_text_json(const E& e, const char* type) {
    json j = with_extra(e.extra, type);
    j["id"] = e.id;
    j["text"] = e.text;
    j["ts"] = e.ts;
    return j;
}

json to_json(const note_event& e) { return id_text_json(e, "note"); }
json to_json(const prefix_event& e) { return id_text_json(e, "prefix"); }

json to_json(const step_event& e) {
    json j = with_extra(e.extra, "step");
    j["idx"] = e.idx;
    j["kind"] = e.kind;
    j["phase"] = e.phase;
    j["speaker"] = e.speaker;
    j["to"] = e.to;
    if (!e.audience.empty()) j["audience"] = e.audience;
    j["text"] = e.text;
    if (e.probe) j["probe"] = *e.probe;
    if (e.passed) j["passed"] = *e.passed;
    if (!e.rounds.is_null()) j["rounds"] = e.rounds;
    if (e.context_full) j["context_full"] = true;
    if (e.windowed) j["windowed"] = true;
    if (e.skipped) j["skipped"] = true;
    j["ts"] = e.ts;
    return j;
}

json to_json(const other_event& e) { return e.body; }

result<event> read_message(const json& j) {
    message_event e;
    field_reader r(j);
    r.take("role", e.role);
    r.take("content", e.content);
    r.take("ts", e.ts);
    std::string kind;
    r.take("kind", kind);
    if (kind == "tool_call") e.kind = message_kind::tool_call;
    if (kind == "tool_result") e.kind = message_kind::tool_result;
    r.take_any("tool_calls", e.tool_calls);
    r.take("name", e.name);
    r.take("tool_call_id", e.tool_call_id);
    r.take("step", e.step);
    r.take("round", e.round);
    r.take_any("context", e.context);
    auto extra = r.finish();
    if (!extra) return extra.error();
    // A kind this version does not name stays in extra, unchanged.
    if (!kind.empty() && e.kind == message_kind::plain) extra.value()["kind"] = kind;
    e.extra = std::move(extra.value());
    return event(std::move(e));
}

template <class E>
result<event> read_id_text(const json& j) {
    E e;
    field_reader r(j);
    r.take("id", e.id);
    r.take("text", e.text);
    r.take("ts", e.ts);
    auto extra = r.finish();
    if (!extra) return extra.error();
    e.extra = std::move(extra.value());
    return event(std::move(e));
}

result<event> read_step(const json& j) {
    step_event e;
    field_reader r(j);
    r.take("idx", e.idx);
    r.take("kind", e.kind);
    r.take("phase", e.phase);
    r.take("speaker", e.speaker);
    r.take("to", e.to);
    r.take("audience", e.audience);
    r.take("text", e.text);
    r.take("probe", e.probe);
    r.take("passed", e.passed);
    r.take_any("rounds", e.rounds);
    r.take("context_full", e.context_full);
    r.take("windowed", e.windowed);
    r.take("skipped", e.skipped);
    r.take("ts", e.ts);
    auto extra = r.finish();
    if (!extra) return extra.error();
    e.extra = std::move(extra.value());
    return event(std::move(e));
}

}  // namespace

json event_json(const event& e) {
    return std::visit([](const auto& v) { return to_json(v); }, e);
}

std::string event_json_text(const event& e) { return event_json(e).dump(); }

result<event> event_from_json(const json& j) {
    if (!j.is_object()) return make_error(errc::corrupt, "an event must be a JSON object");
    const auto type = j.find("type");
    const std::string t = type != j.end() && type->is_string() ? type->get<std::string>() : "";
    if (t == "message") return read_message(j);
    if (t == "note") return read_id_text<note_event>(j);
    if (t == "prefix") return read_id_text<prefix_event>(j);
    if (t == "step") return read_step(j);
    return event(other_event{j});
}

namespace {

std::string string_field(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

step_call read_call(const json& c) {
    step_call call;
    call.name = string_field(c, "name");
    if (auto a = c.find("arguments"); a != c.end()) call.arguments = *a;
    if (auto r = c.find("result"); r != c.end()) call.result = *r;
    call.error = string_field(c, "error");
    return call;
}

}  // namespace

std::vector<step_round> step_rounds(const step_event& e) {
    std::vector<step_round> out;
    if (!e.rounds.is_array()) return out;
    for (const auto& rd : e.rounds) {
        if (!rd.is_object()) continue;
        step_round r;
        r.content = string_field(rd, "content");
        if (auto calls = rd.find("calls"); calls != rd.end() && calls->is_array())
            for (const auto& c : *calls)
                if (c.is_object()) r.calls.push_back(read_call(c));
        out.push_back(std::move(r));
    }
    return out;
}

json step_rounds_json(const std::vector<step_round>& rounds) {
    if (rounds.empty()) return nullptr;
    json out = json::array();
    for (const auto& rd : rounds) {
        json j = {{"content", rd.content}, {"calls", json::array()}};
        for (const auto& c : rd.calls) {
            json call = {{"name", c.name}, {"arguments", c.arguments}};
            if (c.result)
                call["result"] = *c.result;
            else
                call["error"] = c.error;
            j["calls"].push_back(std::move(call));
        }
        out.push_back(std::move(j));
    }
    return out;
}

result<event> parse_event(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return make_error(errc::corrupt, "an event is not valid JSON");
    return event_from_json(j);
}

}  // namespace mnemos::agent

// The game master's tools (agent/play/game_tools.h).
#include "agent/play/game_tools.h"

#include <algorithm>
#include <cctype>
#include <future>

#include "agent/tooling/builtin_tools.h"
#include "agent/tooling/event_backed_tools.h"

namespace mnemos::agent::game_tools {

namespace {

json pack_json(const std::vector<tool_state::item>& pack) {
    json items = json::array();
    for (const auto& it : pack) items.push_back({{"item", it.name}, {"quantity", it.quantity}});
    return items;
}

// note's store: the game's tool_state (its ids count the game's notes).
class state_notes final : public tools::notes_store_i {
  public:
    explicit state_notes(std::vector<std::string>& notes) : notes_(notes) {}
    result<int64_t> pin(const std::string&, const std::string& text, std::chrono::system_clock::time_point) override {
        notes_.push_back(text);
        return static_cast<int64_t>(notes_.size());
    }
    result<std::vector<tools::pinned_note>> list(const std::string&) const override {
        std::vector<tools::pinned_note> v;
        for (size_t i = 0; i < notes_.size(); ++i) v.push_back({static_cast<int64_t>(i + 1), notes_[i], {}});
        return v;
    }

  private:
    std::vector<std::string>& notes_;
};

// recall's source: the character's whole durable event log (every message
// since its system text, far older than any window) followed by the game's
// pinned notes. Times are left out so a replayed game returns the same hits.
class character_history final : public tools::history_source_i {
  public:
    character_history(std::shared_ptr<tools::history_source_i> log, const std::vector<std::string>& notes)
        : log_(std::move(log)), notes_(notes) {}
    result<std::vector<tools::history_event>> events(const std::string& session, uint64_t from, uint64_t to) override {
        auto evs = log_->events(session, 0, UINT64_MAX);
        if (!evs) return evs.error();
        std::vector<tools::history_event> all = std::move(evs.value());
        uint64_t seq = all.empty() ? 0 : all.back().seq + 1;
        for (const auto& n : notes_) all.push_back({seq++, {}, "note", n});
        std::vector<tools::history_event> out;
        for (auto& e : all) {
            e.time = {};
            if (e.seq >= from && e.seq < to) out.push_back(std::move(e));
        }
        return out;
    }

  private:
    std::shared_ptr<tools::history_source_i> log_;
    const std::vector<std::string>& notes_;
};

}  // namespace

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
    size_t b = 0;
    while (b < out.size() && std::isspace(static_cast<unsigned char>(out[b]))) ++b;
    return out.substr(b);
}

tool_state::item* find_item(std::vector<tool_state::item>& pack, const std::string& name) {
    const std::string want = lower(name);
    for (auto& it : pack)
        if (lower(it.name) == want) return &it;
    tool_state::item* hit = nullptr;
    for (auto& it : pack) {
        const std::string have = lower(it.name);
        if (have.find(want) != std::string::npos || want.find(have) != std::string::npos) {
            if (hit) return nullptr;  // ambiguous
            hit = &it;
        }
    }
    return hit;
}

// One handler per game tool, written out: each is a small state change of the packs.
tools::tool_handler game_tool_handler(const std::string& name, tool_state& st) {
    if (name == "add_item")
        return [&st](const json& a, tools::tool_done done) {
            const std::string owner = a.value("owner", ""), item = a.value("item", "");
            const int64_t q =
                a.contains("quantity") && a["quantity"].is_number_integer() ? a["quantity"].get<int64_t>() : 1;
            if (owner.empty() || item.empty() || q < 1)
                return done(make_error(errc::invalid_argument, "owner, item and a positive quantity are required"));
            auto& pack = st.packs[owner];
            tool_state::item* it = nullptr;
            for (auto& x : pack)
                if (lower(x.name) == lower(item)) it = &x;
            if (!it) it = &pack.emplace_back(tool_state::item{item, 0});
            it->quantity += q;
            done(json{{"owner", owner}, {"item", it->name}, {"quantity", it->quantity}});
        };
    if (name == "remove_item")
        return [&st](const json& a, tools::tool_done done) {
            const std::string owner = a.value("owner", ""), item = a.value("item", "");
            const int64_t q =
                a.contains("quantity") && a["quantity"].is_number_integer() ? a["quantity"].get<int64_t>() : 1;
            auto& pack = st.packs[owner];
            tool_state::item* it = find_item(pack, item);
            if (!it) return done(make_error(errc::not_found, owner + "'s pack holds no '" + item + "'"));
            if (q < 1 || q > it->quantity)
                return done(make_error(errc::invalid_argument, owner + " holds only " + std::to_string(it->quantity) +
                                                                   " of '" + it->name + "'"));
            it->quantity -= q;
            json res = {{"owner", owner}, {"item", it->name}, {"quantity", it->quantity}};
            if (it->quantity == 0) pack.erase(pack.begin() + (it - pack.data()));
            done(std::move(res));
        };
    if (name == "list_inventory")
        return [&st](const json& a, tools::tool_done done) {
            if (a.contains("owner") && a["owner"].is_string()) {
                const std::string owner = a["owner"].get<std::string>();
                auto it = st.packs.find(owner);
                return done(
                    json{{"owner", owner}, {"items", it == st.packs.end() ? json::array() : pack_json(it->second)}});
            }
            json packs = json::object();
            for (const auto& [owner, pack] : st.packs) packs[owner] = pack_json(pack);
            done(json{{"packs", packs}});
        };
    return [name](const json&, tools::tool_done done) { done(json{{"ok", true}, {"tool", name}}); };
}

void bound_strings(json& schema, int32_t max_len) {
    if (schema.is_object()) {
        if (schema.value("type", json()) == json("string") && !schema.contains("enum") && !schema.contains("const"))
            schema["maxLength"] = std::min<int64_t>(schema.value("maxLength", int64_t{max_len}), max_len);
        for (auto& [k, v] : schema.items()) bound_strings(v, max_len);
    } else if (schema.is_array()) {
        for (auto& v : schema) bound_strings(v, max_len);
    }
}

std::chrono::system_clock::time_point game_clock(const scenario& sc) {
    std::string date = sc.generator ? sc.generator->start_date : std::string();
    auto t = tools::parse_iso8601(date.empty() ? "2026-01-01" : date);
    return t ? t.value() : std::chrono::system_clock::time_point{};
}

void add_builtin(tools::tool_registry& reg, const scenario& sc, const std::string& b, std::vector<std::string>& notes,
                 const std::string& sid, uint64_t seed, int64_t idx, session_store_i& store,
                 const std::function<void(const std::string&)>& progress) {
    const auto clock = game_clock(sc);
    auto add = [&](tools::tool t) {
        bound_strings(t.parameters, k_max_argument_chars);
        const std::string name = t.name;
        if (auto added = reg.add(std::move(t)); !added.ok()) progress("[play] tool " + name + ": " + added.message());
    };
    if (b == builtin_tools::recall) {
        // The whole history, by words: no time or sequence ranges (wall-clock times mean nothing in a game).
        auto t = tools::make_recall_tool(std::make_shared<character_history>(make_event_history(store), notes), sid);
        for (const char* k : {"since", "until", "from_seq", "to_seq", "top_k"}) t.parameters["properties"].erase(k);
        add(std::move(t));
    } else if (b == builtin_tools::note)
        add(tools::make_note_tool(std::make_shared<state_notes>(notes), sid, [clock] { return clock; }));
    else if (b == builtin_tools::roll_dice)
        add(tools::make_roll_dice_tool(seed ^ (static_cast<uint64_t>(idx) * 0x9E3779B97F4A7C15ull)));
    else if (b == builtin_tools::clock)
        add(tools::make_clock_tool([clock] { return clock; }));
}

std::unique_ptr<tools::tool_registry> make_game_tools(const scenario& sc, tool_state& st, const std::string& sid,
                                                      uint64_t seed, int64_t idx, session_store_i& store,
                                                      const std::function<void(const std::string&)>& progress) {
    auto reg = std::make_unique<tools::tool_registry>();
    auto add = [&](tools::tool t) {
        bound_strings(t.parameters, k_max_argument_chars);
        const std::string name = t.name;
        if (auto added = reg->add(std::move(t)); !added.ok()) progress("[play] tool " + name + ": " + added.message());
    };
    for (const auto& b : sc.tools.builtin) add_builtin(*reg, sc, b, st.notes, sid, seed, idx, store, progress);
    for (const auto& gt : sc.tools.game) {
        tools::tool t;
        t.name = gt.name;
        t.description = gt.description;
        t.parameters = json::parse(gt.parameters_json, nullptr, false);
        if (!t.parameters.is_object()) t.parameters = json{{"type", "object"}, {"properties", json::object()}};
        t.handler = game_tool_handler(gt.name, st);
        add(std::move(t));
    }
    return reg;
}

json run_tool_call(const tools::tool_registry& reg, const tools::tool_call& c) {
    auto p = std::make_shared<std::promise<result<json>>>();
    auto f = p->get_future();
    reg.call(c.name, c.arguments, [p](result<json> r) { p->set_value(std::move(r)); });
    if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return json{{"error", "timeout"}};
    auto r = f.get();
    if (!r) return json{{"error", r.error().message()}};
    json out = {{"result", std::move(r.value())}};
    if (c.name == builtin_tools::recall && out["result"].contains("hits"))
        for (auto& h : out["result"]["hits"]) h.erase("time");
    return out;
}

void replay_tool_calls(const std::vector<step_event>& done, tool_state& st, const std::string& gm) {
    for (const auto& ev : done) {
        if (ev.kind != "turn" && ev.kind != "answer") continue;
        const bool own = !gm.empty() && ev.speaker != gm;  // an npc's notes are its own
        for (const auto& rd : step_rounds(ev))
            for (const auto& c : rd.calls) {
                if (!c.result) continue;
                if (c.name == builtin_tools::note)
                    (own ? st.npc_notes[ev.speaker] : st.notes).push_back(c.arguments.value("text", ""));
                else if (c.name == "add_item" || c.name == "remove_item")
                    game_tool_handler(c.name, st)(c.arguments, [](result<json>) {});
            }
    }
}

}  // namespace mnemos::agent::game_tools

// The table's actions as tools and commands (agent/play/action_tools.h).
#include "agent/play/action_tools.h"

#include <algorithm>
#include <cctype>

#include "agent/play/steps.h"
#include "agent/scenario/runner_text.h"
#include "agent/scenario/text_normalize.h"

namespace mnemos::agent::play_actions {

using json = nlohmann::json;

namespace {

// Questions are longer than other tool strings (game_tools::k_max_argument_chars) but still bounded.
constexpr int32_t k_max_question_chars = 160;

bool asks_in(const scenario& sc, const std::string& cid, turn_action a) {
    for (const auto& ph : sc.phases) {
        if (ph.policy == turn_policy::round_robin && ph.action == a) {
            const auto who = play_table::participants(sc, ph);
            if (std::find(who.begin(), who.end(), cid) != who.end()) return true;
        }
        for (const auto& t : ph.turns)
            if (t.speaker == cid && t.action == a) return true;
    }
    return false;
}

// Ids with their names, for an enum and the description that explains it.
struct choices {
    json ids = json::array();
    std::string listed;
    void add(const std::string& id, const std::string& name) {
        ids.push_back(id);
        listed += (listed.empty() ? "" : ", ") + id + " (" + name + ")";  // ids: what the call names
    }
};

choices targets(const scenario& sc) {
    choices c;
    for (const auto& l : sc.locations) c.add(l.id, l.name);
    for (const auto& ch : sc.characters)
        if (ch.role == character_role::npc) c.add(ch.id, ch.name);
    for (const auto& s : sc.suspects) c.add(s.id, s.name);
    return c;
}

choices people(const scenario& sc, const std::string& self, bool with_suspects) {
    choices c;
    for (const auto& ch : sc.characters)
        if (ch.role != character_role::game_master && ch.id != self) c.add(ch.id, ch.name);
    for (const auto& p : sc.players)
        if (p.id != self) c.add(p.id, p.name);
    if (with_suspects)
        for (const auto& s : sc.suspects) c.add(s.id, s.name);
    return c;
}

json object_schema(json properties, std::vector<std::string> required) {
    return {{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)}};
}

tools::tool investigate_tool(const scenario& sc, const std::string& cid, play_table::table_state& table,
                             action_context& ctx) {
    const choices t = targets(sc);
    tools::tool tl;
    tl.name = "investigate";
    tl.description = runner_text(sc, runner_text_key::investigate_tool, {{"targets", t.listed}});
    tl.parameters = object_schema({{"target", {{"type", "string"}, {"enum", t.ids}}}}, {"target"});
    tl.handler = [&sc, cid, &table, &ctx](const json& a, tools::tool_done done) {
        const auto& ph = sc.phases[ctx.phase_idx];
        if (ph.kind != phase_kind::investigation && ctx.turn != turn_action::investigate)
            return done(make_error(errc::invalid_argument, "you can investigate only during an investigation"));
        const std::string target = a.value("target", "");
        auto r = play_table::investigate(sc, table, cid, target, ctx.phase_idx);
        if (!r) return done(json{{"target", target}, {"found", false}});
        table.found.emplace(r->clue, cid);
        const scenario_clue* k = sc.find_clue(r->clue);
        done(json{{"target", target},
                  {"found", true},
                  {"clue", k->id},
                  {"title", k->title},
                  {"text", k->text},
                  {"shown_to_everyone", r->to_all}});
    };
    return tl;
}

tools::tool ask_tool(const scenario& sc, const std::string& cid, action_context& ctx) {
    const choices p = people(sc, cid, false);
    tools::tool tl;
    tl.name = "ask";
    tl.description = runner_text(sc, runner_text_key::ask_tool, {{"people", p.listed}});
    tl.parameters = object_schema({{"character", {{"type", "string"}, {"enum", p.ids}}},
                                   {"question", {{"type", "string"}, {"maxLength", k_max_question_chars}}}},
                                  {"character", "question"});
    tl.handler = [&ctx](const json& a, tools::tool_done done) {
        if (ctx.turn != turn_action::ask)
            return done(make_error(errc::invalid_argument, "ask on your questioning turn"));
        if (ctx.asked) return done(make_error(errc::invalid_argument, "one question a turn"));
        const std::string q = a.value("question", "");
        if (q.empty()) return done(make_error(errc::invalid_argument, "the question is empty"));
        ctx.asked = true;
        done(json{{"asked", a.value("character", "")}, {"question", q}});
    };
    return tl;
}

tools::tool vote_tool(const scenario& sc, const std::string& cid, play_table::table_state& table, action_context& ctx) {
    const choices p = people(sc, cid, true);
    tools::tool tl;
    tl.name = "vote";
    tl.description = runner_text(sc, runner_text_key::vote_tool, {{"suspects", p.listed}});
    tl.parameters = object_schema({{"suspect", {{"type", "string"}, {"enum", p.ids}}}}, {"suspect"});
    tl.handler = [&sc, cid, &table, &ctx](const json& a, tools::tool_done done) {
        if (sc.phases[ctx.phase_idx].kind != phase_kind::accusation)
            return done(make_error(errc::invalid_argument, "votes are cast at the accusation"));
        const std::string s = a.value("suspect", "");
        step_event one;
        play_table::set_vote(one, {cid, s});
        play_table::apply(table, one);
        done(json{{"vote", s}});
    };
    return tl;
}

}  // namespace

const char* tool_name(turn_action a) {
    switch (a) {
        case turn_action::investigate:
            return "investigate";
        case turn_action::ask:
            return "ask";
        case turn_action::vote:
            return "vote";
        case turn_action::talk:
            break;
    }
    return "";
}

std::vector<turn_action> offered(const scenario& sc, const std::string& cid) {
    std::vector<turn_action> v;
    const scenario_character* c = sc.find_character(cid);
    if (!c) return v;
    if (c->role == character_role::game_master) {
        if (std::any_of(sc.phases.begin(), sc.phases.end(),
                        [](const auto& ph) { return ph.policy == turn_policy::directed; }))
            v.push_back(turn_action::ask);
        return v;
    }
    if (c->role != character_role::npc) return v;
    if (std::any_of(sc.clues.begin(), sc.clues.end(), [](const auto& k) { return !k.target.empty(); }))
        v.push_back(turn_action::investigate);
    if (asks_in(sc, cid, turn_action::ask)) v.push_back(turn_action::ask);
    if (asks_in(sc, cid, turn_action::vote)) v.push_back(turn_action::vote);
    return v;
}

void add_action_tools(tools::tool_registry& reg, const scenario& sc, const std::string& cid,
                      play_table::table_state& table, action_context& ctx) {
    for (turn_action a : offered(sc, cid)) {
        tools::tool t = a == turn_action::investigate ? investigate_tool(sc, cid, table, ctx)
                        : a == turn_action::ask       ? ask_tool(sc, cid, ctx)
                                                      : vote_tool(sc, cid, table, ctx);
        (void)reg.add(std::move(t));  // fixed names and schemas the grammar supports
    }
}

void record_calls(const scenario& sc, step_event& ev) {
    std::vector<play_table::reveal> found;
    for (const auto& rd : step_rounds(ev))
        for (const auto& c : rd.calls) {
            if (!c.result || !c.result->is_object()) continue;
            const json& r = *c.result;
            if (c.name == "investigate" && r.value("found", false)) {
                found.push_back({r.value("clue", ""), ev.speaker, r.value("shown_to_everyone", false), true});
                if (ev.kind == "investigate" && ev.to.empty()) ev.to = r.value("target", "");
            } else if (c.name == "investigate" && ev.kind == "investigate" && ev.to.empty()) {
                ev.to = r.value("target", "");
            } else if (c.name == "vote") {
                play_table::set_vote(ev, {ev.speaker, r.value("vote", "")});
                if (ev.kind == "vote") ev.to = r.value("vote", "");
            } else if (c.name == "ask" && ev.kind == "ask") {
                play_table::set_asked(ev, r.value("asked", ""));
                ev.to = r.value("asked", "");
                ev.text = r.value("question", "");
            }
        }
    (void)sc;
    play_table::add_reveals(ev, found);
}

std::string find_target(const scenario& sc, const std::string& id_or_name) {
    // Compared as find_participant compares: width, case and spacing folded, surrounding spaces ignored.
    auto trimmed = [](std::string s) {
        while (!s.empty() && s.back() == ' ') s.pop_back();
        if (!s.empty() && s.front() == ' ') s.erase(0, 1);
        return s;
    };
    const std::string want = trimmed(scenario_text::normalize_for_match(id_or_name));
    auto same = [&](const std::string& s) {
        return !s.empty() && !want.empty() && trimmed(scenario_text::normalize_for_match(s)) == want;
    };
    for (const auto& l : sc.locations)
        if (same(l.id) || same(l.name)) return l.id;
    for (const auto& s : sc.suspects)
        if (same(s.id) || same(s.name)) return s.id;
    auto p = play_steps::find_participant(sc, id_or_name);
    return p && *p != "all" ? *p : std::string();
}

std::optional<player_command> parse_player_command(const std::string& text) {
    for (turn_action a : {turn_action::investigate, turn_action::vote}) {
        const std::string cmd = "/" + std::string(tool_name(a));
        if (text.rfind(cmd, 0) != 0) continue;
        std::string arg = text.substr(cmd.size());
        if (!arg.empty() && arg[0] != ' ') continue;
        const auto b = arg.find_first_not_of(' ');
        arg = b == std::string::npos ? "" : arg.substr(b);
        while (!arg.empty() && std::isspace(static_cast<unsigned char>(arg.back()))) arg.pop_back();
        return player_command{a, arg};
    }
    return std::nullopt;
}

}  // namespace mnemos::agent::play_actions

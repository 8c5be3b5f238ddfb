// Cross-reference checks of a scenario (agent/scenario/checks.h).
#include "agent/scenario/checks.h"

#include <algorithm>
#include <map>

#include "agent/scenario/text_util.h"

namespace mnemos::agent::scenario_checks {

using scenario_text::contains_ci;
using scenario_text::placeholders;
using scenario_text::pointer_token;

constexpr const char* k_generator_builtins[] = {"weekday", "date", "day", "week"};

namespace {

// Reports a reference that does not resolve ("" references nothing and passes).
struct refs {
    reader& rd;
    const scenario& sc;
    void need_speaker(const std::string& id, const std::string& path) const {
        if (!id.empty() && !sc.find_character(id) && !sc.find_player(id))
            rd.error(path, "unknown character or player '" + id + "'");
    }
    void need_character(const std::string& id, const std::string& path) const {
        if (!id.empty() && !sc.find_character(id)) rd.error(path, "unknown character '" + id + "'");
    }
    void need_phase(const std::string& id, const std::string& path) const {
        if (!id.empty() && !sc.find_phase(id)) rd.error(path, "unknown phase '" + id + "'");
    }
    // A tool the scenario offers; to an npc (who) also its tools.npc.
    void need_tool(const std::string& name, const std::string& path, const std::string& who = {}) const {
        const auto* c = sc.find_character(who);
        const bool npc_tool = c && c->role == character_role::npc &&
                              std::find(sc.tools.npc.begin(), sc.tools.npc.end(), name) != sc.tools.npc.end();
        if (!sc.tools.allows(name) && !npc_tool) rd.error(path, "tool '" + name + "' is not in /tools");
    }
};

}  // namespace

void check_unique_ids(reader& rd, const scenario& sc) {
    // Duplicate ids within each namespace. Characters and players share one (both speak).
    auto unique = [&](const std::string& what, const std::vector<std::pair<std::string, std::string>>& ids) {
        std::map<std::string, std::string> seen;  // id -> first path
        for (const auto& [id, path] : ids) {
            if (id.empty()) continue;
            auto [it, inserted] = seen.emplace(id, path);
            if (!inserted) rd.error(path, "duplicate " + what + " id '" + id + "' (first at " + it->second + ")");
        }
    };
    std::vector<std::pair<std::string, std::string>> speakers, clue_ids, phase_ids, probe_ids, tool_names, fact_ids;
    for (size_t i = 0; i < sc.characters.size(); ++i)
        speakers.emplace_back(sc.characters[i].id, idx("/characters/", i) + "/id");
    for (size_t i = 0; i < sc.players.size(); ++i) speakers.emplace_back(sc.players[i].id, idx("/players/", i) + "/id");
    // Suspects and locations are named like the cast (a target or a vote names any of them).
    for (size_t i = 0; i < sc.suspects.size(); ++i)
        speakers.emplace_back(sc.suspects[i].id, idx("/suspects/", i) + "/id");
    for (size_t i = 0; i < sc.locations.size(); ++i)
        speakers.emplace_back(sc.locations[i].id, idx("/locations/", i) + "/id");
    for (size_t i = 0; i < sc.clues.size(); ++i) clue_ids.emplace_back(sc.clues[i].id, idx("/clues/", i) + "/id");
    for (size_t i = 0; i < sc.phases.size(); ++i) phase_ids.emplace_back(sc.phases[i].id, idx("/phases/", i) + "/id");
    for (size_t i = 0; i < sc.probes.size(); ++i) probe_ids.emplace_back(sc.probes[i].id, idx("/probes/", i) + "/id");
    for (size_t i = 0; i < sc.tools.builtin.size(); ++i)
        tool_names.emplace_back(sc.tools.builtin[i], idx("/tools/builtin/", i));
    for (size_t i = 0; i < sc.tools.game.size(); ++i)
        tool_names.emplace_back(sc.tools.game[i].name, idx("/tools/game/", i) + "/name");
    if (sc.generator) {
        for (size_t i = 0; i < sc.generator->facts.size(); ++i) {
            fact_ids.emplace_back(sc.generator->facts[i].id, idx("/generator/facts/", i) + "/id");
        }
    }
    unique("character/player", speakers);
    unique("clue", clue_ids);
    unique("phase", phase_ids);
    unique("probe", probe_ids);
    unique("tool", tool_names);
    unique("fact", fact_ids);
    for (const auto& [id, path] : speakers) {
        if (id == "all") rd.error(path, "'all' is reserved (a turn's 'to' for everyone)");
    }
}

void check_mystery(reader& rd, const scenario& sc) {
    if (sc.culprit.empty() && sc.culprits.empty()) {
        rd.error("/culprit", "missing: a mystery needs a culprit");
    } else if (sc.culprit.empty()) {
        check_culprits(rd, sc);
    } else if (const auto* c = sc.find_character(sc.culprit); !c) {
        if (!sc.find_suspect(sc.culprit) && !sc.find_player(sc.culprit))
            rd.error("/culprit", "unknown character '" + sc.culprit + "'");
    } else if (c->role != character_role::npc) {
        rd.error("/culprit", "the culprit '" + sc.culprit + "' must be an npc, not " + character_role_name(c->role));
    }
    // introduction, investigation rounds (increasing), accusation, reveal: present and in order.
    const phase_kind order[] = {phase_kind::introduction, phase_kind::investigation, phase_kind::accusation,
                                phase_kind::reveal};
    int last_rank = -1, last_round = 0;
    for (size_t i = 0; i < sc.phases.size(); ++i) {
        const auto& ph = sc.phases[i];
        const auto* pos = std::find(std::begin(order), std::end(order), ph.kind);
        if (pos == std::end(order)) continue;
        const int rank = static_cast<int>(pos - std::begin(order));
        if (rank < last_rank)
            rd.error(idx("/phases/", i) + "/kind",
                     std::string(phase_kind_name(ph.kind)) +
                         " is out of order (introduction, investigation, accusation, reveal)");
        last_rank = std::max(last_rank, rank);
    }
    for (phase_kind k : order) {
        if (std::none_of(sc.phases.begin(), sc.phases.end(), [&](const auto& ph) { return ph.kind == k; })) {
            rd.error("/phases", std::string("a mystery needs a phase of kind ") + phase_kind_name(k));
        }
    }
    for (size_t i = 0; i < sc.phases.size(); ++i) {
        const auto& ph = sc.phases[i];
        if (ph.kind != phase_kind::investigation) continue;
        if (ph.round <= last_round) {
            rd.error(idx("/phases/", i) + "/round", "investigation phases need increasing rounds (1, 2, ...)");
        } else {
            last_round = ph.round;
        }
    }
}

void check_kind_rules(reader& rd, const scenario& sc) {
    // Kind-specific rules.
    int n_game_masters = 0;
    for (const auto& c : sc.characters) n_game_masters += c.role == character_role::game_master;
    if (n_game_masters > 1) rd.error("/characters", "at most one game_master");
    if (sc.kind == scenario_kind::mystery) {
        check_mystery(rd, sc);
    } else if (!sc.culprit.empty() || !sc.culprits.empty()) {
        rd.error(sc.culprit.empty() ? "/culprits" : "/culprit", "only a mystery has a culprit");
    }
    if (sc.kind == scenario_kind::companion &&
        std::none_of(sc.characters.begin(), sc.characters.end(),
                     [](const auto& c) { return c.role == character_role::companion; })) {
        rd.error("/characters", "a companion scenario needs a character with role companion");
    }
    if (sc.kind == scenario_kind::tool_agent && sc.tools.builtin.empty() && sc.tools.game.empty()) {
        rd.error("/tools", "a tool_agent scenario needs at least one tool");
    }
}

void check_clues(reader& rd, const scenario& sc) {
    const refs r{rd, sc};
    // Clues.
    for (size_t i = 0; i < sc.clues.size(); ++i) {
        const auto& k = sc.clues[i];
        const std::string kp = idx("/clues/", i);
        r.need_phase(k.available_from, kp + "/available_from");
        if (k.available_from.empty() && k.pushed() && !(k.trigger && k.trigger->act > 0))
            rd.error(kp + "/available_from", "missing: a clue without a target or trigger is released by a phase");
        r.need_speaker(k.found_by, kp + "/found_by");
        for (size_t v = 0; v < k.visible_to.size(); ++v)
            r.need_speaker(k.visible_to[v], kp + "/visible_to/" + std::to_string(v));
    }
}

void check_phases(reader& rd, const scenario& sc) {
    const refs r{rd, sc};
    // Phases and turns.
    for (size_t i = 0; i < sc.phases.size(); ++i) {
        const auto& ph = sc.phases[i];
        const std::string hp = idx("/phases/", i);
        if (ph.kind == phase_kind::investigation && ph.round == 0)
            rd.error(hp + "/round", "missing: an investigation phase needs a round");
        if (ph.kind != phase_kind::investigation && ph.round != 0)
            rd.error(hp + "/round", "only investigation phases have a round");
        const bool generated = sc.generator && sc.generator->phase == ph.id;
        if (ph.kind == phase_kind::history && !generated) {
            rd.error(hp + "/kind", "a history phase is filled by /generator, whose phase is not '" + ph.id + "'");
        }
        if (generated && !ph.turns.empty()) rd.error(hp + "/turns", "the generated phase must have no scripted turns");
        for (size_t t = 0; t < ph.turns.size(); ++t) {
            const auto& turn = ph.turns[t];
            const std::string tp = hp + "/turns/" + std::to_string(t);
            r.need_speaker(turn.speaker, tp + "/speaker");
            if (turn.to != "all") {
                r.need_speaker(turn.to, tp + "/to");
                if (!turn.to.empty() && turn.to == turn.speaker)
                    rd.error(tp + "/to", "a speaker cannot address itself");
            }
            const auto* pl = sc.find_player(turn.speaker);
            if (pl && turn.interactive && !pl->interactive) {
                rd.error(tp + "/interactive", "player '" + pl->id + "' is scripted (mode) and needs a line");
            }
            const bool model_turn = turn.interactive || turn.action != turn_action::talk;  // an action too
            if (!turn.expect_tools.empty() && (!model_turn || !sc.find_character(turn.speaker))) {
                rd.error(tp + "/expect_tools", "only an interactive character turn can be expected to call tools");
            }
            for (size_t k = 0; k < turn.expect_tools.size(); ++k)
                r.need_tool(turn.expect_tools[k], tp + "/expect_tools/" + std::to_string(k), turn.speaker);
        }
    }
}

void check_probes(reader& rd, const scenario& sc) {
    const refs r{rd, sc};
    // Probes.
    for (size_t i = 0; i < sc.probes.size(); ++i) {
        const auto& q = sc.probes[i];
        const std::string qp = idx("/probes/", i);
        r.need_phase(q.at_phase, qp + "/at/phase");
        if (const auto* ph = sc.find_phase(q.at_phase); ph && q.at_turn >= 0) {
            if (sc.generator && sc.generator->phase == ph->id) {
                rd.error(qp + "/at/turn", "the generated phase '" + ph->id + "' has no fixed turns; omit 'turn'");
            } else if (q.at_turn > static_cast<int32_t>(ph->turns.size())) {
                rd.error(qp + "/at/turn", std::to_string(q.at_turn) + " is past the end of phase '" + ph->id + "' (" +
                                              std::to_string(ph->turns.size()) + " turns)");
            }
        }
        r.need_character(q.asked_to, qp + "/asked_to");
        if (q.must_contain.empty() && q.must_not_reveal.empty() && q.must_call_tools.empty()) {
            rd.error(qp, "a probe needs must_contain, must_not_reveal or must_call_tools");
        }
        for (size_t k = 0; k < q.must_call_tools.size(); ++k)
            r.need_tool(q.must_call_tools[k], qp + "/must_call_tools/" + std::to_string(k), q.asked_to);
        for (size_t k = 0; k < q.sources.size(); ++k)
            r.need_speaker(q.sources[k], qp + "/sources/" + std::to_string(k));
        if (!q.fact.empty()) {
            const bool found = sc.generator && std::any_of(sc.generator->facts.begin(), sc.generator->facts.end(),
                                                           [&](const auto& f) { return f.id == q.fact; });
            if (!found) rd.error(qp + "/fact", "unknown generator fact '" + q.fact + "'");
        }
    }
}

void check_generator(reader& rd, const scenario& sc) {
    if (!sc.generator) return;
    const refs r{rd, sc};
    const auto& g = *sc.generator;
    r.need_phase(g.phase, "/generator/phase");
    if (const auto* ph = sc.find_phase(g.phase); ph && ph->kind != phase_kind::history) {
        rd.error("/generator/phase", "phase '" + g.phase + "' must have kind history");
    }
    r.need_speaker(g.speaker, "/generator/speaker");
    r.need_speaker(g.to, "/generator/to");
    if (!g.sentences.empty() && g.sentences_max > static_cast<int32_t>(g.sentences.size())) {
        rd.error("/generator/sentences_per_entry/max",
                 "more than the " + std::to_string(g.sentences.size()) + " sentences");
    }
    // Placeholders must name a slot or a built-in; slot values are literal.
    auto check_template = [&](const std::string& t, const std::string& path) {
        std::vector<std::string> names;
        if (!placeholders(t, names)) {
            rd.error(path, "unbalanced '{' or '}'");
            return;
        }
        for (const auto& n : names) {
            const bool builtin = std::find_if(std::begin(k_generator_builtins), std::end(k_generator_builtins),
                                              [&](const char* b) { return n == b; }) != std::end(k_generator_builtins);
            if (!builtin && !g.slots.count(n)) rd.error(path, "unknown placeholder {" + n + "}");
        }
    };
    for (size_t i = 0; i < g.sentences.size(); ++i) check_template(g.sentences[i], idx("/generator/sentences/", i));
    for (size_t i = 0; i < g.replies.size(); ++i) check_template(g.replies[i], idx("/generator/replies/", i));
    for (const auto& [name, values] : g.slots) {
        for (size_t i = 0; i < values.size(); ++i) {
            if (values[i].find_first_of("{}") != std::string::npos) {
                rd.error("/generator/slots/" + pointer_token(name) + "/" + std::to_string(i),
                         "slot values cannot contain '{' or '}'");
            }
        }
    }
    check_generator_facts(rd, g);
}

void check_generator_facts(reader& rd, const history_generator& g) {
    // Facts: on a real day, key in its own text and in no filler or other fact.
    for (size_t i = 0; i < g.facts.size(); ++i) {
        const auto& f = g.facts[i];
        const std::string fp = idx("/generator/facts/", i);
        if (g.days > 0 && f.day >= g.days)
            rd.error(fp + "/day", std::to_string(f.day) + " is not before days (" + std::to_string(g.days) + ")");
        if (f.key.empty()) continue;
        if (!contains_ci(f.text, f.key)) rd.error(fp + "/key", "'" + f.key + "' does not appear in the fact's text");
        if (f.text.find_first_of("{}") != std::string::npos)
            rd.error(fp + "/text", "fact text is planted verbatim; no '{' or '}'");
        for (size_t s = 0; s < g.sentences.size(); ++s) {
            if (contains_ci(g.sentences[s], f.key))
                rd.error(idx("/generator/sentences/", s), "contains fact key '" + f.key + "' (" + f.id + ")");
        }
        for (size_t s = 0; s < g.replies.size(); ++s) {
            if (contains_ci(g.replies[s], f.key))
                rd.error(idx("/generator/replies/", s), "contains fact key '" + f.key + "' (" + f.id + ")");
        }
        for (const auto& [name, values] : g.slots) {
            for (size_t s = 0; s < values.size(); ++s) {
                if (contains_ci(values[s], f.key)) {
                    rd.error("/generator/slots/" + pointer_token(name) + "/" + std::to_string(s),
                             "contains fact key '" + f.key + "' (" + f.id + ")");
                }
            }
        }
        for (size_t o = 0; o < g.facts.size(); ++o) {
            if (o != i && contains_ci(g.facts[o].text, f.key)) {
                rd.error(idx("/generator/facts/", o) + "/text",
                         "contains the key '" + f.key + "' of fact '" + f.id + "'");
            }
        }
    }
}

void check_references(reader& rd, const scenario& sc) {
    check_unique_ids(rd, sc);
    check_kind_rules(rd, sc);
    check_clues(rd, sc);
    check_clue_mechanics(rd, sc);
    check_phases(rd, sc);
    check_phase_mechanics(rd, sc);
    check_probes(rd, sc);
    check_generator(rd, sc);
}

}  // namespace mnemos::agent::scenario_checks

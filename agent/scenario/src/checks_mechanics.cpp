// Cross-reference checks of the game mechanics (agent/scenario/checks.h): culprits, clue targets and
// triggers, turn policies and actions.
#include <algorithm>
#include <set>

#include "agent/scenario/checks.h"

namespace mnemos::agent::scenario_checks {

namespace {

bool is_speaker(const scenario& sc, const std::string& id) { return sc.find_character(id) || sc.find_player(id); }
// Someone a vote or a question may name: a character, a player or a suspect.
bool is_person(const scenario& sc, const std::string& id) { return is_speaker(sc, id) || sc.find_suspect(id); }
// What investigate() may search: a location, a character or a suspect.
bool is_target(const scenario& sc, const std::string& id) { return sc.find_location(id) || is_person(sc, id); }

}  // namespace

void check_culprits(reader& rd, const scenario& sc) {
    std::set<std::string> seen;
    bool killer = false;
    for (size_t i = 0; i < sc.culprits.size(); ++i) {
        const auto& k = sc.culprits[i];
        const std::string cp = idx("/culprits/", i) + "/id";
        if (k.id.empty()) continue;
        if (!seen.insert(k.id).second) rd.error(cp, "'" + k.id + "' is named twice");
        killer = killer || k.role == culprit_role::killer;
        if (const auto* c = sc.find_character(k.id); c && c->role == character_role::game_master)
            rd.error(cp, "the game master '" + k.id + "' cannot be a culprit");
        else if (!is_person(sc, k.id))
            rd.error(cp, "unknown character, player or suspect '" + k.id + "'");
    }
    if (!sc.culprits.empty() && !killer) rd.error("/culprits", "needs a culprit with role killer");
}

void check_clue_mechanics(reader& rd, const scenario& sc) {
    std::set<int32_t> acts;
    for (const auto& ph : sc.phases) acts.insert(ph.act);
    for (size_t i = 0; i < sc.clues.size(); ++i) {
        const auto& k = sc.clues[i];
        const std::string kp = idx("/clues/", i);
        if (!k.target.empty() && !is_target(sc, k.target))
            rd.error(kp + "/target", "unknown location, character or suspect '" + k.target + "'");
        if (!k.trigger) continue;
        const auto& t = *k.trigger;
        if (!k.target.empty()) rd.error(kp + "/trigger", "a clue is found by investigation or by a trigger, not both");
        if (!t.said_by.empty() && !is_speaker(sc, t.said_by))
            rd.error(kp + "/trigger/said_by", "unknown character or player '" + t.said_by + "'");
        if (!t.asked.empty() && !is_person(sc, t.asked))
            rd.error(kp + "/trigger/asked", "unknown character, player or suspect '" + t.asked + "'");
        if (t.act > 0 && !acts.count(t.act)) rd.error(kp + "/trigger/act", "no phase has act " + std::to_string(t.act));
        if (t.act > 0 && !k.available_from.empty())
            rd.error(kp + "/available_from", "an act trigger releases the clue; omit available_from");
    }
}

namespace {

void check_turn_action(reader& rd, const scenario& sc, const scenario_phase& ph, const scripted_turn& t,
                       const std::string& tp) {
    if (t.action == turn_action::talk) {
        if (!t.target.empty()) rd.error(tp + "/target", "only an investigate or vote action has a target");
        if (t.line.empty() && !t.interactive)
            rd.error(tp + "/line", "missing: a talk turn needs 'line' or 'interactive'");
        return;
    }
    const auto* pl = sc.find_player(t.speaker);
    const bool character = sc.find_character(t.speaker) != nullptr;
    if (t.action == turn_action::vote && ph.kind != phase_kind::accusation)
        rd.error(tp + "/action", "a vote is cast in an accusation phase");
    if (character && !t.line.empty()) rd.error(tp + "/line", "a character's action is generated; omit its line");
    if (character && !t.target.empty()) rd.error(tp + "/target", "a character chooses its own target; omit it");
    const bool needs_target =
        pl && !pl->interactive && (t.action == turn_action::investigate || t.action == turn_action::vote);
    if (needs_target && t.target.empty())
        rd.error(tp + "/target", "missing: a scripted player's action needs a target");
    if (!t.target.empty() && t.action == turn_action::investigate && !is_target(sc, t.target))
        rd.error(tp + "/target", "unknown location, character or suspect '" + t.target + "'");
    if (!t.target.empty() && t.action == turn_action::vote && !is_person(sc, t.target))
        rd.error(tp + "/target", "unknown character, player or suspect '" + t.target + "'");
    if (t.action == turn_action::ask && pl && !pl->interactive && (t.to == "all" || t.line.empty()))
        rd.error(tp, "a scripted player asks someone ('to') a question ('line')");
    if (t.action == turn_action::investigate &&
        std::none_of(sc.clues.begin(), sc.clues.end(), [](const auto& k) { return !k.target.empty(); }))
        rd.error(tp + "/action", "nothing to investigate: no clue has a target");
}

}  // namespace

void check_phase_mechanics(reader& rd, const scenario& sc) {
    for (size_t i = 0; i < sc.phases.size(); ++i) {
        const auto& ph = sc.phases[i];
        const std::string hp = idx("/phases/", i);
        for (size_t t = 0; t < ph.turns.size(); ++t)
            check_turn_action(rd, sc, ph, ph.turns[t], hp + "/turns/" + std::to_string(t));
        if (ph.policy == turn_policy::scripted) {
            if (!ph.participants.empty())
                rd.error(hp + "/participants", "only a round_robin or directed phase has them");
            if (ph.action != turn_action::talk) rd.error(hp + "/action", "only a round_robin phase has an action");
            continue;
        }
        if (!ph.turns.empty())
            rd.error(hp + "/turns", "a " + std::string(turn_policy_name(ph.policy)) + " phase has no scripted turns");
        if (sc.generator && sc.generator->phase == ph.id) rd.error(hp + "/policy", "the generated phase is scripted");
        for (size_t k = 0; k < ph.participants.size(); ++k) {
            const auto* c = sc.find_character(ph.participants[k]);
            if (!c)
                rd.error(hp + "/participants/" + std::to_string(k), "unknown character '" + ph.participants[k] + "'");
        }
        const bool any_npc = std::any_of(sc.characters.begin(), sc.characters.end(),
                                         [](const auto& c) { return c.role == character_role::npc; });
        if (ph.participants.empty() && !any_npc) rd.error(hp + "/participants", "missing: the scenario has no npc");
        if (ph.policy == turn_policy::directed && sc.game_master().empty())
            rd.error(hp + "/policy", "a directed phase needs a game_master character to direct it");
        if (ph.policy == turn_policy::directed && ph.action != turn_action::talk)
            rd.error(hp + "/action", "in a directed phase the game master asks and the character answers");
        if (ph.action == turn_action::vote && ph.kind != phase_kind::accusation)
            rd.error(hp + "/action", "a vote is cast in an accusation phase");
    }
}

}  // namespace mnemos::agent::scenario_checks

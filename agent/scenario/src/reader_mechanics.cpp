// The reader's game-mechanics fields (agent/scenario/reader.h): investigation targets and triggers of clues,
// turn policies and actions, culprits with roles, non-playing suspects and locations.
#include "agent/scenario/reader.h"

namespace mnemos::agent::scenario_reader {

namespace {

// "keyword" / "subject": one string or an array of alternatives.
std::vector<std::string> words(reader& rd, const json& j, const std::string& p, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) return {};
    if (it->is_string()) {
        if (it->get_ref<const std::string&>().empty()) rd.error(p + "/" + key, "must not be empty");
        return {it->get<std::string>()};
    }
    auto v = rd.strings(j, p, key, false);
    if (it->is_array() && it->empty()) rd.error(p + "/" + key, "must not be empty");
    return v;
}

void read_trigger(reader& rd, const json& j, const std::string& p, clue_trigger& t) {
    if (!rd.object(j, p, "clue_trigger")) return;
    t.keywords = words(rd, j, p, "keyword");
    t.said_by = rd.id(j, p, "said_by", false);
    t.asked = rd.id(j, p, "asked", false);
    t.subject = words(rd, j, p, "subject");
    t.act = static_cast<int32_t>(rd.integer(j, p, "act", false, 0, 1, 1000));
    const int n_kinds = int(j.contains("keyword")) + int(j.contains("asked")) + int(j.contains("act"));
    if (n_kinds != 1) rd.error(p, "a trigger needs exactly one of 'keyword', 'asked' or 'act'");
    if (j.contains("said_by") && !j.contains("keyword")) rd.error(p + "/said_by", "only a keyword trigger has said_by");
    if (j.contains("asked") != j.contains("subject"))
        rd.error(p + (j.contains("asked") ? "/subject" : "/asked"), "'asked' and 'subject' go together");
}

// A list of {"id", "name", "description"} objects (suspects, locations).
template <typename T>
void read_named(reader& rd, const json& root, const char* key, const char* def, std::vector<T>& out) {
    const json* arr = rd.array(root, "", key, false);
    if (!arr) return;
    for (size_t i = 0; i < arr->size(); ++i) {
        const std::string ip = "/" + std::string(key) + "/" + std::to_string(i);
        const json& e = (*arr)[i];
        if (!rd.object(e, ip, def)) continue;
        T t;
        t.id = rd.id(e, ip, "id", true);
        t.name = rd.str(e, ip, "name", true, true);
        t.description = rd.str(e, ip, "description", false);
        out.push_back(std::move(t));
    }
}

}  // namespace

void read_clue_mechanics(reader& rd, const json& j, const std::string& p, scenario_clue& k) {
    k.target = rd.id(j, p, "target", false);
    const int rv = enum_field(rd, j, p, "reveal_to", k_reveal_names, false, -2);
    // Default: a found clue goes to its finder; a keyword clue (said aloud) to everyone.
    if (rv >= 0) k.reveal = static_cast<clue_reveal>(rv);
    if (auto it = j.find("trigger"); it != j.end()) {
        k.trigger.emplace();
        read_trigger(rd, *it, p + "/trigger", *k.trigger);
        if (rv == -2 && !k.trigger->keywords.empty()) k.reveal = clue_reveal::all;
    }
}

void read_phase_policy(reader& rd, const json& j, const std::string& p, scenario_phase& ph) {
    ph.act = static_cast<int32_t>(rd.integer(j, p, "act", false, 0, 1, 1000));
    const int pol = enum_field(rd, j, p, "policy", k_policy_names, false, 0);
    if (pol >= 0) ph.policy = static_cast<turn_policy>(pol);
    ph.rounds = static_cast<int32_t>(rd.integer(j, p, "rounds", false, 1, 1, 100));
    ph.participants = rd.strings(j, p, "participants", false);
    const int act = enum_field(rd, j, p, "action", k_action_names, false, 0);
    if (act >= 0) ph.action = static_cast<turn_action>(act);
}

void read_turn_action(reader& rd, const json& j, const std::string& p, scripted_turn& t) {
    const int act = enum_field(rd, j, p, "action", k_action_names, false, 0);
    if (act >= 0) t.action = static_cast<turn_action>(act);
    t.target = rd.id(j, p, "target", false);
}

void read_cast_mechanics(reader& rd, const json& root, scenario& sc) {
    read_named(rd, root, "suspects", "suspect", sc.suspects);
    read_named(rd, root, "locations", "location", sc.locations);
    if (root.contains("culprit") && root.contains("culprits"))
        rd.error("/culprits", "give 'culprit' (one killer) or 'culprits', not both");
    if (const json* arr = rd.array(root, "", "culprits", false)) {
        if (arr->empty()) rd.error("/culprits", "must not be empty");
        for (size_t i = 0; i < arr->size(); ++i) {
            const std::string cp = "/culprits/" + std::to_string(i);
            const json& e = (*arr)[i];
            if (!rd.object(e, cp, "culprit")) continue;
            scenario_culprit c;
            c.id = rd.id(e, cp, "id", true);
            const int role = enum_field(rd, e, cp, "role", k_culprit_role_names, true, 0);
            if (role >= 0) c.role = static_cast<culprit_role>(role);
            sc.culprits.push_back(std::move(c));
        }
    } else if (!sc.culprit.empty()) {
        sc.culprits.push_back({sc.culprit, culprit_role::killer});
    }
    // NPCs keep their own history and notes in a mystery unless the scenario says otherwise.
    const json* tools = root.contains("tools") && root["tools"].is_object() ? &root["tools"] : nullptr;
    if (sc.kind == scenario_kind::mystery && !(tools && tools->contains("npc"))) sc.tools.npc = {"recall", "note"};
}

}  // namespace mnemos::agent::scenario_reader

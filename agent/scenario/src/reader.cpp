// The scenario reader's sections (agent/scenario/reader.h).
#include "agent/scenario/reader.h"

#include "agent/scenario/text_util.h"
#include "agent/tooling/builtin_tools.h"
#include "engine/grammar.h"

namespace mnemos::agent::scenario_reader {

using scenario_text::parse_date;
using scenario_text::pointer_token;

scripted_turn read_turn(reader& rd, const json& j, const std::string& p) {
    scripted_turn t;
    if (!rd.object(j, p, "turn")) return t;
    t.speaker = rd.id(j, p, "speaker", true);
    if (j.contains("to")) t.to = rd.id(j, p, "to", false);
    t.line = rd.str(j, p, "line", false, true);
    if (auto it = j.find("interactive"); it != j.end()) {
        if (!it->is_boolean() || !it->get<bool>())
            rd.error(p + "/interactive", "expected true (omit it for a scripted line)");
        else
            t.interactive = true;
    }
    const bool has_line = j.contains("line");
    if (has_line && t.interactive) rd.error(p, "a turn has either 'line' or 'interactive', not both");
    if (!has_line && !j.contains("interactive") && !j.contains("action"))
        rd.error(p + "/line", "missing: a turn needs 'line' or 'interactive' (or an 'action')");
    t.expect_tools = rd.strings(j, p, "expect_tools", false);
    read_turn_action(rd, j, p, t);
    return t;
}

namespace {

// The generator's "slots": an object of non-empty arrays of strings.
void read_slots(reader& rd, const json& j, const std::string& p, history_generator& g) {
    if (auto it = j.find("slots"); it != j.end()) {
        if (!it->is_object()) {
            rd.error(p + "/slots", "expected an object of arrays of strings");
        } else {
            for (const auto& [name, values] : it->items()) {
                const std::string sp = p + "/slots/" + pointer_token(name);
                if (!values.is_array() || values.empty()) {
                    rd.error(sp, "expected a non-empty array of strings");
                    continue;
                }
                std::vector<std::string> v;
                for (size_t i = 0; i < values.size(); ++i) {
                    if (!values[i].is_string())
                        rd.error(sp + "/" + std::to_string(i), "expected a string");
                    else
                        v.push_back(values[i].get<std::string>());
                }
                g.slots[name] = std::move(v);
            }
        }
    }
}

}  // namespace

void read_generator(reader& rd, const json& j, const std::string& p, history_generator& g) {
    if (!rd.object(j, p, "generator")) return;
    g.kind = rd.str(j, p, "kind", true);
    if (j.contains("kind") && j["kind"].is_string() && g.kind != "daily_log")
        rd.error(p + "/kind", "expected one of: daily_log");
    g.seed = static_cast<uint64_t>(rd.integer(j, p, "seed", true, 0, 0, INT64_MAX));
    g.phase = rd.id(j, p, "phase", true);
    g.speaker = rd.id(j, p, "speaker", true);
    g.to = rd.id(j, p, "to", true);
    g.days = static_cast<int32_t>(rd.integer(j, p, "days", true, 0, 1, 3660));
    g.start_date = rd.str(j, p, "start_date", true);
    int64_t unused = 0;
    if (j.contains("start_date") && j["start_date"].is_string() && !parse_date(g.start_date, unused)) {
        rd.error(p + "/start_date", "'" + g.start_date + "' is not a date (YYYY-MM-DD)");
    }
    auto range = [&](const char* key, int32_t& lo, int32_t& hi) {
        auto it = j.find(key);
        if (it == j.end()) return;
        const std::string rp = p + "/" + key;
        if (!rd.object(*it, rp, "int_range")) return;
        lo = static_cast<int32_t>(rd.integer(*it, rp, "min", true, lo, 1, 1000));
        hi = static_cast<int32_t>(rd.integer(*it, rp, "max", true, hi, 1, 1000));
        if (lo > hi) rd.error(rp, "min " + std::to_string(lo) + " > max " + std::to_string(hi));
    };
    range("entries_per_day", g.entries_min, g.entries_max);
    range("sentences_per_entry", g.sentences_min, g.sentences_max);
    g.sentences = rd.strings(j, p, "sentences", true);
    if (j.contains("sentences") && j["sentences"].is_array() && j["sentences"].empty()) {
        rd.error(p + "/sentences", "must not be empty");
    }
    g.replies = rd.strings(j, p, "replies", false);
    read_slots(rd, j, p, g);
    if (const json* facts = rd.array(j, p, "facts", true)) {
        for (size_t i = 0; i < facts->size(); ++i) {
            const std::string fp = p + "/facts/" + std::to_string(i);
            const json& fj = (*facts)[i];
            if (!rd.object(fj, fp, "generator_fact")) continue;
            generator_fact f;
            f.id = rd.id(fj, fp, "id", true);
            f.day = static_cast<int32_t>(rd.integer(fj, fp, "day", true, 0, 0, 3659));
            f.text = rd.str(fj, fp, "text", true, true);
            f.key = rd.str(fj, fp, "key", true, true);
            g.facts.push_back(std::move(f));
        }
    }
}

// A game tool's "parameters": a JSON Schema of type object whose every keyword constrained decoding enforces
// (the same grammar the server compiles; a keyword it cannot enforce is an error naming it, as in `serve`).
std::string read_tool_parameters(reader& rd, const json& gj, const std::string& gp) {
    const std::string pp = gp + "/parameters";
    auto it = gj.find("parameters");
    if (it == gj.end() || !it->is_object()) {
        rd.error(pp, it == gj.end() ? "missing required property" : "expected a JSON Schema object");
        return {};
    }
    const json& s = *it;
    if (!s.contains("type") || s["type"] != "object") rd.error(pp + "/type", "expected \"object\"");
    if (s.contains("properties") && !s["properties"].is_object()) rd.error(pp + "/properties", "expected an object");
    if (s.contains("required")) {
        const json& req = s["required"];
        if (!req.is_array()) rd.error(pp + "/required", "expected an array of strings");
        for (size_t k = 0; req.is_array() && k < req.size(); ++k) {
            const std::string rp = pp + "/required/" + std::to_string(k);
            if (!req[k].is_string())
                rd.error(rp, "expected a string");
            else if (!s.contains("properties") || !s["properties"].is_object() ||
                     !s["properties"].contains(req[k].get<std::string>()))
                rd.error(rp, "'" + req[k].get<std::string>() + "' is not in properties");
        }
    }
    std::string text = s.dump();
    if (auto g = engine::grammar::from_json_schema(text); !g)
        rd.error(pp, "constrained decoding cannot enforce this schema: " + g.error().message());
    return text;
}

void read_tools(reader& rd, const json& j, const std::string& p, scenario_tools& tools) {
    if (!rd.object(j, p, "tools")) return;
    tools.builtin = rd.strings(j, p, "builtin", false);
    for (const char* key : {"builtin", "npc"}) {
        const auto names = key == std::string("npc") ? rd.strings(j, p, key, false) : tools.builtin;
        if (key == std::string("npc") && j.contains("npc")) tools.npc = names;
        for (size_t i = 0; i < names.size(); ++i) {
            if (!builtin_tools::is_builtin(names[i])) {
                rd.error(p + "/" + key + "/" + std::to_string(i),
                         "unknown built-in tool '" + names[i] + "' (expected one of: " + builtin_tools::names() + ")");
            }
        }
    }
    const json* game = rd.array(j, p, "game", false);
    if (!game) return;
    for (size_t i = 0; i < game->size(); ++i) {
        const std::string gp = p + "/game/" + std::to_string(i);
        const json& gj = (*game)[i];
        if (!rd.object(gj, gp, "game_tool")) continue;
        game_tool t;
        t.name = rd.str(gj, gp, "name", true, true);
        bool name_ok = !t.name.empty() && t.name[0] >= 'a' && t.name[0] <= 'z';
        for (char c : t.name) name_ok = name_ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
        if (!t.name.empty() && !name_ok)
            rd.error(gp + "/name", "'" + t.name + "' is not a tool name ([a-z][a-z0-9_]*)");
        t.description = rd.str(gj, gp, "description", true, true);
        t.parameters_json = read_tool_parameters(rd, gj, gp);
        tools.game.push_back(std::move(t));
    }
}

void read_characters(reader& rd, const json& root, scenario& sc) {
    const std::string p;  // the root's pointer is ""
    if (const json* chars = rd.array(root, p, "characters", true)) {
        if (chars->empty()) rd.error("/characters", "needs at least one character");
        for (size_t i = 0; i < chars->size(); ++i) {
            const std::string cp = "/characters/" + std::to_string(i);
            const json& cj = (*chars)[i];
            if (!rd.object(cj, cp, "character")) continue;
            scenario_character c;
            c.id = rd.id(cj, cp, "id", true);
            c.name = rd.str(cj, cp, "name", true, true);
            const int role = enum_field(rd, cj, cp, "role", k_role_names, true, 0);
            if (role >= 0) c.role = static_cast<character_role>(role);
            c.persona = rd.str(cj, cp, "persona", true, true);
            c.public_knowledge = rd.str(cj, cp, "public_knowledge", false);
            c.private_script = rd.str(cj, cp, "private_script", false);
            c.secrets = rd.strings(cj, cp, "secrets", false);
            c.goals = rd.strings(cj, cp, "goals", false);
            sc.characters.push_back(std::move(c));
        }
    }
}

void read_players(reader& rd, const json& root, scenario& sc) {
    const std::string p;  // the root's pointer is ""
    if (const json* players = rd.array(root, p, "players", false)) {
        for (size_t i = 0; i < players->size(); ++i) {
            const std::string pp = "/players/" + std::to_string(i);
            const json& pj = (*players)[i];
            if (!rd.object(pj, pp, "player")) continue;
            scenario_player pl;
            pl.id = rd.id(pj, pp, "id", true);
            pl.name = rd.str(pj, pp, "name", true, true);
            pl.description = rd.str(pj, pp, "description", false);
            pl.interactive = enum_field(rd, pj, pp, "mode", k_mode_names, false, 0) == 1;
            sc.players.push_back(std::move(pl));
        }
    }
}

void read_clues(reader& rd, const json& root, scenario& sc) {
    const std::string p;  // the root's pointer is ""
    if (const json* clues = rd.array(root, p, "clues", false)) {
        for (size_t i = 0; i < clues->size(); ++i) {
            const std::string kp = "/clues/" + std::to_string(i);
            const json& kj = (*clues)[i];
            if (!rd.object(kj, kp, "clue")) continue;
            scenario_clue k;
            k.id = rd.id(kj, kp, "id", true);
            k.title = rd.str(kj, kp, "title", false);
            k.text = rd.str(kj, kp, "text", true, true);
            k.available_from = rd.id(kj, kp, "available_from", false);
            k.found_by = rd.id(kj, kp, "found_by", false);
            k.visible_to = rd.strings(kj, kp, "visible_to", false);
            read_clue_mechanics(rd, kj, kp, k);
            sc.clues.push_back(std::move(k));
        }
    }
}

void read_phases(reader& rd, const json& root, scenario& sc) {
    const std::string p;  // the root's pointer is ""
    if (const json* phases = rd.array(root, p, "phases", true)) {
        if (phases->empty()) rd.error("/phases", "needs at least one phase");
        for (size_t i = 0; i < phases->size(); ++i) {
            const std::string hp = "/phases/" + std::to_string(i);
            const json& hj = (*phases)[i];
            if (!rd.object(hj, hp, "phase")) continue;
            scenario_phase ph;
            ph.id = rd.id(hj, hp, "id", true);
            const int pk = enum_field(rd, hj, hp, "kind", k_phase_names, true, 4);
            if (pk >= 0) ph.kind = static_cast<phase_kind>(pk);
            ph.title = rd.str(hj, hp, "title", false);
            ph.round = static_cast<int32_t>(rd.integer(hj, hp, "round", false, 0, 1, 1000));
            ph.narration = rd.str(hj, hp, "narration", false);
            if (const json* turns = rd.array(hj, hp, "turns", false)) {
                for (size_t t = 0; t < turns->size(); ++t) {
                    ph.turns.push_back(read_turn(rd, (*turns)[t], hp + "/turns/" + std::to_string(t)));
                }
            }
            read_phase_policy(rd, hj, hp, ph);
            sc.phases.push_back(std::move(ph));
        }
    }
}

void read_probes(reader& rd, const json& root, scenario& sc) {
    const std::string p;  // the root's pointer is ""
    if (const json* probes = rd.array(root, p, "probes", false)) {
        for (size_t i = 0; i < probes->size(); ++i) {
            const std::string qp = "/probes/" + std::to_string(i);
            const json& qj = (*probes)[i];
            if (!rd.object(qj, qp, "probe")) continue;
            scenario_probe q;
            q.id = rd.id(qj, qp, "id", true);
            if (auto it = qj.find("at"); it == qj.end()) {
                rd.error(qp + "/at", "missing required property");
            } else if (rd.object(*it, qp + "/at", "probe_at")) {
                q.at_phase = rd.id(*it, qp + "/at", "phase", true);
                q.at_turn = static_cast<int32_t>(rd.integer(*it, qp + "/at", "turn", false, -1, 0, 100000));
            }
            q.asked_to = rd.id(qj, qp, "asked_to", true);
            q.question = rd.str(qj, qp, "question", true, true);
            q.must_contain = rd.matches(qj, qp, "must_contain");
            q.must_not_reveal = rd.matches(qj, qp, "must_not_reveal");
            q.must_call_tools = rd.strings(qj, qp, "must_call_tools", false);
            q.sources = rd.strings(qj, qp, "sources", false);
            q.fact = rd.id(qj, qp, "fact", false);
            q.note = rd.str(qj, qp, "note", false);
            sc.probes.push_back(std::move(q));
        }
    }
}

void read_budgets(reader& rd, const json& j, scenario_budgets& b) {
    if (!rd.object(j, "/budgets", "budgets")) return;
    b.max_tokens_per_turn = static_cast<int32_t>(
        rd.integer(j, "/budgets", "max_tokens_per_turn", false, b.max_tokens_per_turn, 1, 1 << 20));
    b.max_tokens_per_probe = static_cast<int32_t>(
        rd.integer(j, "/budgets", "max_tokens_per_probe", false, b.max_tokens_per_probe, 1, 1 << 20));
    b.window_tokens =
        static_cast<int32_t>(rd.integer(j, "/budgets", "window_tokens", false, b.window_tokens, 0, 1 << 30));
}

void read_scenario(reader& rd, const json& root, scenario& sc) {
    const std::string p;  // the root's pointer is ""
    if (!rd.object(root, p, "")) return;
    if (root.contains("$schema")) rd.str(root, p, "$schema", false);
    sc.id = rd.id(root, p, "id", true);
    sc.title = rd.str(root, p, "title", true, true);
    sc.description = rd.str(root, p, "description", false);
    sc.language = rd.str(root, p, "language", true, true);
    if (!sc.language.empty()) {
        bool ok = sc.language.size() >= 2 && sc.language[0] >= 'a' && sc.language[0] <= 'z';
        for (char c : sc.language)
            ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-');
        if (!ok) rd.error("/language", "'" + sc.language + "' is not a language tag ('en', 'zh', 'zh-Hans')");
    }
    sc.translation_of = rd.id(root, p, "translation_of", false);
    const int kind = enum_field(rd, root, p, "kind", k_kind_names, true, 0);
    if (kind >= 0) sc.kind = static_cast<scenario_kind>(kind);

    if (auto it = root.find("shared"); it == root.end()) {
        rd.error("/shared", "missing required property");
    } else if (rd.object(*it, "/shared", "shared")) {
        sc.public_script = rd.str(*it, "/shared", "public_script", true, true);
        sc.rules = rd.str(*it, "/shared", "rules", false);
    }

    read_characters(rd, root, sc);
    read_players(rd, root, sc);
    sc.culprit = rd.id(root, p, "culprit", false);
    sc.solution = rd.str(root, p, "solution", false);
    read_cast_mechanics(rd, root, sc);

    read_clues(rd, root, sc);
    read_phases(rd, root, sc);
    read_probes(rd, root, sc);
    if (auto it = root.find("tools"); it != root.end()) read_tools(rd, *it, "/tools", sc.tools);
    if (auto it = root.find("generator"); it != root.end()) {
        sc.generator.emplace();
        read_generator(rd, *it, "/generator", *sc.generator);
    }
    if (auto it = root.find("budgets"); it != root.end()) read_budgets(rd, *it, sc.budgets);
    if (auto it = root.find("runner_text"); it != root.end()) read_runner_text(rd, *it, sc);
}

}  // namespace mnemos::agent::scenario_reader

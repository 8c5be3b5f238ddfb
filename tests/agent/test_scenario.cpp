// Tests for agent/scenario/scenario.h: every file in scenarios/ validates, the schema
// file and the C++ loader accept the same properties, malformed inputs give
// errors that name the field, rendering shares the prefix, and the history
// generator is deterministic and plants every fact exactly once.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "agent/core/runtime.h"
#include "agent/scenario/scenario.h"
#include "tests/agent/scenario_util.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace mnemos::agent;

using namespace mnemos::test_agent;

namespace {

std::vector<fs::path> scenario_files() {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(scenarios_dir())) {
        const auto name = e.path().filename().string();
        if (e.path().extension() == ".json" && name.find(".schema.") == std::string::npos) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

scenario load_ok(const std::string& name) {
    auto r = load_scenario((scenarios_dir() / name).string());
    INFO((r.ok() ? std::string() : r.error().message()));
    REQUIRE(r.ok());
    return std::move(r).value();
}

// The smallest valid mystery; tests break one thing at a time.
json minimal() {
    return json::parse(R"({
      "id": "tiny",
      "title": "Tiny",
      "language": "en",
      "kind": "mystery",
      "shared": {"public_script": "A body in the library.", "rules": "Be brief."},
      "characters": [
        {"id": "gm", "name": "GM", "role": "game_master", "persona": "You run the game."},
        {"id": "cook", "name": "Cook", "role": "npc", "persona": "You cook.", "private_script": "You were in the kitchen at 9.",
         "secrets": ["You burned the toast."], "goals": ["Hide the toast."]},
        {"id": "maid", "name": "Maid", "role": "npc", "persona": "You clean."}
      ],
      "players": [{"id": "det", "name": "Detective"}],
      "culprit": "cook",
      "clues": [{"id": "knife", "text": "A knife.", "available_from": "r1"}],
      "phases": [
        {"id": "intro", "kind": "introduction", "turns": [{"speaker": "gm", "line": "Welcome."}]},
        {"id": "r1", "kind": "investigation", "round": 1,
         "turns": [{"speaker": "det", "to": "cook", "line": "Where were you?"}, {"speaker": "cook", "interactive": true}]},
        {"id": "acc", "kind": "accusation"},
        {"id": "rev", "kind": "reveal"}
      ],
      "probes": [{"id": "p1", "at": {"phase": "r1", "turn": 1}, "asked_to": "maid", "question": "Where was the cook?",
                  "must_contain": [["kitchen", "stove"]], "sources": ["cook"]}]
    })");
}

std::string errors_of(const json& j, const std::string& name = "scenarios/x.json") {
    auto r = parse_scenario(j.dump(2), name);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == mnemos::errc::invalid_argument);
    return r.error().message();
}

bool has(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

size_t count_ci(const std::string& haystack, const std::string& needle) {
    auto lower = [](std::string s) {
        for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    };
    const std::string h = lower(haystack), n = lower(needle);
    size_t count = 0;
    for (size_t pos = h.find(n); pos != std::string::npos; pos = h.find(n, pos + 1)) ++count;
    return count;
}

}  // namespace

// ---------------------------------------------------------------------------
// The files in scenarios/
// ---------------------------------------------------------------------------

TEST_CASE("every scenario file validates", "[scenario]") {
    const auto files = scenario_files();
    REQUIRE(files.size() >= 4);
    std::set<std::string> ids;
    for (const auto& f : files) {
        auto r = load_scenario(f.string());
        INFO(f.string() << "\n" << (r.ok() ? std::string() : r.error().message()));
        REQUIRE(r.ok());
        CHECK(ids.insert(r->id).second);  // scenario ids are unique across the folder
        CHECK(r->source == f.string());
    }
    CHECK(ids.count("mystery_blackwood"));
    CHECK(ids.count("mystery_blackwood.zh"));
    CHECK(ids.count("companion_weeks"));
    CHECK(ids.count("tool_agent_inventory"));
}

TEST_CASE("the schema file lists exactly the properties the loader accepts", "[scenario]") {
    std::ifstream in(scenarios_dir() / "scenario.schema.json");
    REQUIRE(in);
    const json schema = json::parse(in);
    const auto& accepted = scenario_accepted_properties();
    for (const auto& [def, props] : accepted) {
        INFO("schema object '" << def << "'");
        const json& obj = def.empty() ? schema : schema.at("$defs").at(def);
        REQUIRE(obj.contains("properties"));
        CHECK(obj.value("additionalProperties", true) == false);  // closed, like the loader
        std::set<std::string> in_schema, in_cpp(props.begin(), props.end());
        for (const auto& [k, v] : obj["properties"].items()) in_schema.insert(k);
        CHECK(in_schema == in_cpp);
        // Every required property is one the loader reads.
        for (const auto& r : obj.value("required", json::array())) CHECK(in_cpp.count(r.get<std::string>()));
    }
    // And every closed object of the schema is known to the loader.
    for (const auto& [name, def] : schema["$defs"].items()) {
        if (def.value("additionalProperties", true) == false) {
            INFO("$defs/" << name);
            CHECK(accepted.count(name));
        }
    }
}

TEST_CASE("the schema's enums match the loader's names", "[scenario]") {
    std::ifstream in(scenarios_dir() / "scenario.schema.json");
    const json schema = json::parse(in);
    auto names = [](const json& e) {
        std::set<std::string> s;
        for (const auto& v : e) s.insert(v.get<std::string>());
        return s;
    };
    std::set<std::string> kinds, roles, phases;
    for (auto k : {scenario_kind::mystery, scenario_kind::companion, scenario_kind::tool_agent})
        kinds.insert(scenario_kind_name(k));
    for (auto r : {character_role::npc, character_role::game_master, character_role::companion})
        roles.insert(character_role_name(r));
    for (int i = 0; i <= static_cast<int>(phase_kind::history); ++i)
        phases.insert(phase_kind_name(static_cast<phase_kind>(i)));
    CHECK(names(schema["properties"]["kind"]["enum"]) == kinds);
    CHECK(names(schema["$defs"]["character"]["properties"]["role"]["enum"]) == roles);
    CHECK(names(schema["$defs"]["phase"]["properties"]["kind"]["enum"]) == phases);
    CHECK(names(schema["$defs"]["tools"]["properties"]["builtin"]["items"]["enum"]) ==
          std::set<std::string>{"recall", "note", "roll_dice", "clock"});
}

// ---------------------------------------------------------------------------
// Malformed inputs
// ---------------------------------------------------------------------------

TEST_CASE("the minimal scenario parses", "[scenario]") {
    auto r = parse_scenario(minimal().dump(), "tiny.json");
    INFO((r.ok() ? std::string() : r.error().message()));
    REQUIRE(r.ok());
    CHECK(r->characters.size() == 3);
    CHECK(r->find_character("cook")->secrets.size() == 1);
    CHECK(r->probes[0].must_contain == std::vector<text_match>{{"kitchen", "stove"}});
    CHECK(r->phases[1].turns[0].to == "cook");
    CHECK(r->phases[0].turns[0].to == "all");
    CHECK(r->phases[1].turns[1].interactive);
    CHECK(r->budgets.max_tokens_per_turn == 256);  // default
    CHECK_FALSE(r->generator.has_value());
}

TEST_CASE("malformed JSON reports line and column", "[scenario]") {
    const std::string text = "{\n  \"id\": \"x\",\n  \"title\": \"T\",,\n}\n";
    auto r = parse_scenario(text, "scenarios/bad.json");
    REQUIRE_FALSE(r.ok());
    INFO(r.error().message());
    CHECK(has(r.error().message(), "scenarios/bad.json:3:16: malformed JSON"));

    // Columns count code points, so a Chinese line reports where a person would look.
    auto z = parse_scenario("{\"title\": \"谋杀\" x}", "zh.json");
    REQUIRE_FALSE(z.ok());
    INFO(z.error().message());
    CHECK(has(z.error().message(), "zh.json:1:16:"));

    auto e = parse_scenario("", "empty.json");
    REQUIRE_FALSE(e.ok());
    CHECK(has(e.error().message(), "empty.json:1:1: malformed JSON"));
}

TEST_CASE("missing required fields are named", "[scenario]") {
    for (const char* key : {"id", "title", "language", "kind", "shared", "characters", "phases"}) {
        json j = minimal();
        j.erase(key);
        INFO(key);
        CHECK(has(errors_of(j), std::string("scenarios/x.json: /") + key + ": missing required property"));
    }
    json j = minimal();
    j["characters"][2].erase("persona");
    j["probes"][0].erase("question");
    const auto msg = errors_of(j);
    CHECK(has(msg, "/characters/2/persona: missing required property"));
    CHECK(has(msg, "/probes/0/question: missing required property"));  // all errors, not only the first
}

TEST_CASE("wrong types are named with their path", "[scenario]") {
    json j = minimal();
    j["characters"][2]["secrets"] = "not a list";
    j["characters"][1]["goals"] = json::array({"ok", 3});
    j["phases"][1]["round"] = "one";
    j["kind"] = "western";
    j["characters"][0]["role"] = "villain";
    j["probes"][0]["must_contain"] = json::array({json::array()});
    j["budgets"] = {{"max_tokens_per_turn", 0}};
    const auto msg = errors_of(j);
    INFO(msg);
    CHECK(has(msg, "scenarios/x.json: /characters/2/secrets: expected an array of strings"));
    CHECK(has(msg, "/characters/1/goals/1: expected a string"));
    CHECK(has(msg, "/phases/1/round: expected an integer"));
    CHECK(has(msg, "/kind: expected one of: mystery, companion, tool_agent"));
    CHECK(has(msg, "/characters/0/role: expected one of: npc, game_master, companion"));
    CHECK(has(msg, "/probes/0/must_contain/0: expected a string or a non-empty array"));
    CHECK(has(msg, "/budgets/max_tokens_per_turn: 0 is out of range"));

    json root_array = json::array();
    CHECK(has(errors_of(root_array), "scenarios/x.json: /: expected an object"));
}

TEST_CASE("unknown properties and bad ids are errors", "[scenario]") {
    json j = minimal();
    j["characters"][1]["secret"] = "typo";
    j["phases"][0]["turns"][0]["speeker"] = "gm";
    j["characters"][2]["id"] = "Maid Two";
    const auto msg = errors_of(j);
    INFO(msg);
    CHECK(has(msg, "/characters/1/secret: unknown property"));
    CHECK(has(msg, "/phases/0/turns/0/speeker: unknown property"));
    CHECK(has(msg, "/characters/2/id: 'Maid Two' is not a valid id"));
}

TEST_CASE("unknown references are errors", "[scenario]") {
    json j = minimal();
    j["culprit"] = "butler";
    j["clues"][0]["available_from"] = "r9";
    j["clues"][0]["found_by"] = "nobody";
    j["phases"][1]["turns"][0]["to"] = "ghost";
    j["phases"][0]["turns"][0]["speaker"] = "narrator";
    j["probes"][0]["asked_to"] = "det";  // a player, not a character
    j["probes"][0]["at"] = {{"phase", "r1"}, {"turn", 5}};
    j["probes"][0]["must_call_tools"] = {"recall"};
    j["probes"][0]["fact"] = "nope";
    const auto msg = errors_of(j);
    INFO(msg);
    CHECK(has(msg, "/culprit: unknown character 'butler'"));
    CHECK(has(msg, "/clues/0/available_from: unknown phase 'r9'"));
    CHECK(has(msg, "/clues/0/found_by: unknown character or player 'nobody'"));
    CHECK(has(msg, "/phases/1/turns/0/to: unknown character or player 'ghost'"));
    CHECK(has(msg, "/phases/0/turns/0/speaker: unknown character or player 'narrator'"));
    CHECK(has(msg, "/probes/0/asked_to: unknown character 'det'"));
    CHECK(has(msg, "/probes/0/at/turn: 5 is past the end of phase 'r1' (2 turns)"));
    CHECK(has(msg, "/probes/0/must_call_tools/0: tool 'recall' is not in /tools"));
    CHECK(has(msg, "/probes/0/fact: unknown generator fact 'nope'"));
}

TEST_CASE("duplicate ids and a bad culprit are errors", "[scenario]") {
    json j = minimal();
    j["players"][0]["id"] = "maid";  // characters and players share one namespace
    j["clues"].push_back(j["clues"][0]);
    j["phases"][3]["id"] = "acc";
    j["probes"].push_back(j["probes"][0]);
    const auto msg = errors_of(j);
    INFO(msg);
    CHECK(has(msg, "/players/0/id: duplicate character/player id 'maid' (first at /characters/2/id)"));
    CHECK(has(msg, "/clues/1/id: duplicate clue id 'knife'"));
    CHECK(has(msg, "/phases/3/id: duplicate phase id 'acc'"));
    CHECK(has(msg, "/probes/1/id: duplicate probe id 'p1'"));

    json g = minimal();
    g["culprit"] = "gm";
    CHECK(has(errors_of(g), "/culprit: the culprit 'gm' must be an npc, not game_master"));
    json n = minimal();
    n.erase("culprit");
    CHECK(has(errors_of(n), "/culprit: missing: a mystery needs a culprit"));
}

TEST_CASE("turns, phases and tools are checked", "[scenario]") {
    json j = minimal();
    j["phases"][0]["turns"].push_back({{"speaker", "maid"}, {"line", "Hi"}, {"interactive", true}});
    j["phases"][0]["turns"].push_back({{"speaker", "maid"}});
    j["phases"][0]["turns"].push_back({{"speaker", "det"}, {"interactive", true}});  // a scripted player
    j["phases"][0]["turns"].push_back({{"speaker", "maid"}, {"to", "maid"}, {"line", "Me."}});
    j["phases"][1].erase("round");
    j["phases"][2]["round"] = 2;
    std::swap(j["phases"][2], j["phases"][3]);  // reveal before accusation
    j["tools"] = {{"builtin", {"recall", "teleport"}},
                  {"game",
                   {{{"name", "Add Item"}, {"description", "x"}, {"parameters", {{"type", "array"}}}},
                    {{"name", "take"},
                     {"description", "y"},
                     {"parameters", {{"type", "object"}, {"properties", json::object()}, {"required", {"item"}}}}},
                    {{"name", "roll"},  // bounds and patterns are enforced by the grammar, not stripped
                     {"description", "z"},
                     {"parameters",
                      {{"type", "object"},
                       {"properties",
                        {{"n", {{"type", "integer"}, {"minimum", 1}, {"maximum", 6}}},
                         {"tag", {{"type", "string"}, {"pattern", "^[a-z]{2,4}$"}}}}}}}},
                    {{"name", "pick"},
                     {"description", "w"},
                     {"parameters",
                      {{"type", "object"}, {"properties", {{"ids", {{"type", "array"}, {"uniqueItems", true}}}}}}}}}}};
    const auto msg = errors_of(j);
    INFO(msg);
    CHECK(has(msg, "/phases/0/turns/1: a turn has either 'line' or 'interactive', not both"));
    CHECK(has(msg, "/phases/0/turns/2/line: missing: a turn needs 'line' or 'interactive'"));
    CHECK(has(msg, "/phases/0/turns/3/interactive: player 'det' is scripted"));
    CHECK(has(msg, "/phases/0/turns/4/to: a speaker cannot address itself"));
    CHECK(has(msg, "/phases/1/round: missing: an investigation phase needs a round"));
    CHECK(has(msg, "/phases/3/round: only investigation phases have a round"));
    CHECK(has(msg, "/phases/3/kind: accusation is out of order"));
    CHECK(has(msg, "/tools/builtin/1: unknown built-in tool 'teleport'"));
    CHECK(has(msg, "/tools/game/0/name: 'Add Item' is not a tool name"));
    CHECK(has(msg, "/tools/game/0/parameters/type: expected \"object\""));
    CHECK(has(msg, "/tools/game/1/parameters/required/0: 'item' is not in properties"));
    CHECK(!has(msg, "/tools/game/2"));
    CHECK(has(msg, "/tools/game/3/parameters: constrained decoding cannot enforce this schema"));
    CHECK(has(msg, "uniqueItems"));
}

TEST_CASE("generator specs are checked", "[scenario]") {
    json j = minimal();
    j["kind"] = "companion";
    j.erase("culprit");
    j["characters"][1]["role"] = "companion";
    j["phases"] = json::array({{{"id", "days"}, {"kind", "history"}}, {{"id", "later"}, {"kind", "conversation"}}});
    j.erase("clues");
    j["probes"] = json::array({{{"id", "p"},
                                {"at", {{"phase", "days"}, {"turn", 0}}},
                                {"asked_to", "cook"},
                                {"question", "Pet?"},
                                {"must_contain", {"Rex"}},
                                {"fact", "pet"}}});
    j["generator"] = {{"kind", "daily_log"},
                      {"seed", 1},
                      {"phase", "days"},
                      {"speaker", "det"},
                      {"to", "cook"},
                      {"days", 3},
                      {"start_date", "2025-02-30"},
                      {"sentences", {"I walked {where}.", "I saw {who}.", "Bad {brace"}},
                      {"sentences_per_entry", {{"min", 2}, {"max", 5}}},
                      {"slots", {{"where", {"to the park", "past Rex's gate"}}}},
                      {"facts",
                       {{{"id", "pet"}, {"day", 3}, {"text", "My dog is called Rex."}, {"key", "Rex"}},
                        {{"id", "food"}, {"day", 0}, {"text", "I hate olives."}, {"key", "capers"}}}}};
    const auto msg = errors_of(j);
    INFO(msg);
    CHECK(has(msg, "/generator/start_date: '2025-02-30' is not a date"));
    CHECK(has(msg, "/generator/sentences/1: unknown placeholder {who}"));
    CHECK(has(msg, "/generator/sentences/2: unbalanced '{' or '}'"));
    CHECK(has(msg, "/generator/sentences_per_entry/max: more than the 3 sentences"));
    CHECK(has(msg, "/generator/facts/0/day: 3 is not before days (3)"));
    CHECK(has(msg, "/generator/facts/1/key: 'capers' does not appear in the fact's text"));
    CHECK(has(msg, "/generator/slots/where/1: contains fact key 'Rex' (pet)"));
    CHECK(has(msg, "/probes/0/at/turn: the generated phase 'days' has no fixed turns"));
}

TEST_CASE("load_scenario reports a missing file", "[scenario]") {
    auto r = load_scenario((scenarios_dir() / "no_such_scenario.json").string());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == mnemos::errc::not_found);
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

TEST_CASE("the shared prefix is identical for every character and holds nothing private", "[scenario]") {
    for (const auto& f : scenario_files()) {
        auto r = load_scenario(f.string());
        REQUIRE(r.ok());
        const scenario& sc = *r;
        const std::string prefix = shared_prefix_text(sc);
        INFO(f.string());
        CHECK(has(prefix, sc.public_script));
        CHECK(has(prefix, sc.rules));
        for (const auto& c : sc.characters) {
            const std::string sys = character_system_text(sc, c);
            REQUIRE(sys.size() > prefix.size());
            CHECK(sys.compare(0, prefix.size(), prefix) == 0);  // append-only: prefix first, byte-identical
            CHECK(has(sys, c.persona));
            if (!c.private_script.empty()) {
                CHECK(has(sys, c.private_script));
                CHECK_FALSE(has(prefix, c.private_script));
            }
            for (const auto& s : c.secrets) {
                CHECK(has(sys, s));
                CHECK_FALSE(has(prefix, s));
            }
        }
    }
}

TEST_CASE("character_system_text renders like the runtime's character_system_prompt", "[scenario]") {
    // The runner maps a scenario character to agent::character (private_script ->
    // private_knowledge) and registers shared_prefix_text as a shared prefix; the
    // session's system message must then be exactly character_system_text.
    const scenario sc = load_ok("mystery_blackwood.json");
    for (const auto& c : sc.characters) {
        character rc;
        rc.name = c.name;
        rc.persona = c.persona;
        rc.public_knowledge = c.public_knowledge;
        rc.private_knowledge = c.private_script;
        rc.secrets = c.secrets;
        rc.goals = c.goals;
        // A mystery's game master also knows the truth (the solution and the culprits with their roles).
        if (c.role == character_role::game_master)
            rc.private_knowledge += "\n\nThe truth, known only to you until the reveal: " + sc.solution +
                                    "\nCulprit: " + sc.find_character(sc.culprit)->name + " (killer)";
        CHECK(character_system_prompt(rc, shared_prefix_text(sc)) == character_system_text(sc, c));
    }
}

// ---------------------------------------------------------------------------
// The mystery
// ---------------------------------------------------------------------------

// The lines spoken before a probe is asked, in order.
std::vector<const scripted_turn*> transcript_before(const scenario& sc, const scenario_probe& p) {
    std::vector<const scripted_turn*> out;
    for (const auto& ph : sc.phases) {
        const bool here = ph.id == p.at_phase;
        const size_t n = here && p.at_turn >= 0 ? static_cast<size_t>(p.at_turn) : ph.turns.size();
        for (size_t i = 0; i < n; ++i) out.push_back(&ph.turns[i]);
        if (here) break;
    }
    return out;
}

TEST_CASE("blackwood: a full cast with long private scripts and three rounds of clues", "[scenario]") {
    const scenario sc = load_ok("mystery_blackwood.json");
    CHECK(sc.kind == scenario_kind::mystery);
    int n_npc = 0, n_gm = 0;
    size_t private_chars = 0;
    for (const auto& c : sc.characters) {
        n_npc += c.role == character_role::npc;
        n_gm += c.role == character_role::game_master;
        if (c.role != character_role::npc) continue;
        const auto words = std::count(c.private_script.begin(), c.private_script.end(), ' ');
        INFO(c.id << ": " << words << " words");
        CHECK(words >= 550);
        CHECK(words <= 1600);
        CHECK_FALSE(c.secrets.empty());
        private_chars += c.private_script.size();
    }
    CHECK(n_npc == 5);
    CHECK(n_gm == 1);
    CHECK(private_chars / 4 >= 3000);  // several thousand tokens across the cast
    CHECK(sc.find_character(sc.culprit)->role == character_role::npc);
    std::set<int32_t> rounds;
    for (const auto& k : sc.clues) rounds.insert(sc.find_phase(k.available_from)->round);
    CHECK(rounds == std::set<int32_t>{1, 2, 3});
}

TEST_CASE("mystery probes ask for facts other characters stated earlier", "[scenario]") {
    for (const char* name : {"mystery_blackwood.json", "mystery_blackwood.zh.json"}) {
        const scenario sc = load_ok(name);
        int n_needles = 0, n_secret = 0;
        for (const auto& p : sc.probes) {
            INFO(name << " probe " << p.id);
            if (!p.must_not_reveal.empty()) {
                ++n_secret;
                // A secret probe guards words that are in the character's secrets or script.
                const auto* c = sc.find_character(p.asked_to);
                std::string secret_text = c->private_script;
                for (const auto& s : c->secrets) secret_text += "\n" + s;
                bool any = false;
                for (const auto& item : p.must_not_reveal) {
                    for (const auto& alt : item) any = any || count_ci(secret_text, alt) > 0;
                }
                CHECK(any);
            }
            if (p.sources.empty() || p.must_contain.empty()) continue;
            ++n_needles;
            CHECK(std::find(p.sources.begin(), p.sources.end(), p.asked_to) ==
                  p.sources.end());  // someone else said it
            const auto lines = transcript_before(sc, p);
            for (const auto& item : p.must_contain) {
                bool said = false;
                for (const auto* t : lines) {
                    if (std::find(p.sources.begin(), p.sources.end(), t->speaker) == p.sources.end()) continue;
                    for (const auto& alt : item) said = said || count_ci(t->line, alt) > 0;
                }
                INFO("item " << item.front());
                CHECK(said);  // the needle really is in the transcript before the probe
            }
        }
        CHECK(n_needles >= 8);
        CHECK(n_secret >= 5);
    }
}

TEST_CASE("the Chinese mystery translates the English one id for id", "[scenario]") {
    const scenario en = load_ok("mystery_blackwood.json");
    const scenario zh = load_ok("mystery_blackwood.zh.json");
    CHECK(zh.language == "zh");
    CHECK(zh.translation_of == en.id);
    CHECK(zh.culprit == en.culprit);
    auto ids = [](const auto& v) {
        std::vector<std::string> r;
        for (const auto& x : v) r.push_back(x.id);
        return r;
    };
    CHECK(ids(zh.characters) == ids(en.characters));
    CHECK(ids(zh.clues) == ids(en.clues));
    CHECK(ids(zh.phases) == ids(en.phases));
    CHECK(ids(zh.probes) == ids(en.probes));
    for (size_t i = 0; i < zh.phases.size(); ++i) CHECK(zh.phases[i].turns.size() == en.phases[i].turns.size());
}

// ---------------------------------------------------------------------------
// Generated history
// ---------------------------------------------------------------------------

std::string joined(const std::vector<scripted_turn>& turns) {
    std::string s;
    for (const auto& t : turns) s += t.line + "\n";
    return s;
}

TEST_CASE("generate_history is deterministic and seed-dependent", "[scenario]") {
    const scenario sc = load_ok("companion_weeks.json");
    REQUIRE(sc.generator.has_value());
    const auto a = generate_history(sc, sc.generator->seed);
    const auto b = generate_history(sc, sc.generator->seed);
    const auto c = generate_history(sc, sc.generator->seed + 1);
    REQUIRE(!a.empty());
    CHECK(joined(a) == joined(b));
    CHECK(a.size() == b.size());
    CHECK(joined(a) != joined(c));
    // Days run in order from 0 to days-1; entries alternate with replies.
    CHECK(a.front().day == 0);
    CHECK(a.back().day == sc.generator->days - 1);
    for (size_t i = 1; i < a.size(); ++i) CHECK(a[i].day >= a[i - 1].day);
    CHECK(a.front().speaker == sc.generator->speaker);
    CHECK(a.front().to == sc.generator->to);
    CHECK(has(a.front().line, "[Monday, 3 March 2025]"));  // start_date 2025-03-03 is a Monday

    scenario none = sc;
    none.generator.reset();
    CHECK(generate_history(none, 1).empty());
}

TEST_CASE("generated histories plant every fact exactly once and are long", "[scenario]") {
    for (const char* name : {"companion_weeks.json", "tool_agent_inventory.json"}) {
        const scenario sc = load_ok(name);
        REQUIRE(sc.generator.has_value());
        for (uint64_t seed : {sc.generator->seed, uint64_t{1}, uint64_t{0xdeadbeef}}) {
            const auto turns = generate_history(sc, seed);
            const std::string all = joined(turns);
            INFO(name << " seed " << seed);
            for (const auto& f : sc.generator->facts) {
                INFO("fact " << f.id);
                CHECK(count_ci(all, f.text) == 1);
                CHECK(count_ci(all, f.key) == 1);
                int planted = 0;
                for (const auto& t : turns) {
                    if (t.fact != f.id) continue;
                    ++planted;
                    CHECK(t.day == f.day);
                    CHECK(t.speaker == sc.generator->speaker);
                    CHECK(has(t.line, f.text));
                }
                CHECK(planted == 1);
            }
            // Probes on planted facts look for the key, which exists only in the planted line.
            for (const auto& p : sc.probes) {
                if (p.fact.empty()) continue;
                INFO("probe " << p.id);
                for (const auto& item : p.must_contain) {
                    size_t hits = 0;
                    for (const auto& alt : item) hits += count_ci(all, alt);
                    CHECK(hits >= 1);
                }
            }
            if (sc.kind == scenario_kind::companion) {
                const size_t words = static_cast<size_t>(std::count(all.begin(), all.end(), ' '));
                INFO(all.size() / 4 << " tokens (chars/4), " << words << " words");
                CHECK(all.size() / 4 >= 20000);
                CHECK(sc.generator->days >= 28);  // multi-week
            }
        }
    }
}

TEST_CASE("companion probes come weeks after the facts", "[scenario]") {
    const scenario sc = load_ok("companion_weeks.json");
    int n = 0;
    for (const auto& p : sc.probes) {
        if (p.fact.empty()) continue;
        ++n;
        const auto* ph = sc.find_phase(p.at_phase);
        REQUIRE(ph);
        CHECK(ph->id != sc.generator->phase);  // asked after the whole history
        const auto it = std::find_if(sc.generator->facts.begin(), sc.generator->facts.end(),
                                     [&](const auto& f) { return f.id == p.fact; });
        REQUIRE(it != sc.generator->facts.end());
        CHECK(sc.generator->days - it->day >= 14);  // at least two weeks old
    }
    CHECK(n >= 6);
}

TEST_CASE("tool agent: game tools, recall probes and a short window", "[scenario]") {
    const scenario sc = load_ok("tool_agent_inventory.json");
    CHECK(sc.kind == scenario_kind::tool_agent);
    for (const char* t : {"add_item", "remove_item", "list_inventory", "recall", "note"}) CHECK(sc.tools.allows(t));
    CHECK_FALSE(sc.tools.allows("teleport"));
    CHECK(sc.budgets.window_tokens > 0);
    for (const auto& g : sc.tools.game) {
        const json params = json::parse(g.parameters_json);
        CHECK(params["type"] == "object");
    }
    int n_recall = 0;
    for (const auto& p : sc.probes)
        n_recall += std::count(p.must_call_tools.begin(), p.must_call_tools.end(), "recall");
    CHECK(n_recall >= 3);
    // The history the probes reach back over is longer than the window.
    const auto turns = generate_history(sc, sc.generator->seed);
    CHECK(joined(turns).size() / 4 > static_cast<size_t>(sc.budgets.window_tokens) * 3);
}

// ---------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------

TEST_CASE("score_probe matches alternatives case-insensitively", "[scenario]") {
    scenario_probe p;
    p.must_contain = {{"9:40", "twenty to ten"}, {"greenhouse", "glasshouse"}};
    p.must_not_reveal = {{"Haskins"}};
    p.must_call_tools = {"recall"};
    auto s = score_probe(p, "He said he left the GLASSHOUSE at twenty to ten.", {"recall"});
    CHECK(s.passed);
    s = score_probe(p, "He left the glasshouse at ten.", {});
    CHECK_FALSE(s.passed);
    CHECK(s.missing == std::vector<std::string>{"9:40 | twenty to ten"});
    CHECK(s.tools_missing == std::vector<std::string>{"recall"});
    s = score_probe(p, "At 9:40 he left the glasshouse to meet mr haskins.", {"recall"});
    CHECK_FALSE(s.passed);
    CHECK(s.revealed == std::vector<std::string>{"Haskins"});
}

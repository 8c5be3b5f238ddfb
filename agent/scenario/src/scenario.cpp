// Scenario loading and rendering (agent/scenario/scenario.h): parse_scenario
// composes the reader (agent/scenario/reader.h: JSON -> structs, structural
// problems) and the checks (agent/scenario/checks.h: cross-references); every
// problem is collected, then all are returned joined. Validation is written out
// in C++ against the structure of scenarios/scenario.schema.json (no general
// JSON Schema validator); the reader's table of accepted properties keeps the
// two in step (tests compare it with the schema file).
#include "agent/scenario/scenario.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/core/runtime.h"
#include "agent/scenario/checks.h"
#include "agent/scenario/reader.h"
#include "agent/scenario/runner_text.h"
#include "tools/json_limits.h"

namespace mnemos::agent {

namespace {

using json = nlohmann::json;

// "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error ..." -> "syntax error ...".
std::string parse_error_detail(const std::string& what) {
    const size_t col = what.find("column ");
    if (col != std::string::npos) {
        const size_t colon = what.find(": ", col);
        if (colon != std::string::npos) return what.substr(colon + 2);
    }
    const size_t bracket = what.find("] ");
    return bracket == std::string::npos ? what : what.substr(bracket + 2);
}

}  // namespace

const char* scenario_kind_name(scenario_kind k) { return scenario_reader::k_kind_names[static_cast<int>(k)]; }
const char* character_role_name(character_role r) { return scenario_reader::k_role_names[static_cast<int>(r)]; }
const char* phase_kind_name(phase_kind k) { return scenario_reader::k_phase_names[static_cast<int>(k)]; }
const char* culprit_role_name(culprit_role r) { return scenario_reader::k_culprit_role_names[static_cast<int>(r)]; }
const char* turn_action_name(turn_action a) { return scenario_reader::k_action_names[static_cast<int>(a)]; }
const char* turn_policy_name(turn_policy p) { return scenario_reader::k_policy_names[static_cast<int>(p)]; }

bool scenario_tools::allows(std::string_view name) const {
    if (std::find(builtin.begin(), builtin.end(), name) != builtin.end()) return true;
    return std::any_of(game.begin(), game.end(), [&](const game_tool& t) { return t.name == name; });
}

const scenario_character* scenario::find_character(std::string_view id) const {
    for (const auto& c : characters) {
        if (c.id == id) return &c;
    }
    return nullptr;
}
const scenario_player* scenario::find_player(std::string_view id) const {
    for (const auto& p : players) {
        if (p.id == id) return &p;
    }
    return nullptr;
}
const scenario_phase* scenario::find_phase(std::string_view id) const {
    for (const auto& p : phases) {
        if (p.id == id) return &p;
    }
    return nullptr;
}
const scenario_clue* scenario::find_clue(std::string_view id) const {
    for (const auto& c : clues) {
        if (c.id == id) return &c;
    }
    return nullptr;
}

const scenario_suspect* scenario::find_suspect(std::string_view id) const {
    for (const auto& s : suspects) {
        if (s.id == id) return &s;
    }
    return nullptr;
}
const scenario_location* scenario::find_location(std::string_view id) const {
    for (const auto& l : locations) {
        if (l.id == id) return &l;
    }
    return nullptr;
}
std::string scenario::game_master() const {
    for (const auto& c : characters) {
        if (c.role == character_role::game_master) return c.id;
    }
    return {};
}

const std::map<std::string, std::vector<std::string>>& scenario_accepted_properties() {
    return scenario_reader::accepted_properties();
}

result<scenario> parse_scenario(std::string_view json_text, std::string_view source_name) {
    const std::string source(source_name);
    if (tools::json_too_deep(json_text))
        return make_error(errc::invalid_argument, source + ": " + tools::json_depth_message());
    json root;
    try {
        root = json::parse(json_text.begin(), json_text.end());
    } catch (const json::parse_error& e) {
        // e.byte: 1-based offset of the byte the parser stopped at.
        const size_t end = std::min(e.byte == 0 ? size_t{0} : e.byte - 1, json_text.size());
        size_t line = 1, column = 1;
        for (size_t i = 0; i < end; ++i) {
            const unsigned char c = static_cast<unsigned char>(json_text[i]);
            if (c == '\n') {
                ++line;
                column = 1;
            } else if ((c & 0xC0) != 0x80) {
                ++column;  // count UTF-8 code points, not continuation bytes
            }
        }
        return make_error(errc::invalid_argument, source + ":" + std::to_string(line) + ":" + std::to_string(column) +
                                                      ": malformed JSON: " + parse_error_detail(e.what()));
    } catch (const json::exception& e) {
        return make_error(errc::invalid_argument, source + ": malformed JSON: " + std::string(e.what()));
    }

    scenario_reader::reader rd(source);
    scenario sc;
    sc.source = source;
    scenario_reader::read_scenario(rd, root, sc);
    if (root.is_object()) scenario_checks::check_references(rd, sc);
    if (!rd.errors().empty()) {
        std::string msg;
        for (const auto& e : rd.errors()) msg += (msg.empty() ? "" : "\n") + e;
        return make_error(errc::invalid_argument, msg);
    }
    return sc;
}

result<scenario> load_scenario(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return make_error(errc::not_found, "no scenario file '" + path + "'");
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(errc::io_error, "cannot open scenario file '" + path + "'");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return make_error(errc::io_error, "reading scenario file '" + path + "' failed");
    return parse_scenario(ss.str(), path);
}

std::string shared_prefix_text(const scenario& sc) {
    std::string s = "# " + sc.title + "\n\n" + sc.public_script;
    if (!sc.rules.empty()) s += "\n\n" + runner_text(sc, runner_text_key::rules_heading) + "\n\n" + sc.rules;
    return s;
}

std::string character_system_text(const scenario& sc, const scenario_character& c) {
    // The runtime's layout, so a scenario character renders exactly like a server-side one.
    return character_system_prompt(runtime_character(sc, c), shared_prefix_text(sc));
}

std::string culprit_role_text(const scenario& sc, culprit_role r) {
    return runner_text(sc, r == culprit_role::killer       ? runner_text_key::killer
                           : r == culprit_role::accomplice ? runner_text_key::accomplice
                                                           : runner_text_key::mastermind);
}

character runtime_character(const scenario_character& c) {
    character rc;
    rc.name = c.name;
    rc.persona = c.persona;
    rc.public_knowledge = c.public_knowledge;
    rc.private_knowledge = c.private_script;
    rc.secrets = c.secrets;
    rc.goals = c.goals;
    return rc;
}

character runtime_character(const scenario& sc, const scenario_character& c) {
    character rc = runtime_character(c);
    rc.labels.you_are = runner_text(sc, runner_text_key::you_are, {{"name", "{name}"}});
    rc.labels.secrets = runner_text(sc, runner_text_key::secrets_heading);
    rc.labels.goals = runner_text(sc, runner_text_key::goals_heading);
    rc.labels.public_knowledge = runner_text(sc, runner_text_key::public_heading);
    rc.labels.private_knowledge = runner_text(sc, runner_text_key::private_heading);
    if (sc.kind != scenario_kind::mystery || c.role != character_role::game_master || sc.solution.empty()) return rc;
    std::string truth = runner_text(sc, runner_text_key::truth, {{"solution", sc.solution}});
    for (const auto& k : sc.culprits) {
        const std::string name = sc.find_character(k.id) ? sc.find_character(k.id)->name
                                 : sc.find_player(k.id)  ? sc.find_player(k.id)->name
                                 : sc.find_suspect(k.id) ? sc.find_suspect(k.id)->name
                                                         : k.id;
        truth += "\n" + runner_text(sc, runner_text_key::culprit_line,
                                    {{"name", name}, {"role", culprit_role_text(sc, k.role)}});
    }
    rc.private_knowledge += (rc.private_knowledge.empty() ? "" : "\n\n") + truth;
    return rc;
}

}  // namespace mnemos::agent

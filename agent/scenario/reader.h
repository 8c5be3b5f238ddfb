#pragma once
// The scenario reader: JSON -> struct scenario, structurally checked against
// scenarios/scenario.schema.json (types, required properties, ranges, unknown
// properties), every problem collected as "<source>: <json pointer>: <what>".
// Cross-references are checked afterwards on the structs (agent/scenario/checks.h).
// Internals of agent/scenario (parse_scenario composes them), public for its tests.
#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/scenario/scenario.h"

namespace mnemos::agent::scenario_reader {

using json = nlohmann::json;

// Stop after this many problems: past it they are usually one mistake repeated.
inline constexpr size_t k_max_errors = 100;

// Property names per schema object ("" is the top level, else the schema's $defs name). Must match the
// "properties" of the same object in scenarios/scenario.schema.json.
const std::map<std::string, std::vector<std::string>>& accepted_properties();

inline constexpr const char* k_kind_names[] = {"mystery", "companion", "tool_agent"};
inline constexpr const char* k_role_names[] = {"npc", "game_master", "companion"};
inline constexpr const char* k_phase_names[] = {"introduction", "investigation", "accusation", "reveal",
                                                "conversation", "task",          "history"};
inline constexpr const char* k_mode_names[] = {"scripted", "interactive"};
inline constexpr const char* k_culprit_role_names[] = {"killer", "accomplice", "mastermind"};
inline constexpr const char* k_action_names[] = {"talk", "investigate", "ask", "vote"};
inline constexpr const char* k_policy_names[] = {"scripted", "round_robin", "directed"};
inline constexpr const char* k_reveal_names[] = {"finder", "all"};

// Collects problems and reads typed fields, reporting what is wrong with each.
class reader {
  public:
    explicit reader(std::string source) : source_(std::move(source)) {}

    // Records "<source>: <path or '/'>: <what>" (at most k_max_errors, then one "too many errors").
    void error(const std::string& path, const std::string& what);
    const std::vector<std::string>& errors() const { return errors_; }

    // True when j is an object; reports unknown properties (def names accepted_properties()'s entry).
    bool object(const json& j, const std::string& path, const char* def);
    // A string field. required: missing is an error; non_empty: "" is an error.
    std::string str(const json& obj, const std::string& path, const char* key, bool required, bool non_empty = false);
    // An id field (scenario_text::valid_id).
    std::string id(const json& obj, const std::string& path, const char* key, bool required);
    // An integer field within [lo, hi]; missing: def (or an error when required).
    int64_t integer(const json& obj, const std::string& path, const char* key, bool required, int64_t def, int64_t lo,
                    int64_t hi);
    // An array of strings; each element non-empty when non_empty.
    std::vector<std::string> strings(const json& obj, const std::string& path, const char* key, bool required,
                                     bool non_empty = true);
    // An array of text matches: each a non-empty string or a non-empty array of them.
    std::vector<text_match> matches(const json& obj, const std::string& path, const char* key);
    // The array at key (or nullptr, reporting when it is not an array / missing and required).
    const json* array(const json& obj, const std::string& path, const char* key, bool required);

    static std::string join(const std::vector<std::string>& v);

  private:
    std::string source_;
    std::vector<std::string> errors_;
};

// An enum field: the index of the value in names, or -1 (reported); missing: def (or an error when required).
template <size_t N>
int enum_field(reader& rd, const json& obj, const std::string& path, const char* key, const char* const (&names)[N],
               bool required, int def) {
    auto it = obj.find(key);
    if (it == obj.end()) {
        if (required) rd.error(path + "/" + key, "missing required property");
        return def;
    }
    std::string allowed;
    for (const char* n : names) allowed += (allowed.empty() ? "" : ", ") + std::string(n);
    if (it->is_string()) {
        for (size_t i = 0; i < N; ++i) {
            if (*it == names[i]) return static_cast<int>(i);
        }
    }
    rd.error(path + "/" + key, "expected one of: " + allowed);
    return -1;
}

// One section each; p is the section's JSON pointer.
scripted_turn read_turn(reader& rd, const json& j, const std::string& p);
void read_generator(reader& rd, const json& j, const std::string& p, history_generator& g);
void read_tools(reader& rd, const json& j, const std::string& p, scenario_tools& tools);
void read_characters(reader& rd, const json& root, scenario& sc);
void read_players(reader& rd, const json& root, scenario& sc);
void read_clues(reader& rd, const json& root, scenario& sc);
void read_phases(reader& rd, const json& root, scenario& sc);
void read_probes(reader& rd, const json& root, scenario& sc);
void read_budgets(reader& rd, const json& j, scenario_budgets& b);
// The game mechanics' fields (reader_mechanics.cpp): a clue's target, reveal_to and trigger; a phase's act and turn
// policy; a turn's action and target; the top level's culprits, suspects and locations.
void read_clue_mechanics(reader& rd, const json& j, const std::string& p, scenario_clue& k);
void read_phase_policy(reader& rd, const json& j, const std::string& p, scenario_phase& ph);
void read_turn_action(reader& rd, const json& j, const std::string& p, scripted_turn& t);
void read_cast_mechanics(reader& rd, const json& root, scenario& sc);
// "runner_text": known keys only, string values, only the placeholders each key fills.
void read_runner_text(reader& rd, const json& j, scenario& sc);

// Reads every field of the document; reports structural problems.
void read_scenario(reader& rd, const json& root, scenario& sc);

}  // namespace mnemos::agent::scenario_reader

// Scenario loading, validation, rendering, history generation and scoring
// (agent/scenario.h). Validation is written out in C++ against the structure
// of scenarios/scenario.schema.json (no general JSON Schema validator); the
// table k_accepted below is what keeps the two in step (tests compare it with
// the schema file). Every problem is collected, then all are returned joined.
#include "agent/scenario/scenario.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "agent/core/runtime.h"
#include "tools/json_limits.h"

namespace mnemos::agent {

namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

constexpr const char* k_builtin_tools[] = {"recall", "note", "roll_dice", "clock"};
constexpr const char* k_generator_builtins[] = {"weekday", "date", "day", "week"};
// Stop after this many problems: past it they are usually one mistake repeated.
constexpr size_t k_max_errors = 100;

// Property names per schema object ("" is the top level). Must match the
// "properties" of the same object in scenarios/scenario.schema.json.
const std::map<std::string, std::vector<std::string>> k_accepted = {
    {"",
     {"$schema", "id", "title", "description", "language", "translation_of", "kind", "shared", "characters", "players",
      "culprit", "solution", "clues", "phases", "probes", "tools", "generator", "budgets"}},
    {"shared", {"public_script", "rules"}},
    {"character", {"id", "name", "role", "persona", "public_knowledge", "private_script", "secrets", "goals"}},
    {"player", {"id", "name", "description", "mode"}},
    {"clue", {"id", "title", "text", "available_from", "found_by", "visible_to"}},
    {"phase", {"id", "kind", "title", "round", "narration", "turns"}},
    {"turn", {"speaker", "to", "line", "interactive", "expect_tools"}},
    {"probe",
     {"id", "at", "asked_to", "question", "must_contain", "must_not_reveal", "must_call_tools", "sources", "fact",
      "note"}},
    {"probe_at", {"phase", "turn"}},
    {"tools", {"builtin", "game"}},
    {"game_tool", {"name", "description", "parameters"}},
    {"int_range", {"min", "max"}},
    {"generator",
     {"kind", "seed", "phase", "speaker", "to", "days", "start_date", "entries_per_day", "sentences_per_entry",
      "sentences", "replies", "slots", "facts"}},
    {"generator_fact", {"id", "day", "text", "key"}},
    {"budgets", {"max_tokens_per_turn", "max_tokens_per_probe", "window_tokens"}},
};

std::string lower_ascii(std::string_view s) {
    std::string r(s);
    for (char& c : r) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return r;
}

bool contains_ci(std::string_view haystack, std::string_view needle) {
    return lower_ascii(haystack).find(lower_ascii(needle)) != std::string::npos;
}

// JSON pointer escaping of one reference token (RFC 6901).
std::string pointer_token(std::string_view key) {
    std::string r;
    for (char c : key) {
        if (c == '~')
            r += "~0";
        else if (c == '/')
            r += "~1";
        else
            r += c;
    }
    return r;
}

bool valid_id(std::string_view s) {
    if (s.empty()) return false;
    auto ok_first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!ok_first(s[0])) return false;
    for (char c : s) {
        if (!ok_first(c) && c != '_' && c != '-' && c != '.') return false;
    }
    return true;
}

// Civil date arithmetic (H. Hinnant's days_from_civil / civil_from_days).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = static_cast<int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
}

// Parses YYYY-MM-DD into days since 1970-01-01; false when not a real date.
bool parse_date(std::string_view s, int64_t& days) {
    if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
    auto num = [&](size_t pos, size_t n, int64_t& out) {
        out = 0;
        for (size_t i = pos; i < pos + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    int64_t y = 0, m = 0, d = 0;
    if (!num(0, 4, y) || !num(5, 2, m) || !num(8, 2, d)) return false;
    if (m < 1 || m > 12 || d < 1 || d > 31) return false;
    days = days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
    int64_t y2 = 0;
    unsigned m2 = 0, d2 = 0;
    civil_from_days(days, y2, m2, d2);
    return y2 == y && m2 == m && d2 == d;  // rejects 2025-02-30
}

// Placeholder names in a template ("{weather}" -> "weather"); false on an unclosed brace.
bool placeholders(std::string_view t, std::vector<std::string>& out) {
    for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] == '{') {
            const size_t j = t.find('}', i + 1);
            if (j == std::string_view::npos) return false;
            out.emplace_back(t.substr(i + 1, j - i - 1));
            i = j;
        } else if (t[i] == '}') {
            return false;
        }
    }
    return true;
}

// ---------------------------------------------------------------------------
// Structural reading: json -> structs, collecting errors
// ---------------------------------------------------------------------------

class reader {
  public:
    explicit reader(std::string source) : source_(std::move(source)) {}

    void error(const std::string& path, const std::string& what) {
        if (errors_.size() < k_max_errors)
            errors_.push_back(source_ + ": " + (path.empty() ? "/" : path) + ": " + what);
        else if (errors_.size() == k_max_errors)
            errors_.push_back(source_ + ": too many errors; stopping here");
    }
    const std::vector<std::string>& errors() const { return errors_; }

    // True when j is an object; reports unknown properties (def names k_accepted's entry).
    bool object(const json& j, const std::string& path, const char* def) {
        if (!j.is_object()) {
            error(path, "expected an object");
            return false;
        }
        const auto& accepted = k_accepted.at(def);
        for (const auto& [key, value] : j.items()) {
            (void)value;
            if (std::find(accepted.begin(), accepted.end(), key) == accepted.end()) {
                error(path + "/" + pointer_token(key), "unknown property (accepted: " + join(accepted) + ")");
            }
        }
        return true;
    }

    // A string field. required: missing is an error; non_empty: "" is an error.
    std::string str(const json& obj, const std::string& path, const char* key, bool required, bool non_empty = false) {
        auto it = obj.find(key);
        const std::string p = path + "/" + key;
        if (it == obj.end()) {
            if (required) error(p, "missing required property");
            return {};
        }
        if (!it->is_string()) {
            error(p, "expected a string");
            return {};
        }
        std::string s = it->get<std::string>();
        if (non_empty && s.empty()) error(p, "must not be empty");
        return s;
    }

    // An id field (see valid_id).
    std::string id(const json& obj, const std::string& path, const char* key, bool required) {
        std::string s = str(obj, path, key, required);
        if (obj.contains(key) && obj.at(key).is_string() && !valid_id(s)) {
            error(path + "/" + key, "'" + s + "' is not a valid id (lower-case letters, digits, '_', '-', '.')");
        }
        return s;
    }

    // An integer field within [lo, hi]; missing: def (or an error when required).
    int64_t integer(const json& obj, const std::string& path, const char* key, bool required, int64_t def, int64_t lo,
                    int64_t hi) {
        auto it = obj.find(key);
        const std::string p = path + "/" + key;
        if (it == obj.end()) {
            if (required) error(p, "missing required property");
            return def;
        }
        if (!it->is_number_integer()) {
            error(p, "expected an integer");
            return def;
        }
        if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
            error(p, "out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
            return def;
        }
        const int64_t v = it->get<int64_t>();
        if (v < lo || v > hi) {
            error(p, std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
            return def;
        }
        return v;
    }

    // An array of strings; each element non-empty when non_empty.
    std::vector<std::string> strings(const json& obj, const std::string& path, const char* key, bool required,
                                     bool non_empty = true) {
        std::vector<std::string> out;
        auto it = obj.find(key);
        const std::string p = path + "/" + key;
        if (it == obj.end()) {
            if (required) error(p, "missing required property");
            return out;
        }
        if (!it->is_array()) {
            error(p, "expected an array of strings");
            return out;
        }
        for (size_t i = 0; i < it->size(); ++i) {
            const json& e = (*it)[i];
            if (!e.is_string()) {
                error(p + "/" + std::to_string(i), "expected a string");
                continue;
            }
            if (non_empty && e.get_ref<const std::string&>().empty())
                error(p + "/" + std::to_string(i), "must not be empty");
            out.push_back(e.get<std::string>());
        }
        return out;
    }

    // An array of text matches: each a non-empty string or a non-empty array of them.
    std::vector<text_match> matches(const json& obj, const std::string& path, const char* key) {
        std::vector<text_match> out;
        auto it = obj.find(key);
        const std::string p = path + "/" + key;
        if (it == obj.end()) return out;
        if (!it->is_array()) {
            error(p, "expected an array of strings or arrays of alternative strings");
            return out;
        }
        for (size_t i = 0; i < it->size(); ++i) {
            const json& e = (*it)[i];
            const std::string pi = p + "/" + std::to_string(i);
            text_match m;
            if (e.is_string()) {
                m.push_back(e.get<std::string>());
            } else if (e.is_array() && !e.empty()) {
                for (size_t k = 0; k < e.size(); ++k) {
                    if (!e[k].is_string())
                        error(pi + "/" + std::to_string(k), "expected a string");
                    else
                        m.push_back(e[k].get<std::string>());
                }
            } else {
                error(pi, "expected a string or a non-empty array of alternative strings");
                continue;
            }
            bool empty_alt = false;
            for (const auto& s : m) empty_alt = empty_alt || s.empty();
            if (empty_alt) error(pi, "must not be empty");
            if (!m.empty()) out.push_back(std::move(m));
        }
        return out;
    }

    // The array at key (or nullptr, reporting when it is not an array / missing and required).
    const json* array(const json& obj, const std::string& path, const char* key, bool required) {
        auto it = obj.find(key);
        if (it == obj.end()) {
            if (required) error(path + "/" + key, "missing required property");
            return nullptr;
        }
        if (!it->is_array()) {
            error(path + "/" + key, "expected an array");
            return nullptr;
        }
        return &*it;
    }

    static std::string join(const std::vector<std::string>& v) {
        std::string r;
        for (const auto& s : v) r += (r.empty() ? "" : ", ") + s;
        return r;
    }

  private:
    std::string source_;
    std::vector<std::string> errors_;
};

// An enum field: the index of the value in names, or -1 (reported).
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

constexpr const char* k_kind_names[] = {"mystery", "companion", "tool_agent"};
constexpr const char* k_role_names[] = {"npc", "game_master", "companion"};
constexpr const char* k_phase_names[] = {"introduction", "investigation", "accusation", "reveal",
                                         "conversation", "task",          "history"};
constexpr const char* k_mode_names[] = {"scripted", "interactive"};

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
    if (!has_line && !j.contains("interactive")) rd.error(p + "/line", "missing: a turn needs 'line' or 'interactive'");
    t.expect_tools = rd.strings(j, p, "expect_tools", false);
    return t;
}

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

void read_tools(reader& rd, const json& j, const std::string& p, scenario_tools& tools) {
    if (!rd.object(j, p, "tools")) return;
    tools.builtin = rd.strings(j, p, "builtin", false);
    for (size_t i = 0; i < tools.builtin.size(); ++i) {
        const auto& b = tools.builtin[i];
        if (std::find_if(std::begin(k_builtin_tools), std::end(k_builtin_tools),
                         [&](const char* n) { return b == n; }) == std::end(k_builtin_tools)) {
            rd.error(p + "/builtin/" + std::to_string(i),
                     "unknown built-in tool '" + b + "' (expected one of: recall, note, roll_dice, clock)");
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
        auto it = gj.find("parameters");
        if (it == gj.end()) {
            rd.error(gp + "/parameters", "missing required property");
        } else if (!it->is_object()) {
            rd.error(gp + "/parameters", "expected a JSON Schema object");
        } else {
            const json& s = *it;
            if (!s.contains("type") || s["type"] != "object") rd.error(gp + "/parameters/type", "expected \"object\"");
            if (s.contains("properties") && !s["properties"].is_object()) {
                rd.error(gp + "/parameters/properties", "expected an object");
            }
            if (s.contains("required")) {
                const json& req = s["required"];
                if (!req.is_array()) {
                    rd.error(gp + "/parameters/required", "expected an array of strings");
                } else {
                    for (size_t k = 0; k < req.size(); ++k) {
                        const std::string rp = gp + "/parameters/required/" + std::to_string(k);
                        if (!req[k].is_string())
                            rd.error(rp, "expected a string");
                        else if (!s.contains("properties") || !s["properties"].is_object() ||
                                 !s["properties"].contains(req[k].get<std::string>())) {
                            rd.error(rp, "'" + req[k].get<std::string>() + "' is not in properties");
                        }
                    }
                }
            }
            t.parameters_json = s.dump();
        }
        tools.game.push_back(std::move(t));
    }
}

// Reads every field; reports structural problems.
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

    sc.culprit = rd.id(root, p, "culprit", false);
    sc.solution = rd.str(root, p, "solution", false);

    if (const json* clues = rd.array(root, p, "clues", false)) {
        for (size_t i = 0; i < clues->size(); ++i) {
            const std::string kp = "/clues/" + std::to_string(i);
            const json& kj = (*clues)[i];
            if (!rd.object(kj, kp, "clue")) continue;
            scenario_clue k;
            k.id = rd.id(kj, kp, "id", true);
            k.title = rd.str(kj, kp, "title", false);
            k.text = rd.str(kj, kp, "text", true, true);
            k.available_from = rd.id(kj, kp, "available_from", true);
            k.found_by = rd.id(kj, kp, "found_by", false);
            k.visible_to = rd.strings(kj, kp, "visible_to", false);
            sc.clues.push_back(std::move(k));
        }
    }

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
            sc.phases.push_back(std::move(ph));
        }
    }

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

    if (auto it = root.find("tools"); it != root.end()) read_tools(rd, *it, "/tools", sc.tools);
    if (auto it = root.find("generator"); it != root.end()) {
        sc.generator.emplace();
        read_generator(rd, *it, "/generator", *sc.generator);
    }
    if (auto it = root.find("budgets"); it != root.end()) {
        if (rd.object(*it, "/budgets", "budgets")) {
            auto& b = sc.budgets;
            b.max_tokens_per_turn = static_cast<int32_t>(
                rd.integer(*it, "/budgets", "max_tokens_per_turn", false, b.max_tokens_per_turn, 1, 1 << 20));
            b.max_tokens_per_probe = static_cast<int32_t>(
                rd.integer(*it, "/budgets", "max_tokens_per_probe", false, b.max_tokens_per_probe, 1, 1 << 20));
            b.window_tokens =
                static_cast<int32_t>(rd.integer(*it, "/budgets", "window_tokens", false, b.window_tokens, 0, 1 << 30));
        }
    }
}

// ---------------------------------------------------------------------------
// Cross-reference checks (on the structs; paths rebuilt from indices)
// ---------------------------------------------------------------------------

void check_references(reader& rd, const scenario& sc) {
    auto idx = [](const char* base, size_t i) { return std::string(base) + std::to_string(i); };

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

    auto is_speaker = [&](const std::string& id) { return sc.find_character(id) || sc.find_player(id); };
    auto phase_index = [&](const std::string& id) -> int {
        for (size_t i = 0; i < sc.phases.size(); ++i) {
            if (sc.phases[i].id == id) return static_cast<int>(i);
        }
        return -1;
    };
    auto need_speaker = [&](const std::string& id, const std::string& path) {
        if (!id.empty() && !is_speaker(id)) rd.error(path, "unknown character or player '" + id + "'");
    };
    auto need_character = [&](const std::string& id, const std::string& path) {
        if (!id.empty() && !sc.find_character(id)) rd.error(path, "unknown character '" + id + "'");
    };
    auto need_phase = [&](const std::string& id, const std::string& path) {
        if (!id.empty() && phase_index(id) < 0) rd.error(path, "unknown phase '" + id + "'");
    };
    auto need_tool = [&](const std::string& name, const std::string& path) {
        if (!sc.tools.allows(name)) rd.error(path, "tool '" + name + "' is not in /tools");
    };

    // Kind-specific rules.
    int n_game_masters = 0;
    for (const auto& c : sc.characters) n_game_masters += c.role == character_role::game_master;
    if (n_game_masters > 1) rd.error("/characters", "at most one game_master");
    if (sc.kind == scenario_kind::mystery) {
        if (sc.culprit.empty()) {
            rd.error("/culprit", "missing: a mystery needs a culprit");
        } else if (const auto* c = sc.find_character(sc.culprit); !c) {
            rd.error("/culprit", "unknown character '" + sc.culprit + "'");
        } else if (c->role != character_role::npc) {
            rd.error("/culprit",
                     "the culprit '" + sc.culprit + "' must be an npc, not " + character_role_name(c->role));
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
    } else if (!sc.culprit.empty()) {
        rd.error("/culprit", "only a mystery has a culprit");
    }
    if (sc.kind == scenario_kind::companion &&
        std::none_of(sc.characters.begin(), sc.characters.end(),
                     [](const auto& c) { return c.role == character_role::companion; })) {
        rd.error("/characters", "a companion scenario needs a character with role companion");
    }
    if (sc.kind == scenario_kind::tool_agent && sc.tools.builtin.empty() && sc.tools.game.empty()) {
        rd.error("/tools", "a tool_agent scenario needs at least one tool");
    }

    // Clues.
    for (size_t i = 0; i < sc.clues.size(); ++i) {
        const auto& k = sc.clues[i];
        const std::string kp = idx("/clues/", i);
        need_phase(k.available_from, kp + "/available_from");
        need_speaker(k.found_by, kp + "/found_by");
        for (size_t v = 0; v < k.visible_to.size(); ++v)
            need_speaker(k.visible_to[v], kp + "/visible_to/" + std::to_string(v));
    }

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
            need_speaker(turn.speaker, tp + "/speaker");
            if (turn.to != "all") {
                need_speaker(turn.to, tp + "/to");
                if (!turn.to.empty() && turn.to == turn.speaker)
                    rd.error(tp + "/to", "a speaker cannot address itself");
            }
            const auto* pl = sc.find_player(turn.speaker);
            if (pl && turn.interactive && !pl->interactive) {
                rd.error(tp + "/interactive", "player '" + pl->id + "' is scripted (mode) and needs a line");
            }
            if (!turn.expect_tools.empty() && (!turn.interactive || !sc.find_character(turn.speaker))) {
                rd.error(tp + "/expect_tools", "only an interactive character turn can be expected to call tools");
            }
            for (size_t k = 0; k < turn.expect_tools.size(); ++k)
                need_tool(turn.expect_tools[k], tp + "/expect_tools/" + std::to_string(k));
        }
    }

    // Probes.
    for (size_t i = 0; i < sc.probes.size(); ++i) {
        const auto& q = sc.probes[i];
        const std::string qp = idx("/probes/", i);
        need_phase(q.at_phase, qp + "/at/phase");
        if (const auto* ph = sc.find_phase(q.at_phase); ph && q.at_turn >= 0) {
            if (sc.generator && sc.generator->phase == ph->id) {
                rd.error(qp + "/at/turn", "the generated phase '" + ph->id + "' has no fixed turns; omit 'turn'");
            } else if (q.at_turn > static_cast<int32_t>(ph->turns.size())) {
                rd.error(qp + "/at/turn", std::to_string(q.at_turn) + " is past the end of phase '" + ph->id + "' (" +
                                              std::to_string(ph->turns.size()) + " turns)");
            }
        }
        need_character(q.asked_to, qp + "/asked_to");
        if (q.must_contain.empty() && q.must_not_reveal.empty() && q.must_call_tools.empty()) {
            rd.error(qp, "a probe needs must_contain, must_not_reveal or must_call_tools");
        }
        for (size_t k = 0; k < q.must_call_tools.size(); ++k)
            need_tool(q.must_call_tools[k], qp + "/must_call_tools/" + std::to_string(k));
        for (size_t k = 0; k < q.sources.size(); ++k) need_speaker(q.sources[k], qp + "/sources/" + std::to_string(k));
        if (!q.fact.empty()) {
            const bool found = sc.generator && std::any_of(sc.generator->facts.begin(), sc.generator->facts.end(),
                                                           [&](const auto& f) { return f.id == q.fact; });
            if (!found) rd.error(qp + "/fact", "unknown generator fact '" + q.fact + "'");
        }
    }

    // Generator.
    if (sc.generator) {
        const auto& g = *sc.generator;
        need_phase(g.phase, "/generator/phase");
        if (const auto* ph = sc.find_phase(g.phase); ph && ph->kind != phase_kind::history) {
            rd.error("/generator/phase", "phase '" + g.phase + "' must have kind history");
        }
        need_speaker(g.speaker, "/generator/speaker");
        need_speaker(g.to, "/generator/to");
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
                const bool builtin =
                    std::find_if(std::begin(k_generator_builtins), std::end(k_generator_builtins),
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
        // Facts: on a real day, key in its own text and in no filler or other fact.
        for (size_t i = 0; i < g.facts.size(); ++i) {
            const auto& f = g.facts[i];
            const std::string fp = idx("/generator/facts/", i);
            if (g.days > 0 && f.day >= g.days)
                rd.error(fp + "/day", std::to_string(f.day) + " is not before days (" + std::to_string(g.days) + ")");
            if (f.key.empty()) continue;
            if (!contains_ci(f.text, f.key))
                rd.error(fp + "/key", "'" + f.key + "' does not appear in the fact's text");
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
}

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

// ---------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------

// splitmix64: tiny, fast, and the same on every platform (std distributions are not).
class splitmix64 {
  public:
    explicit splitmix64(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n) (modulo bias is negligible for the small n used here).
    uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
    int32_t between(int32_t lo, int32_t hi) {
        return lo + static_cast<int32_t>(below(static_cast<uint64_t>(hi - lo + 1)));
    }

  private:
    uint64_t state_;
};

constexpr const char* k_weekdays[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
constexpr const char* k_months[] = {"January", "February", "March",     "April",   "May",      "June",
                                    "July",    "August",   "September", "October", "November", "December"};

struct day_names {
    std::string weekday;  // "Monday"
    std::string date;     // "3 March 2025"
};

day_names names_of_day(int64_t days_since_epoch) {
    int64_t y = 0;
    unsigned m = 0, d = 0;
    civil_from_days(days_since_epoch, y, m, d);
    const int64_t wd = days_since_epoch >= -4 ? (days_since_epoch + 4) % 7 : (days_since_epoch + 5) % 7 + 6;
    return {k_weekdays[wd], std::to_string(d) + " " + k_months[m - 1] + " " + std::to_string(y)};
}

std::string expand(const std::string& t, const history_generator& g, const day_names& dn, int32_t day,
                   splitmix64& rng) {
    std::string out;
    out.reserve(t.size() + 32);
    for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] != '{') {
            out += t[i];
            continue;
        }
        const size_t j = t.find('}', i + 1);
        if (j == std::string::npos) {  // validated away; keep the text as is
            out += t.substr(i);
            break;
        }
        const std::string name = t.substr(i + 1, j - i - 1);
        if (name == "weekday")
            out += dn.weekday;
        else if (name == "date")
            out += dn.date;
        else if (name == "day")
            out += std::to_string(day + 1);
        else if (name == "week")
            out += std::to_string(day / 7 + 1);
        else if (auto it = g.slots.find(name); it != g.slots.end() && !it->second.empty())
            out += it->second[rng.below(it->second.size())];
        i = j;
    }
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

const char* scenario_kind_name(scenario_kind k) { return k_kind_names[static_cast<int>(k)]; }
const char* character_role_name(character_role r) { return k_role_names[static_cast<int>(r)]; }
const char* phase_kind_name(phase_kind k) { return k_phase_names[static_cast<int>(k)]; }

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

const std::map<std::string, std::vector<std::string>>& scenario_accepted_properties() { return k_accepted; }

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

    reader rd(source);
    scenario sc;
    sc.source = source;
    read_scenario(rd, root, sc);
    if (root.is_object()) check_references(rd, sc);
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
    if (!sc.rules.empty()) s += "\n\n## Rules\n\n" + sc.rules;
    return s;
}

std::string character_system_text(const scenario& sc, const scenario_character& c) {
    // The runtime's layout, so a scenario character renders exactly like a server-side one.
    character rc;
    rc.name = c.name;
    rc.persona = c.persona;
    rc.public_knowledge = c.public_knowledge;
    rc.private_knowledge = c.private_script;
    rc.secrets = c.secrets;
    rc.goals = c.goals;
    return character_system_prompt(rc, shared_prefix_text(sc));
}

std::vector<scripted_turn> generate_history(const scenario& sc, uint64_t seed) {
    std::vector<scripted_turn> out;
    if (!sc.generator) return out;
    const auto& g = *sc.generator;
    if (g.sentences.empty() || g.days <= 0) return out;
    int64_t start = 0;
    if (!parse_date(g.start_date, start)) start = 0;
    splitmix64 rng(seed);

    std::vector<size_t> order(g.sentences.size());
    for (int32_t day = 0; day < g.days; ++day) {
        const day_names dn = names_of_day(start + day);
        std::vector<const generator_fact*> today;
        for (const auto& f : g.facts) {
            if (f.day == day) today.push_back(&f);
        }
        const int32_t n_entries =
            std::max<int32_t>(rng.between(g.entries_min, g.entries_max), static_cast<int32_t>(today.size()));
        // One fact per entry: facts go to distinct entries chosen at random.
        std::vector<int32_t> entry_of_fact;
        {
            std::vector<int32_t> slots_left(static_cast<size_t>(n_entries));
            for (int32_t e = 0; e < n_entries; ++e) slots_left[static_cast<size_t>(e)] = e;
            for (size_t f = 0; f < today.size(); ++f) {
                const size_t pick = static_cast<size_t>(rng.below(slots_left.size()));
                entry_of_fact.push_back(slots_left[pick]);
                slots_left.erase(slots_left.begin() + static_cast<std::ptrdiff_t>(pick));
            }
        }
        for (int32_t e = 0; e < n_entries; ++e) {
            const int32_t n_sent = std::min<int32_t>(rng.between(g.sentences_min, g.sentences_max),
                                                     static_cast<int32_t>(g.sentences.size()));
            // Distinct templates within an entry (partial Fisher-Yates).
            for (size_t i = 0; i < order.size(); ++i) order[i] = i;
            std::vector<std::string> parts;
            for (int32_t k = 0; k < n_sent; ++k) {
                const size_t j =
                    static_cast<size_t>(k) + static_cast<size_t>(rng.below(order.size() - static_cast<size_t>(k)));
                std::swap(order[static_cast<size_t>(k)], order[j]);
                parts.push_back(expand(g.sentences[order[static_cast<size_t>(k)]], g, dn, day, rng));
            }
            scripted_turn t;
            t.speaker = g.speaker;
            t.to = g.to;
            t.day = day;
            for (size_t f = 0; f < today.size(); ++f) {
                if (entry_of_fact[f] != e) continue;
                const size_t at = static_cast<size_t>(rng.below(parts.size() + 1));
                parts.insert(parts.begin() + static_cast<std::ptrdiff_t>(at), today[f]->text);
                t.fact = today[f]->id;
            }
            std::string line = e == 0 ? "[" + dn.weekday + ", " + dn.date + "]" : "";
            for (const auto& part : parts) line += (line.empty() ? "" : " ") + part;
            t.line = std::move(line);
            out.push_back(std::move(t));
            if (!g.replies.empty()) {
                scripted_turn r;
                r.speaker = g.to;
                r.to = g.speaker;
                r.day = day;
                r.line = expand(g.replies[rng.below(g.replies.size())], g, dn, day, rng);
                out.push_back(std::move(r));
            }
        }
    }
    return out;
}

probe_score score_probe(const scenario_probe& p, std::string_view answer,
                        const std::vector<std::string>& tools_called) {
    probe_score s;
    const std::string a = lower_ascii(answer);
    for (const auto& item : p.must_contain) {
        const bool found = std::any_of(item.begin(), item.end(), [&](const std::string& alt) {
            return a.find(lower_ascii(alt)) != std::string::npos;
        });
        if (!found) {
            std::string joined;
            for (const auto& alt : item) joined += (joined.empty() ? "" : " | ") + alt;
            s.missing.push_back(joined);
        }
    }
    for (const auto& item : p.must_not_reveal) {
        for (const auto& alt : item) {
            if (a.find(lower_ascii(alt)) != std::string::npos) s.revealed.push_back(alt);
        }
    }
    for (const auto& t : p.must_call_tools) {
        if (std::find(tools_called.begin(), tools_called.end(), t) == tools_called.end()) s.tools_missing.push_back(t);
    }
    s.passed = s.missing.empty() && s.revealed.empty() && s.tools_missing.empty();
    return s;
}

}  // namespace mnemos::agent

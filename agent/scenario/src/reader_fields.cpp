// The reader's field readers and error list (agent/scenario/reader.h).
#include <algorithm>

#include "agent/scenario/reader.h"
#include "agent/scenario/text_util.h"

namespace mnemos::agent::scenario_reader {

using scenario_text::pointer_token;
using scenario_text::valid_id;

namespace {

const std::map<std::string, std::vector<std::string>> k_accepted = {
    {"", {"$schema",    "id",      "title",   "description", "language", "translation_of", "kind",     "shared",
          "characters", "players", "culprit", "culprits",    "suspects", "locations",      "solution", "clues",
          "phases",     "probes",  "tools",   "generator",   "budgets",  "runner_text"}},
    {"shared", {"public_script", "rules"}},
    {"character", {"id", "name", "role", "persona", "public_knowledge", "private_script", "secrets", "goals"}},
    {"player", {"id", "name", "description", "mode"}},
    {"clue", {"id", "title", "text", "available_from", "found_by", "visible_to", "target", "reveal_to", "trigger"}},
    {"clue_trigger", {"keyword", "said_by", "asked", "subject", "act"}},
    {"culprit", {"id", "role"}},
    {"suspect", {"id", "name", "description"}},
    {"location", {"id", "name", "description"}},
    {"phase",
     {"id", "kind", "title", "round", "narration", "turns", "act", "policy", "rounds", "participants", "action"}},
    {"turn", {"speaker", "to", "line", "interactive", "expect_tools", "action", "target"}},
    {"probe",
     {"id", "at", "asked_to", "question", "must_contain", "must_not_reveal", "must_call_tools", "sources", "fact",
      "note"}},
    {"probe_at", {"phase", "turn"}},
    {"tools", {"builtin", "game", "npc"}},
    {"game_tool", {"name", "description", "parameters"}},
    {"int_range", {"min", "max"}},
    {"generator",
     {"kind", "seed", "phase", "speaker", "to", "days", "start_date", "entries_per_day", "sentences_per_entry",
      "sentences", "replies", "slots", "facts"}},
    {"generator_fact", {"id", "day", "text", "key"}},
    {"budgets", {"max_tokens_per_turn", "max_tokens_per_probe", "window_tokens"}},
};

}  // namespace

const std::map<std::string, std::vector<std::string>>& accepted_properties() { return k_accepted; }

void reader::error(const std::string& path, const std::string& what) {
    if (errors_.size() < k_max_errors)
        errors_.push_back(source_ + ": " + (path.empty() ? "/" : path) + ": " + what);
    else if (errors_.size() == k_max_errors)
        errors_.push_back(source_ + ": too many errors; stopping here");
}

bool reader::object(const json& j, const std::string& path, const char* def) {
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

std::string reader::str(const json& obj, const std::string& path, const char* key, bool required, bool non_empty) {
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

std::string reader::id(const json& obj, const std::string& path, const char* key, bool required) {
    std::string s = str(obj, path, key, required);
    if (obj.contains(key) && obj.at(key).is_string() && !valid_id(s)) {
        error(path + "/" + key, "'" + s + "' is not a valid id (lower-case letters, digits, '_', '-', '.')");
    }
    return s;
}

int64_t reader::integer(const json& obj, const std::string& path, const char* key, bool required, int64_t def,
                        int64_t lo, int64_t hi) {
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

std::vector<std::string> reader::strings(const json& obj, const std::string& path, const char* key, bool required,
                                         bool non_empty) {
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

std::vector<text_match> reader::matches(const json& obj, const std::string& path, const char* key) {
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

const json* reader::array(const json& obj, const std::string& path, const char* key, bool required) {
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

std::string reader::join(const std::vector<std::string>& v) {
    std::string r;
    for (const auto& s : v) r += (r.empty() ? "" : ", ") + s;
    return r;
}

}  // namespace mnemos::agent::scenario_reader

// Characters (agent/core/character.h).
#include "agent/core/character.h"

#include <nlohmann/json.hpp>

#include "agent/core/util.h"

namespace mnemos::agent {

using json = nlohmann::json;

namespace {

// labels.you_are with its "{name}" replaced.
std::string you_are(const character& c) {
    std::string s = c.labels.you_are;
    if (const size_t at = s.find("{name}"); at != std::string::npos) s.replace(at, 6, c.name);
    return s;
}

}  // namespace

std::string character_system_prompt(const character& c, const std::string& shared_prefix_text) {
    std::string s;
    auto section = [&](const std::string& title, const std::string& text) {
        if (text.empty()) return;
        if (!s.empty()) s += "\n\n";
        if (!title.empty()) s += title + "\n";
        s += text;
    };
    auto list = [](const std::vector<std::string>& v) {
        std::string r;
        for (const auto& x : v) r += (r.empty() ? "- " : "\n- ") + x;
        return r;
    };
    section("", shared_prefix_text);
    if (!c.persona.empty())
        section("", c.persona);
    else if (!c.name.empty())
        section("", you_are(c));
    // Secrets and goals are short and decisive: they come before the knowledge sections, which can be whole
    // scripts of thousands of tokens, so they sit near the persona whatever the length of the rest.
    section(c.labels.secrets, list(c.secrets));
    section(c.labels.goals, list(c.goals));
    section(c.labels.public_knowledge, c.public_knowledge);
    section(c.labels.private_knowledge, c.private_knowledge);
    return s;
}

json character_to_json(const character& c, bool include_private) {
    json j = {{"name", c.name}, {"public_knowledge", c.public_knowledge}};
    if (!c.shared_prefix.empty()) j["shared_prefix"] = c.shared_prefix;
    if (include_private) {
        j["persona"] = c.persona;
        j["private_knowledge"] = c.private_knowledge;
        j["secrets"] = c.secrets;
        j["goals"] = c.goals;
    }
    return j;
}

result<character> character_from_json(const json& j) {
    if (!j.is_object()) return make_error(errc::invalid_argument, "character must be an object");
    character c;
    auto str = [&](const char* key, std::string& out) -> status {
        auto it = j.find(key);
        if (it == j.end() || it->is_null()) return {};
        if (!it->is_string())
            return make_error(errc::invalid_argument, std::string("character.") + key + " must be a string");
        out = it->get<std::string>();
        if (!valid_utf8(out))
            return make_error(errc::invalid_argument, std::string("character.") + key + " is not valid UTF-8");
        return {};
    };
    auto strs = [&](const char* key, std::vector<std::string>& out) -> status {
        auto it = j.find(key);
        if (it == j.end() || it->is_null()) return {};
        if (it->is_string()) {
            out.push_back(it->get<std::string>());
        } else if (it->is_array()) {
            for (const auto& e : *it) {
                if (!e.is_string())
                    return make_error(errc::invalid_argument, std::string("character.") + key + " must hold strings");
                out.push_back(e.get<std::string>());
            }
        } else {
            return make_error(errc::invalid_argument, std::string("character.") + key + " must be an array of strings");
        }
        for (const auto& x : out)
            if (!valid_utf8(x))
                return make_error(errc::invalid_argument, std::string("character.") + key + " is not valid UTF-8");
        return {};
    };
    std::string system_prompt;
    for (auto st : {str("name", c.name), str("persona", c.persona), str("system_prompt", system_prompt),
                    str("public_knowledge", c.public_knowledge), str("private_knowledge", c.private_knowledge),
                    strs("secrets", c.secrets), strs("goals", c.goals), str("shared_prefix", c.shared_prefix)})
        if (!st.ok()) return st;
    if (c.persona.empty()) c.persona = system_prompt;
    return c;
}

}  // namespace mnemos::agent

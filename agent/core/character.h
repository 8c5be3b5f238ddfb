#pragma once
// A character (persona, knowledge, secrets, goals), its system message and its JSON form.
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "engine/status.h"

namespace mnemos::agent {

// The words of a character's system message around its own text (character_system_prompt): English by
// default; a scenario in another language gives its own (agent/scenario/runner_text.h).
struct system_text_labels {
    std::string you_are = "You are {name}.";  // without a persona; "{name}" is replaced by the name
    // Section headings, each on its own line above its section.
    std::string secrets = "Secrets (never reveal):";
    std::string goals = "Goals:";
    std::string public_knowledge = "Public knowledge:";
    std::string private_knowledge = "Private knowledge (do not reveal unless appropriate):";
};

// A role-play character or agent persona. Everything but name and
// public_knowledge is private: shown only to keys allowed to read the session.
struct character {
    std::string name;                  // "Butler"
    std::string persona;               // system prompt: who the character is
    std::string public_knowledge;      // what everyone may know
    std::string private_knowledge;     // what only the character knows
    std::vector<std::string> secrets;  // never revealed; never logged
    std::vector<std::string> goals;
    std::string shared_prefix;  // id of a shared prefix (e.g. a game's rules) placed before the persona
    // Not in the JSON form: a session keeps its rendered system message, so only its creation reads them.
    system_text_labels labels;
    bool empty() const {
        return name.empty() && persona.empty() && public_knowledge.empty() && private_knowledge.empty() &&
               secrets.empty() && goals.empty();
    }
};

// The system message a character renders to (empty when the character is empty).
std::string character_system_prompt(const character& c, const std::string& shared_prefix_text);

// Character <-> JSON. from_json: invalid_argument naming the bad field.
nlohmann::json character_to_json(const character& c, bool include_private);
result<character> character_from_json(const nlohmann::json& j);

}  // namespace mnemos::agent

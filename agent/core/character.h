#pragma once
// A character (persona, knowledge, secrets, goals), its system message and its JSON form.
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "engine/status.h"

namespace mnemos::agent {

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

#pragma once
// Cross-reference checks of a read scenario (agent/scenario/reader.h read the
// structure): ids unique, references resolving, the rules of each kind, and
// the generator's templates and facts. One function per section; each reports
// through the reader's error list with JSON pointers rebuilt from indices.
// Internals of agent/scenario (parse_scenario runs check_references), public for its tests.
#include <string>

#include "agent/scenario/reader.h"
#include "agent/scenario/scenario.h"

namespace mnemos::agent::scenario_checks {

using scenario_reader::reader;

// "base" followed by the index: the path of an array element in an error ("/clues/3").
inline std::string idx(const char* base, size_t i) { return std::string(base) + std::to_string(i); }

// Duplicate ids within each namespace (characters and players share one), and the reserved id "all".
void check_unique_ids(reader& rd, const scenario& sc);
// At most one game master; a mystery's culprit and phases; a companion's companion; a tool agent's tools.
void check_kind_rules(reader& rd, const scenario& sc);
// A mystery: its culprit (an npc) and its phases (introduction, investigation rounds, accusation, reveal, in order).
void check_mystery(reader& rd, const scenario& sc);
// Clues: phase, finder and audience exist.
void check_clues(reader& rd, const scenario& sc);
// Phases and their turns: rounds, the generated phase, speakers, addressees, interactive players, expected tools.
void check_phases(reader& rd, const scenario& sc);
// Culprits ("culprits"): each a character (not the game master), player or suspect, once, with a killer among them.
void check_culprits(reader& rd, const scenario& sc);
// Clues' targets (a location, character or suspect) and triggers (who says or is asked, an act that exists).
void check_clue_mechanics(reader& rd, const scenario& sc);
// Phases' turn policies (participants, a game master to direct) and turns' actions (who may take them, targets).
void check_phase_mechanics(reader& rd, const scenario& sc);
// Probes: when and to whom they are asked, what they check, the tools and facts they name.
void check_probes(reader& rd, const scenario& sc);
// The generator: its phase and speakers, its templates' placeholders, its slot values.
void check_generator(reader& rd, const scenario& sc);
// The generator's facts: on a real day, their key in their own text and in no filler or other fact.
void check_generator_facts(reader& rd, const history_generator& g);

// All of the above (the mechanics after their section).
void check_references(reader& rd, const scenario& sc);

}  // namespace mnemos::agent::scenario_checks

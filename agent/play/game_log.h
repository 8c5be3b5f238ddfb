#pragma once
// The game log (session "<scenario id>.game"): its metadata, its step events
// checked against the scenario's steps on resume, and the character sessions
// the completed steps imply (a session that differs was cut mid-step and is
// rebuilt). Internals of agent/play (the game drives them), public for its tests.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/core/event.h"
#include "agent/play/play.h"
#include "agent/play/steps.h"
#include "engine/chat_template.h"
#include "engine/status.h"

namespace mnemos::agent::game_log {

using json = nlohmann::json;

// The game session's metadata: {"kind": "game", "scenario", "title", "n_steps", "n_probes", "phases": [{"id",
// "title"}], "names": {character or player id: name}, "temperature", "seed", "max_tokens"} (the spectator page shows
// step n/N, the phase and the score).
json game_meta(const scenario& sc, const play_options& o);

// "" when the stored metadata has this run's sampling settings, else the progress note that says the resumed
// game will not equal an uninterrupted run.
std::string settings_note(const json& meta, const play_options& o);

// The step events of the game log (other events, and lines that do not parse, skipped), in order. Errors: corrupt when
// an event's idx is not the next step, is past the last step, or its kind is not that step's.
result<std::vector<step_event>> completed_steps(const std::vector<std::string>& events,
                                                const std::vector<play_steps::step>& steps, const std::string& game_id);

// Per character: the messages the completed steps appended to its session, in order (after its system message).
std::map<std::string, std::vector<engine::chat_message>> implied_messages(const scenario& sc,
                                                                          const std::vector<step_event>& done);

// Whether a session's messages are its system message followed by exactly `want` (later system messages, the
// scenario changes --accept-changes applied, aside).
bool session_matches(const std::vector<engine::chat_message>& messages, const std::vector<engine::chat_message>& want);

}  // namespace mnemos::agent::game_log

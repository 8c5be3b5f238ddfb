#pragma once
// The end of a game: the scores read back from the completed steps' events,
// the transcript, the results JSON and the files they go to.
// Internals of agent/play (the game drives them), public for its tests.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/core/event.h"
#include "agent/play/play.h"
#include "agent/play/steps.h"
#include "engine/status.h"

namespace mnemos::agent::play_report_detail {

using json = nlohmann::json;

// rep.probes and rep.n_probes_passed from the probe events (a probe that found no room fails).
void score_probes(const scenario& sc, const std::vector<step_event>& done, play_report& rep);

// rep.n_windowed, the generated turns per character (chars), and rep.tool_turns / n_tool_turns_passed for the
// turns with expect_tools.
void score_turns(const std::vector<play_steps::step>& steps, const std::vector<step_event>& done, play_report& rep,
                 std::map<std::string, character_report>& chars);

// The title, then per phase a "== <title> ==" header and its steps' lines.
std::string transcript(const scenario& sc, const std::vector<play_steps::step>& steps,
                       const std::vector<step_event>& done);

// What results_path receives (without its final newline). n_ctx and window_tokens: the engine's context and the
// characters' window.
std::string results_json(const scenario& sc, const play_options& o, const play_report& rep, int32_t n_ctx,
                         int32_t window_tokens);

// Writes text to path ("" writes nothing). Errors: io_error.
status write_file(const std::string& path, const std::string& text);

}  // namespace mnemos::agent::play_report_detail

// The scenario runner (agent/play/play.h): play_scenario runs a game (agent/play/src/game.h).
#include "agent/play/play.h"

#include "agent/play/src/game.h"
#include "agent/play/steps.h"

namespace mnemos::agent {

std::string play_game_session_id(const scenario& sc) { return play_steps::sanitize_id(sc.id) + ".game"; }

std::string play_character_session_id(const scenario& sc, std::string_view character_id) {
    return play_steps::sanitize_id(sc.id) + "." + play_steps::sanitize_id(character_id);
}

result<play_report> play_scenario(const scenario& sc, std::shared_ptr<const engine::model> m,
                                  const play_options& options) {
    if (!m) return make_error(errc::invalid_argument, "no model");
    play_game::game g(sc, options);
    return g.run(std::move(m));
}

}  // namespace mnemos::agent

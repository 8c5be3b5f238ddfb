// The scenario runner (agent/play/play.h): play_scenario runs a game (agent/play/src/game.h).
#include "agent/play/play.h"

#include "agent/play/src/game.h"
#include "agent/play/steps.h"

namespace mnemos::agent {

std::string play_game_session_id(const scenario& sc) { return play_steps::sanitize_id(sc.id) + ".game"; }

std::string play_character_session_id(const scenario& sc, std::string_view character_id) {
    return play_steps::sanitize_id(sc.id) + "." + play_steps::sanitize_id(character_id);
}

namespace {

std::string trim_spaces(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

player_line parse_player_line(const std::string& typed) {
    const std::string t = trim_spaces(typed);
    if (t.size() < 2 || t[0] != '@') return {t, {}};
    const auto colon = t.find(':');
    const auto end = colon != std::string::npos ? colon : t.find(' ');
    if (end == std::string::npos) return {t, {}};
    return {trim_spaces(t.substr(end + 1)), trim_spaces(t.substr(1, end - 1))};
}

result<play_report> play_scenario(const scenario& sc, std::shared_ptr<const engine::model> m,
                                  const play_options& options) {
    if (!m) return make_error(errc::invalid_argument, "no model");
    play_game::game g(sc, options);
    return g.run(std::move(m));
}

}  // namespace mnemos::agent

// The scenario runner (agent/play/play.h): play_scenario runs a game (agent/play/src/game.h).
#include "agent/play/play.h"

#include <initializer_list>
#include <string_view>
#include <tuple>
#include <utility>

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

// The first of seps in t: its position (npos when none) and length.
std::pair<size_t, size_t> first_of(const std::string& t, std::initializer_list<std::string_view> seps) {
    std::pair<size_t, size_t> hit{std::string::npos, 0};
    for (auto sep : seps)
        if (const size_t at = t.find(sep); at < hit.first) hit = {at, sep.size()};
    return hit;
}

}  // namespace

player_line parse_player_line(const std::string& typed) {
    std::string t = trim_spaces(typed);
    static constexpr std::string_view full_width_at = "\xEF\xBC\xA0";  // U+FF20
    if (t.compare(0, full_width_at.size(), full_width_at) == 0) t = "@" + t.substr(full_width_at.size());
    if (t.size() < 2 || t[0] != '@') return {t, {}};
    // The name ends at the first colon (ASCII or full-width), else at the first space (ASCII or ideographic).
    auto [end, n] = first_of(t, {":", "\xEF\xBC\x9A"});
    if (end == std::string::npos) std::tie(end, n) = first_of(t, {" ", "\xE3\x80\x80"});
    if (end == std::string::npos) return {t, {}};
    return {trim_spaces(t.substr(end + n)), trim_spaces(t.substr(1, end - 1))};
}

result<play_report> play_scenario(const scenario& sc, std::shared_ptr<const engine::model> m,
                                  const play_options& options) {
    if (!m) return make_error(errc::invalid_argument, "no model");
    play_game::game g(sc, options);
    return g.run(std::move(m));
}

}  // namespace mnemos::agent

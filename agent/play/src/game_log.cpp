// The game log (agent/play/game_log.h).
#include "agent/play/game_log.h"

#include <algorithm>

namespace mnemos::agent::game_log {

json game_meta(const scenario& sc, const play_options& o) {
    const auto steps = play_steps::build_steps(sc);
    const auto n_probes =
        std::count_if(steps.begin(), steps.end(), [](const auto& s) { return s.kind == play_steps::step_kind::probe; });
    json phases = json::array();
    for (const auto& ph : sc.phases) phases.push_back({{"id", ph.id}, {"title", ph.title}});
    json names = json::object();
    for (const auto& c : sc.characters) names[c.id] = c.name;
    for (const auto& p : sc.players) names[p.id] = p.name;
    for (const auto& s : sc.suspects) names[s.id] = s.name;  // investigation targets and votes name them too
    for (const auto& l : sc.locations) names[l.id] = l.name;
    return {{"kind", "game"},
            {"scenario", sc.id},
            {"title", sc.title},
            {"n_steps", steps.size()},
            {"n_probes", n_probes},
            {"phases", std::move(phases)},
            {"names", std::move(names)},
            {"temperature", o.temperature},
            {"seed", o.seed},
            {"max_tokens", o.max_tokens}};
}

std::string settings_note(const json& meta, const play_options& o) {
    if (!meta.is_object() || (meta.value("temperature", 0.0) == static_cast<double>(o.temperature) &&
                              meta.value("seed", uint64_t(0)) == o.seed && meta.value("max_tokens", 0) == o.max_tokens))
        return {};
    return "[play] note: the game was started with temperature " + meta.value("temperature", json()).dump() +
           ", seed " + meta.value("seed", json()).dump() + ", max tokens " + meta.value("max_tokens", json()).dump() +
           "; continuing with this run's settings";
}

result<std::vector<step_event>> completed_steps(const std::vector<std::string>& events,
                                                const std::vector<play_steps::step>& steps,
                                                const std::string& game_id) {
    std::vector<step_event> done;
    for (const auto& e : events) {
        auto parsed = parse_event(e);
        if (!parsed) continue;
        auto* ev = std::get_if<step_event>(&parsed.value());
        if (!ev) continue;
        const int64_t idx = static_cast<int64_t>(done.size());
        if (ev->idx != idx || idx >= static_cast<int64_t>(steps.size()) ||
            ev->kind != play_steps::step_kind_name(steps[static_cast<size_t>(idx)].kind))
            return make_error(errc::corrupt, "game log of '" + game_id + "' does not match the scenario at step " +
                                                 std::to_string(idx));
        done.push_back(std::move(*ev));
    }
    return done;
}

std::map<std::string, std::vector<engine::chat_message>> implied_messages(const scenario& sc,
                                                                          const std::vector<step_event>& done) {
    std::map<std::string, std::vector<engine::chat_message>> expected;
    for (const auto& ev : done)
        for (auto& e : play_steps::effects(sc, ev)) expected[e.character].push_back(e.msg);
    return expected;
}

bool session_matches(const std::vector<engine::chat_message>& messages, const std::vector<engine::chat_message>& want) {
    if (messages.empty()) return false;
    // Later system messages are scenario changes applied on resume (--accept-changes), not steps.
    std::vector<const engine::chat_message*> held;
    for (size_t i = 1; i < messages.size(); ++i)
        if (messages[i].role != "system") held.push_back(&messages[i]);
    bool same = held.size() == want.size();
    for (size_t i = 0; same && i < want.size(); ++i)
        same = held[i]->role == want[i].role && held[i]->content == want[i].content;
    return same;
}

}  // namespace mnemos::agent::game_log

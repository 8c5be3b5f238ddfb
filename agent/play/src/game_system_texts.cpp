// The characters' system texts against the game's (agent/play/src/game.h): a resumed game whose scenario now
// renders a character otherwise is refused, or with accept_changes the new text is appended as a system message.
#include <cstdio>

#include "agent/play/src/game.h"
#include "engine/sha256.h"

namespace mnemos::agent::play_game {

namespace {

std::string hex(const engine::sha256_digest& d) {
    std::string s;
    for (uint8_t b : d) {
        char buf[3];
        std::snprintf(buf, sizeof buf, "%02x", b);
        s += buf;
    }
    return s;
}

}  // namespace

std::string game::system_text_of(const scenario_character& c) const {
    // As session_manager::create renders it: the character under the shared prefix, then the tool section.
    std::string sys = character_system_prompt(runtime_character(sc_, c), shared_prefix_text(sc_));
    if (has_tools(c.id)) sys += (sys.empty() ? "" : "\n\n") + char_tools_.at(c.id).prompt;
    return sys;
}

std::map<std::string, std::string> game::system_hashes() const {
    std::map<std::string, std::string> out;
    for (const auto& c : sc_.characters) out[c.id] = hex(engine::sha256::hash(system_text_of(c)));
    return out;
}

status game::check_system_texts(json& meta) {
    if (!meta.is_object()) return {};  // unreadable metadata: the step check decides
    const auto now = system_hashes();
    auto it = meta.find("system_sha256");
    if (it == meta.end() || !it->is_object()) {
        meta["system_sha256"] = now;
        progress(
            "[play] note: the game's log has no system-text hashes (it began before they were kept): "
            "recording this scenario's; a change made before now goes unnoticed");
        return store_->put_session(game_id_, meta.dump());
    }
    std::string named;
    for (const auto& c : sc_.characters) {
        auto held = it->find(c.id);
        if (held != it->end() && held->is_string() && held->get<std::string>() == now.at(c.id)) continue;
        changed_.push_back(c.id);
        named += (named.empty() ? "" : ", ") + c.name + " (" + c.id + ")";
    }
    if (changed_.empty()) return {};
    if (!opt_.accept_changes) {
        changed_.clear();
        return make_error(errc::invalid_argument,
                          "the scenario changed since game '" + game_id_ + "' began: the system text of " + named +
                              " differs from the one the session holds; pass --accept-changes to give the new text "
                              "as a new system message, or start the game in another store");
    }
    progress("[play] the scenario changed: the new system text of " + named + " is appended as a new message");
    meta["system_sha256"] = now;
    return store_->put_session(game_id_, meta.dump());
}

status game::apply_system_changes() {
    std::vector<play_steps::effect> effs;
    for (const auto& id : changed_) {
        const auto* c = sc_.find_character(id);
        if (!c) continue;
        std::string text = system_text_of(*c);
        const auto held = chars_.at(id)->messages();
        if (!held.empty() && held.front().content == text) continue;  // rebuilt just now: it has the new text
        effs.push_back({id, {"system", std::move(text)}});
    }
    changed_.clear();
    return apply(effs);
}

}  // namespace mnemos::agent::play_game

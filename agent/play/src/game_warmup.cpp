// The warm-up (agent/play/src/game.h warm_prefix): every character's system text prefilled before the first
// step, its progress told to on_warmup and to the game session's spectators.
#include "agent/play/src/game.h"
#include "engine/engine.h"

namespace mnemos::agent::play_game {

namespace {

json warmup_json(const warmup_progress& w) {
    return {{"kind", "warmup"},    {"character", w.character_idx}, {"n_characters", w.n_characters},
            {"name", w.name},      {"n_done", w.n_done},           {"n_tokens", w.n_tokens},
            {"skipped", w.skipped}};
}

}  // namespace

void game::tell_warmup(const warmup_progress& w) const {
    if (opt_.on_warmup) opt_.on_warmup(w);
    sessions_->notify_status(game_id_, warmup_json(w));
}

status game::warm_prefix() {
    const auto& tok = model_->tok();
    const int32_t n_chars = static_cast<int32_t>(sc_.characters.size());
    for (int32_t i = 0; i < n_chars; ++i) {
        const auto& c = sc_.characters[static_cast<size_t>(i)];
        auto s = chars_[c.id];
        std::vector<engine::token_id> sys;
        {
            const auto msgs = s->messages();
            if (msgs.empty()) continue;
            // Markup as special tokens, the scenario's text as plain text: the same tokens the session holds.
            sys = model_->chat().encode_message(tok, msgs, 0, tok.add_bos_default());
        }
        auto& cr = char_rep_[c.id];
        cr.n_system_tokens = static_cast<int32_t>(sys.size());
        warmup_progress w{i, n_chars, c.name, 0, cr.n_system_tokens, false};
        if (sys.empty()) continue;
        if (cr.n_system_tokens >= runner_->history_limit()) {
            w.skipped = true;
            tell_warmup(w);
            progress("[play] warm-up: the system text of " + c.name + " (" + c.id + ") is " +
                     std::to_string(cr.n_system_tokens) + " tokens, more than the window of " +
                     std::to_string(runner_->history_limit()) +
                     ": not prefilled; its turns and probes will end as (context full) (use a longer --ctx or a "
                     "shorter script)");
            continue;
        }
        tell_warmup(w);
        auto g = generate(sys, {}, 0, opt_.seed, false, nullptr, {}, {}, [this, &w](int32_t done, int32_t total) {
            w.n_done = done;
            w.n_tokens = total;
            tell_warmup(w);
        });
        cr.n_prefix_reused = g.info.n_reused;
        if (w.n_done != w.n_tokens) {  // everything reused: no prefill callback
            w.n_done = w.n_tokens;
            tell_warmup(w);
        }
    }
    return {};
}

}  // namespace mnemos::agent::play_game

// The table's mechanics in the game (agent/play/src/game.h): action turns, answers, the verdict, and what a
// step found or cast, recorded in its event before its effects (agent/play/table.h).
#include "agent/play/src/game.h"
#include "agent/play/table.h"
#include "agent/tooling/builtin_tools.h"

namespace mnemos::agent::play_game {

std::unique_ptr<tools::tool_registry> game::make_tools(const std::string& cid, game_tools::tool_state& st,
                                                       play_table::table_state& table, int64_t idx) {
    const std::string sid = play_character_session_id(sc_, cid);
    auto say = [this](const std::string& l) { progress(l); };
    const scenario_character* c = sc_.find_character(cid);
    std::unique_ptr<tools::tool_registry> reg;
    if (c && c->role == character_role::game_master && (!sc_.tools.builtin.empty() || !sc_.tools.game.empty())) {
        reg = game_tools::make_game_tools(sc_, st, sid, opt_.seed, idx, sessions_->store(), say);
    } else {
        reg = std::make_unique<tools::tool_registry>();
        if (c && c->role == character_role::npc)
            for (const auto& b : sc_.tools.npc)
                game_tools::add_builtin(*reg, sc_, b, st.npc_notes[cid], sid, opt_.seed, idx, sessions_->store(), say);
    }
    play_actions::add_action_tools(*reg, sc_, cid, table, ctx_);
    return reg;
}

void game::settle(step_event& ev) {
    play_actions::record_calls(sc_, ev);
    play_table::apply(table_, ev);  // what the calls found is in the table already; the vote is recorded again
    auto fired = play_table::triggered(sc_, table_, ev);
    for (const auto& r : fired) {
        const scenario_clue* k = sc_.find_clue(r.clue);
        out(words(runner_text_key::found_tag) + play_table::clue_text(sc_, *k) + "\n");
    }
    play_table::add_reveals(ev, fired);
    play_table::apply(table_, ev);
}

std::vector<play_steps::effect> game::effects_after_live(const step_event& ev) const {
    // The speaker's live session holds the messages of its own turn (the first of ev's effects for it); the rest
    // (what others hear, the clues the step revealed) is applied now.
    step_event bare = ev;
    bare.extra.erase("reveals");
    size_t n_own = 0;
    for (const auto& e : play_steps::effects(sc_, bare)) n_own += e.character == ev.speaker;
    std::vector<play_steps::effect> rest;
    for (auto& e : play_steps::effects(sc_, ev)) {
        if (e.character == ev.speaker && n_own > 0) {
            --n_own;
            continue;
        }
        rest.push_back(std::move(e));
    }
    return rest;
}

result<step_event> game::run_action(const step& s, int64_t idx, step_event ev) {
    const int32_t budget = opt_.max_tokens > 0 ? opt_.max_tokens : sc_.budgets.max_tokens_per_turn;
    auto sess = chars_.at(s.speaker);
    const turn_action action = ctx_.turn;
    ev.to.clear();  // whom or what it acts on: its call says
    auto plan = sessions_->begin_turn(sess, {{"user", play_table::action_cue(sc_, ev)}});
    if (!plan) return plan.error();
    out(words(runner_text_key::action_head, {{"speaker", display_name(s.speaker)}, {"action", ev.kind}}));
    auto live = [this, &sess](const std::vector<engine::chat_message>& msgs,
                              const std::vector<json>& extra) -> result<turn_plan> {
        return sessions_->continue_turn(sess, msgs, extra);
    };
    auto g = run_agent(s.speaker, std::move(plan.value()), &tools_, budget, idx, live, true, &table_, action);
    if (!g) {
        sessions_->end_turn(sess, {}, false);
        return g.error();
    }
    out("\n");
    // The act is the call: no reply is kept (a generation that made no call acted on nothing).
    if (auto st = sessions_->end_turn(sess, {}, false); !st.ok()) return st;
    ev.rounds = step_rounds_json(g->rounds);
    ev.context_full = g->context_full;
    ev.windowed = g->windowed;
    ev.skipped = g->rounds.empty();
    char_rep_[s.speaker].n_generated += g->info.n_generated;
    rep_.timings.push_back(
        {idx, ev.kind, s.speaker, g->seconds, g->info.n_prompt, g->info.n_reused, g->info.n_generated});
    settle(ev);
    if (auto st = apply(effects_after_live(ev)); !st.ok()) return st;
    return ev;
}

result<step_event> game::run_player_action(const step& s, step_event ev) {
    std::string target = s.target;
    std::string text = s.text;
    if (s.player_input && opt_.ask_player) {
        player_line got = opt_.ask_player({display_name(s.speaker), display_name(s.to), s.text});
        if (opt_.should_stop && opt_.should_stop()) return make_error(errc::cancelled, "interrupted at the prompt");
        if (auto cmd = play_actions::parse_player_command(got.text)) got.text = cmd->argument;
        if (ctx_.turn == turn_action::ask) {
            if (!got.text.empty()) text = got.text;
            if (!got.to.empty()) target = play_actions::find_target(sc_, got.to);
        } else if (!got.text.empty()) {
            target = play_actions::find_target(sc_, got.text);
        }
    }
    if (ctx_.turn == turn_action::ask && target.empty() && s.to != "all") target = s.to;
    if (target.empty() || (ctx_.turn == turn_action::ask && text.empty())) {
        ev.skipped = true;
        ev.to.clear();
        out(words(runner_text_key::action_head, {{"speaker", display_name(s.speaker)}, {"action", ev.kind}}) +
            words(runner_text_key::no_input) + "\n");
        settle(ev);
        return ev;
    }
    play_actions::player_command cmd{ctx_.turn, target};
    if (ctx_.turn == turn_action::ask) {
        play_table::set_asked(ev, target);
        ev.to = target;
        ev.text = text;
        out(play_steps::line_head(sc_, s.speaker, target) + text + "\n");
    } else {
        run_command(cmd, ev);
    }
    settle(ev);
    if (auto st = apply(play_steps::effects(sc_, ev)); !st.ok()) return st;
    return ev;
}

void game::run_command(const play_actions::player_command& cmd, step_event& ev) {
    const std::string target = play_actions::find_target(sc_, cmd.argument);
    const auto& ph = sc_.phases[ctx_.phase_idx];
    if (target.empty()) {
        progress(words(runner_text_key::nothing_called, {{"name", cmd.argument}}));
        return;
    }
    ev.to = target;
    if (cmd.action == turn_action::vote) {
        if (ph.kind != phase_kind::accusation) return progress(words(runner_text_key::votes_at_accusation));
        play_table::set_vote(ev, {ev.speaker, target});
        out(words(runner_text_key::votes_for,
                  {{"speaker", display_name(ev.speaker)}, {"suspect", play_table::name_of(sc_, target)}}) +
            "\n");
        return;
    }
    if (ph.kind != phase_kind::investigation && ctx_.turn != turn_action::investigate)
        return progress(words(runner_text_key::investigate_in_phase));
    auto r = play_table::investigate(sc_, table_, ev.speaker, target, ctx_.phase_idx);
    const std::string head = words(runner_text_key::investigates, {{"speaker", display_name(ev.speaker)},
                                                                   {"target", play_table::name_of(sc_, target)}});
    if (!r) {
        out(words(runner_text_key::heard, {{"speaker", head}, {"text", words(runner_text_key::nothing_more)}}) + "\n");
        return;
    }
    out(words(runner_text_key::heard,
              {{"speaker", head}, {"text", play_table::clue_text(sc_, *sc_.find_clue(r->clue))}}) +
        "\n");
    play_table::add_reveals(ev, {*r});
}

result<step_event> game::run_answer(const step& s, int64_t idx, step_event ev) {
    const step_event* asked_ev = done_ && !done_->empty() ? &done_->back() : nullptr;
    const std::string asked = asked_ev ? play_table::asked_of(*asked_ev) : std::string();
    ev.speaker = asked;
    ev.to = asked_ev ? asked_ev->speaker : std::string();
    if (!asked.empty() && sc_.find_character(asked)) {
        step answer = s;
        answer.speaker = asked;
        answer.to = ev.to;
        return run_turn(answer, idx, std::move(ev));
    }
    const scenario_player* pl = sc_.find_player(asked);
    if (pl && pl->interactive && opt_.ask_player) {
        player_line got = opt_.ask_player({pl->name, display_name(ev.to), ""});
        if (opt_.should_stop && opt_.should_stop()) return make_error(errc::cancelled, "interrupted at the prompt");
        ev.text = got.text;
    }
    ev.skipped = ev.text.empty();  // no one asked, a suspect who never speaks, or a player who said nothing
    if (!ev.text.empty()) out(play_steps::line_head(sc_, ev.speaker, ev.to) + ev.text + "\n");
    settle(ev);
    if (auto st = apply(play_steps::effects(sc_, ev)); !st.ok()) return st;
    return ev;
}

result<step_event> game::run_verdict(step_event ev) {
    ev.text = play_table::verdict_text(sc_, table_);
    out(words(runner_text_key::verdict_tag) + ev.text + "\n");
    if (auto st = apply(play_steps::effects(sc_, ev)); !st.ok()) return st;
    return ev;
}

}  // namespace mnemos::agent::play_game

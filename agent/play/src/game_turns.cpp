// One step of the game (agent/play/src/game.h): scripted lines, generated turns and probes, and the agent
// loop that generates them.
#include <future>

#include "agent/play/src/game.h"
#include "agent/play/table.h"
#include "engine/engine.h"
#include "tools/prompt.h"

namespace mnemos::agent::play_game {

namespace {

using steady = std::chrono::steady_clock;
using play_steps::step_kind;

// The loop's rounds as the step event keeps them; each result is the loop's {"result": ...} or {"error": "..."}.
std::vector<step_round> step_rounds_of(const std::vector<loop::round>& rounds) {
    std::vector<step_round> out;
    for (const auto& rd : rounds) {
        step_round r{rd.content, {}};
        for (size_t i = 0; i < rd.calls.size(); ++i) {
            step_call c{rd.calls[i].name, rd.calls[i].arguments, std::nullopt, {}};
            const json& res = rd.results[i];
            if (auto it = res.find("result"); it != res.end())
                c.result = *it;
            else
                c.error = res.value("error", "");
            r.calls.push_back(std::move(c));
        }
        out.push_back(std::move(r));
    }
    return out;
}

}  // namespace

status game::apply(const std::vector<play_steps::effect>& effs) {
    // One begin_turn per run of consecutive messages to the same character.
    for (size_t i = 0; i < effs.size();) {
        size_t j = i;
        std::vector<engine::chat_message> msgs;
        while (j < effs.size() && effs[j].character == effs[i].character) msgs.push_back(effs[j++].msg);
        auto it = chars_.find(effs[i].character);
        if (it == chars_.end()) return make_error(errc::internal, "no session for '" + effs[i].character + "'");
        auto plan = sessions_->begin_turn(it->second, msgs);
        if (!plan) return plan.error();
        if (auto st = sessions_->end_turn(it->second, {}, false); !st.ok()) return st;
        i = j;
    }
    return {};
}

game::gen_result game::generate(std::vector<engine::token_id> prompt, std::vector<std::string> stop, int32_t budget,
                                uint64_t seed, bool stream, std::shared_ptr<const engine::grammar> constraint,
                                std::string trigger, std::string token_sid,
                                std::function<void(int32_t, int32_t)> on_prefill) {
    gen_result g;
    const int32_t room = runner_->history_limit() - static_cast<int32_t>(prompt.size());
    if (room <= 1 && budget > 0) {
        g.context_full = true;
        return g;
    }
    const auto t0 = steady::now();
    engine::request r;
    r.prompt = std::move(prompt);
    r.stop = std::move(stop);
    r.max_tokens = std::max(0, std::min(budget, room - 1));
    r.sampling.temperature = opt_.temperature;
    r.sampling.seed = seed;
    r.constraint = std::move(constraint);
    r.constraint_trigger = std::move(trigger);
    r.on_prefill = std::move(on_prefill);
    std::promise<engine::finish_info> done;
    r.on_token = [this, &g, stream, sid = std::move(token_sid)](engine::token_id, std::string_view text) {
        g.text += text;
        if (!stream) return;
        out(text);
        if (!sid.empty()) sessions_->notify_token(sid, text);
    };
    r.on_finish = [&done](const engine::finish_info& info) { done.set_value(info); };
    runner_->submit(std::move(r), "play");
    g.info = done.get_future().get();
    g.seconds = seconds_since(t0);
    return g;
}

int32_t game::window() const {
    // With sparse attention (the default) the window is what the KV pool holds: nothing is cut below it.
    const int32_t n_ctx = runner_->history_limit();
    return sc_.budgets.window_tokens > 0 ? std::min(sc_.budgets.window_tokens, n_ctx) : n_ctx;
}

bool game::fit_prompt(turn_plan& plan, int32_t budget, bool& windowed) const {
    // A scenario's window_tokens bounds what a character sees of the conversation; its system message (persona,
    // script, secrets) is always whole on top of it. A message is never cut.
    int32_t limit = runner_->history_limit();
    if (sc_.budgets.window_tokens > 0) limit = std::min(limit, plan.n_first + sc_.budgets.window_tokens);
    if (!fit_to_window(plan, limit, std::max(1, std::min(budget, window() / 4)), k_page_size).ok()) return false;
    windowed = plan.context.truncated;
    return true;
}

bool game::has_tools(const std::string& cid) const { return char_tools_.count(cid) > 0; }

result<step_event> game::run_step(int64_t idx) {
    const step& s = steps_[static_cast<size_t>(idx)];
    step_event ev;
    ev.idx = idx;
    ev.kind = play_steps::step_kind_name(s.kind);
    ev.phase = sc_.phases[s.phase_idx].id;
    ev.speaker = s.speaker;
    ev.to = s.to;
    ev.audience = s.audience;
    ctx_ = {s.phase_idx,
            s.kind == step_kind::investigate ? turn_action::investigate
            : s.kind == step_kind::ask       ? turn_action::ask
            : s.kind == step_kind::vote      ? turn_action::vote
                                             : turn_action::talk,
            false};

    if (s.kind == step_kind::probe) return run_probe(s, idx, std::move(ev));
    if (s.kind == step_kind::narration && sc_.find_character(s.speaker)) return run_narration(s, idx, std::move(ev));
    if (s.kind == step_kind::turn) return run_turn(s, idx, std::move(ev));
    if (s.kind == step_kind::answer) return run_answer(s, idx, std::move(ev));
    if (s.kind == step_kind::verdict) return run_verdict(std::move(ev));
    if (s.kind == step_kind::investigate || s.kind == step_kind::ask || s.kind == step_kind::vote)
        return sc_.find_character(s.speaker) ? run_action(s, idx, std::move(ev)) : run_player_action(s, std::move(ev));
    // A scripted step: its text, or an interactive player's line.
    std::string text = s.text;
    if (s.player_input && opt_.ask_player) {
        player_line got = opt_.ask_player({display_name(s.speaker), display_name(s.to), s.text});
        // Ctrl-C at the prompt stops the game before this step: not a skipped turn (a resume asks again).
        if (opt_.should_stop && opt_.should_stop()) return make_error(errc::cancelled, "interrupted at the prompt");
        if (!got.text.empty()) text = got.text;
        if (!got.to.empty()) {
            auto id = play_steps::find_participant(sc_, got.to);
            if (id && *id != s.speaker)
                ev.to = *id;
            else
                progress(words(runner_text_key::no_one_called, {{"name", got.to}, {"to", display_name(s.to)}}));
        }
    }
    if (s.player_input && text.empty()) ev.skipped = true;
    ev.text = text;
    if (auto cmd = s.player_input ? play_actions::parse_player_command(text) : std::nullopt) {
        run_command(*cmd, ev);  // its action, not words anyone hears
        ev.text.clear();
    }
    settle(ev);
    if (!text.empty())
        out((s.kind == step_kind::line        ? play_steps::line_head(sc_, s.speaker, play_steps::addressee(ev))
             : s.kind == step_kind::narration ? words(runner_text_key::narration_tag)
                                              : words(runner_text_key::clue_tag)) +
            text + "\n");
    if (auto st = apply(play_steps::effects(sc_, ev)); !st.ok()) return st;
    return ev;
}

// On a copy: the question and any tool calls go to a fork of the context, tools act on a copy of the packs.
result<step_event> game::run_probe(const step& s, int64_t idx, step_event ev) {
    const int32_t budget = opt_.max_tokens > 0 ? opt_.max_tokens : sc_.budgets.max_tokens_per_probe;
    std::vector<engine::chat_message> msgs = chars_.at(s.speaker)->messages();
    msgs.push_back({"user", s.probe->question});
    game_tools::tool_state copy = tools_;
    play_table::table_state table_copy = table_;
    auto fork = [this, &msgs](const std::vector<engine::chat_message>& more,
                              const std::vector<json>&) -> result<turn_plan> {
        msgs.insert(msgs.end(), more.begin(), more.end());
        return plan_for_messages(*model_, msgs);
    };
    out(words(runner_text_key::probe_head,
              {{"probe", s.probe->id}, {"name", display_name(s.speaker)}, {"question", s.probe->question}}));
    auto g = run_agent(s.speaker, plan_for_messages(*model_, msgs), &copy, budget, idx, fork, false, &table_copy);
    if (!g) return g.error();
    auto sc = score_probe(*s.probe, g->text, g->called);
    if (g->context_full) sc.passed = false;
    out((g->context_full ? words(runner_text_key::context_full) : std::string()) + "\n  " +
        words(sc.passed ? runner_text_key::pass : runner_text_key::fail) + "\n");
    ev.probe = s.probe->id;
    ev.text = g->text;
    ev.rounds = step_rounds_json(g->rounds);
    ev.passed = sc.passed;
    ev.context_full = g->context_full;
    ev.windowed = g->windowed;
    rep_.timings.push_back(
        {idx, "probe", s.speaker, g->seconds, g->info.n_prompt, g->info.n_reused, g->info.n_generated});
    return ev;
}

// Generated on its session's messages plus the cue (its KV warm through the prefix cache); the text it said
// (the scripted narration when it said nothing) is the step's, and effects() appends cue and text to its session.
result<step_event> game::run_narration(const step& s, int64_t idx, step_event ev) {
    const int32_t budget = opt_.max_tokens > 0 ? opt_.max_tokens : sc_.budgets.max_tokens_per_turn;
    std::vector<engine::chat_message> msgs = chars_.at(s.speaker)->messages();
    msgs.push_back({"user", play_steps::narrate_cue(sc_, ev.phase)});
    turn_plan plan = plan_for_messages(*model_, msgs);
    out(words(runner_text_key::narration_tag));
    bool windowed = false;
    gen_result g;
    if (fit_prompt(plan, budget, windowed))
        g = generate(std::move(plan.prompt), std::move(plan.stop), budget, opt_.seed + static_cast<uint64_t>(idx), true,
                     nullptr, {}, play_character_session_id(sc_, s.speaker));
    std::string text = g.context_full ? std::string() : g.text;
    const size_t b = text.find_first_not_of(" \t\r\n"), e = text.find_last_not_of(" \t\r\n");
    text = b == std::string::npos ? std::string() : text.substr(b, e - b + 1);
    if (text.empty()) {
        text = s.text;
        out(text);
    }
    out("\n");
    ev.text = text;
    ev.windowed = windowed;
    char_rep_[s.speaker].n_generated += g.info.n_generated;
    rep_.timings.push_back(
        {idx, "narration", s.speaker, g.seconds, g.info.n_prompt, g.info.n_reused, g.info.n_generated});
    settle(ev);
    if (auto st = apply(play_steps::effects(sc_, ev)); !st.ok()) return st;
    return ev;
}

result<step_event> game::run_turn(const step& s, int64_t idx, step_event ev) {
    const int32_t budget = opt_.max_tokens > 0 ? opt_.max_tokens : sc_.budgets.max_tokens_per_turn;
    auto sess = chars_.at(s.speaker);
    auto plan = sessions_->begin_turn(sess, {{"user", play_steps::cue(sc_, s.speaker, s.to)}});
    if (!plan) return plan.error();
    out(play_steps::line_head(sc_, s.speaker, s.to));
    auto live = [this, &sess](const std::vector<engine::chat_message>& msgs,
                              const std::vector<json>& extra) -> result<turn_plan> {
        return sessions_->continue_turn(sess, msgs, extra);
    };
    auto g = run_agent(s.speaker, std::move(plan.value()), &tools_, budget, idx, live, true, &table_);
    if (!g) {
        sessions_->end_turn(sess, {}, false);
        return g.error();
    }
    out((g->context_full ? words(runner_text_key::context_full) : std::string()) + "\n");
    if (auto st = sessions_->end_turn(sess, g->text, !g->context_full); !st.ok()) return st;
    ev.text = g->text;
    ev.rounds = step_rounds_json(g->rounds);
    ev.context_full = g->context_full;
    ev.windowed = g->windowed;
    auto& cr = char_rep_[s.speaker];
    cr.n_generated += g->info.n_generated;
    rep_.timings.push_back(
        {idx, "turn", s.speaker, g->seconds, g->info.n_prompt, g->info.n_reused, g->info.n_generated});
    settle(ev);
    if (auto st = apply(effects_after_live(ev)); !st.ok()) return st;
    return ev;
}

// Drives the agent loop synchronously: each generate runs on the engine now, each run_tools runs the game's
// tools now. The loop decides the choices; this decides the prompt (the window), the budget and the seed.
result<game::agent_out> game::run_agent(const std::string& cid, turn_plan plan, game_tools::tool_state* st,
                                        int32_t budget, int64_t idx, const append_fn& append, bool live,
                                        play_table::table_state* table, turn_action action) {
    agent_out res;
    std::unique_ptr<tools::tool_registry> reg;
    if (st && table && has_tools(cid)) reg = make_tools(cid, *st, *table, idx);
    loop::loop_options lo;
    lo.max_steps = reg ? 4 : 1;
    lo.first_choice = first_choice_;
    if (reg) {
        const character_tools& ct = char_tools_.at(cid);
        lo.g_auto = ct.g_auto, lo.g_forced = ct.g_forced, lo.call_tag = call_tag_;
        if (auto it = ct.g_action.find(action); it != ct.g_action.end())
            lo.first_choice = tool_choice::required, lo.g_forced = it->second, lo.max_steps = 2;
    }
    const bool action_turn = lo.first_choice == tool_choice::required && action != turn_action::talk;
    loop::agent_loop lp(std::move(lo));
    for (auto a = lp.next();; a = lp.next()) {
        if (auto* d = std::get_if<loop::done>(&a)) {
            res.text = d->text;
            break;
        }
        if (auto* t = std::get_if<loop::run_tools>(&a)) {
            auto next = run_round(*t, *reg, lp, append);
            if (!next) return next.error();
            plan = std::move(next.value());
            if (action_turn) break;  // the action is its call
            continue;
        }
        const auto& g = std::get<loop::generate>(a);
        turn_plan p = plan;
        std::vector<std::string> stop = std::move(p.stop);
        p.prompt.insert(p.prompt.end(), g.prompt_suffix.begin(), g.prompt_suffix.end());
        stop.insert(stop.end(), g.stop.begin(), g.stop.end());
        // A forced call gets room to finish (its strings are bounded); the reply keeps the turn's budget.
        const int32_t gen_budget =
            g.choice == tool_choice::required ? std::max(budget, game_tools::k_call_tokens) : budget;
        bool windowed = false;
        if (!fit_prompt(p, gen_budget, windowed)) {
            res.context_full = true;
            break;
        }
        res.windowed = res.windowed || windowed;
        const uint64_t seed = opt_.seed + static_cast<uint64_t>(idx) + static_cast<uint64_t>(g.step) * 0x9E3779B9ull;
        auto gen = generate(std::move(p.prompt), std::move(stop), gen_budget, seed, true, g.constraint, g.trigger,
                            live ? play_character_session_id(sc_, cid) : std::string());
        res.info.n_prompt += gen.info.n_prompt;
        res.info.n_reused += gen.info.n_reused;
        res.info.n_generated += gen.info.n_generated;
        res.seconds += gen.seconds;
        if (gen.context_full) {
            res.context_full = true;
            break;
        }
        if (auto fed = lp.on_generated(std::move(gen.text)); !fed.ok()) return fed;
    }
    res.rounds = step_rounds_of(lp.rounds());
    res.called = lp.called();
    return res;
}

// The call(s) and their results: run now, streamed, appended to the context (one append: the call message and
// every result), fed back to the loop.
result<turn_plan> game::run_round(const loop::run_tools& t, const tools::tool_registry& reg, loop::agent_loop& lp,
                                  const append_fn& append) {
    std::vector<engine::chat_message> msgs{{"assistant", t.content}};
    std::vector<json> extra{{{"kind", "tool_call"}, {"round", t.step}}};
    std::vector<json> results;
    out("\n");
    for (const auto& c : t.calls) {
        json r = game_tools::run_tool_call(reg, c);
        out("  [tool] " + c.name + " " + c.arguments.dump() + " -> " + loop::shown_result(r).dump() + "\n");
        extra.push_back({{"kind", "tool_result"}, {"name", c.name}, {"round", t.step}});
        results.push_back(std::move(r));
    }
    for (auto& m : loop::tool_messages(t, results)) msgs.push_back(std::move(m));
    if (auto fed = lp.on_tool_results(std::move(results)); !fed.ok()) return fed;
    return append(msgs, extra);
}

}  // namespace mnemos::agent::play_game

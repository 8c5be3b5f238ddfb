// The game's composition (agent/play/src/game.h): runtime, tools, log, sessions, the steps, the end.
#include "agent/play/src/game.h"

#include <cstdio>
#include <future>

#include "agent/play/game_log.h"
#include "agent/play/play_report.h"
#include "engine/engine.h"
#include "tools/prompt.h"

namespace mnemos::agent::play_game {

namespace {

using steady = std::chrono::steady_clock;

}  // namespace

game::game(const scenario& sc, const play_options& o) : sc_(sc), opt_(o), steps_(play_steps::build_steps(sc)) {}

void game::teardown() {
    if (handed_out_ && opt_.on_teardown) opt_.on_teardown();
    handed_out_ = false;
    runner_.reset();
    if (db_) db_->flush();
}

result<play_report> game::run(std::shared_ptr<const engine::model> m) {
    const auto t_start = steady::now();
    model_ = std::move(m);
    game_id_ = play_game_session_id(sc_);
    rep_.scenario_id = sc_.id;
    rep_.game_session_id = game_id_;
    rep_.n_steps = static_cast<int64_t>(steps_.size());
    if (opt_.resume && opt_.store_dir.empty())
        return make_error(errc::invalid_argument, "resume needs a store (--store DIR)");
    if (auto st = open_runtime(); !st.ok()) return st;
    if (auto st = prepare_tools(); !st.ok()) return st;
    if (opt_.on_runtime) {
        handed_out_ = true;
        opt_.on_runtime(*runner_, *sessions_);
    }
    auto done = read_log();
    if (!done) return done.error();
    rep_.n_steps_resumed = static_cast<int64_t>(done->size());
    if (!done->empty())
        progress("[play] resuming " + game_id_ + " at step " + std::to_string(done->size()) + "/" +
                 std::to_string(rep_.n_steps));
    game_tools::replay_tool_calls(done.value(), tools_, sc_.game_master());
    table_ = play_table::replay(done.value());
    if (auto st = setup_sessions(done.value()); !st.ok()) return st;
    if (auto st = apply_system_changes(); !st.ok()) return st;
    if (auto st = warm_prefix(); !st.ok()) return st;
    if (auto st = play_rest(done.value()); !st.ok()) return st;
    rep_.n_steps_done = static_cast<int64_t>(done->size());
    return finish(done.value(), t_start);
}

// The engine, the store (or memory), the session manager with the scenario's shared prefix.
status game::open_runtime() {
    engine::engine_options eo;
    eo.n_threads = opt_.n_threads;
    eo.n_ctx = opt_.n_ctx;
    eo.attention = opt_.attention;
    eo.kv_bytes = opt_.kv_bytes;
    auto r = engine_runner::start(model_, eo);
    if (!r) return r.error();
    runner_ = std::move(r.value());
    if (!opt_.store_dir.empty()) {
        memory::store_options mo;
        mo.path = opt_.store_dir;
        auto opened = memory::store::open(mo);
        if (!opened) return opened.error();
        db_ = std::move(opened.value());
        memory::store* raw = db_.get();
        runner_->run_on_engine_thread([raw](engine::engine& e) { e.kv().set_store(&raw->blocks()); });
        store_ = make_durable_session_store(*db_, model_->fingerprint(), k_page_size);
    } else {
        store_ = make_memory_session_store();
    }
    sessions_ = std::make_unique<session_manager>(*model_, *store_);
    sessions_->set_shared_prefix(game_id_, shared_prefix_text(sc_));
    sessions_->set_shared_prefix(game_id_, shared_prefix_text(sc_));
    call_tag_ = model_->tok().encode(std::string(k_call_prefix), false, false);
    return {};
}

// The game master of a scenario with tools is an agent: its calls are decoded under the grammar of the
// scenario's tools (any call it starts is valid JSON for one of them).
status game::prepare_tools() {
    if (opt_.tool_choice == "auto")
        first_choice_ = tool_choice::automatic;
    else if (opt_.tool_choice == "required")
        first_choice_ = tool_choice::required;
    else
        return make_error(errc::invalid_argument, "tool_choice must be \"auto\" or \"required\"");
    for (const auto& c : sc_.characters) {
        game_tools::tool_state scratch;
        play_table::table_state scratch_table;
        auto reg = make_tools(c.id, scratch, scratch_table, 0);
        if (reg->size() == 0) continue;
        engine::grammar_options go;
        auto forced = reg->call_grammar(go);
        go.max_leading_whitespace = 1;
        auto after_tag = reg->call_grammar(go);
        if (!forced || !after_tag)
            return make_error(errc::invalid_argument,
                              "the scenario's tools: " + (forced ? after_tag.error() : forced.error()).message());
        character_tools& ct = char_tools_[c.id];
        ct.g_forced = forced.value();
        ct.g_auto = after_tag.value();
        ct.prompt = tools::render_tools_prompt(*reg);
        for (turn_action a : play_actions::offered(sc_, c.id)) {
            tools::tool_registry one;  // the action's tool alone: an action turn calls it
            if (const tools::tool* t = reg->find(play_actions::tool_name(a))) (void)one.add(*t);
            auto g = one.call_grammar(engine::grammar_options{});
            if (!g)
                return make_error(errc::internal,
                                  "the " + std::string(play_actions::tool_name(a)) + " tool: " + g.error().message());
            ct.g_action[a] = g.value();
        }
    }
    return {};
}

// The game log: what is done (checked against the steps), or a new game's metadata.
result<std::vector<step_event>> game::read_log() {
    auto meta_text = store_->get_session(game_id_);
    if (!meta_text.ok()) {
        json meta = game_log::game_meta(sc_, opt_);
        meta["system_sha256"] = system_hashes();
        if (auto st = store_->put_session(game_id_, meta.dump()); !st.ok()) return st;
        return std::vector<step_event>{};
    }
    if (!opt_.resume)
        return make_error(errc::already_exists, "the store already holds game '" + game_id_ +
                                                    "'; pass --resume to continue it, or use another store");
    json meta = json::parse(meta_text.value(), nullptr, false);
    // Different sampling settings still resume, but the game will not equal an uninterrupted run.
    if (auto note = game_log::settings_note(meta, opt_); !note.empty()) progress(note);
    if (auto st = check_system_texts(meta); !st.ok()) return st;
    auto evs = store_->read_events(game_id_);
    if (!evs) return evs.error();
    return game_log::completed_steps(evs.value(), steps_, game_id_);
}

status game::setup_sessions(const std::vector<step_event>& done) {
    auto expected = game_log::implied_messages(sc_, done);
    for (const auto& c : sc_.characters) {
        const std::string sid = play_character_session_id(sc_, c.id);
        character chr = runtime_character(sc_, c);
        chr.shared_prefix = game_id_;
        const auto& want = expected[c.id];
        session_ptr s;
        if (auto found = sessions_->find(sid); found) {
            s = found.value();
            const auto held = s->messages();
            if (!game_log::session_matches(held, want)) {
                progress("[play] rebuilding session " + sid + " (" + std::to_string(held.size()) +
                         " messages, the game log implies " + std::to_string(want.size() + 1) + ")");
                if (auto st = sessions_->remove(sid); !st.ok()) return st;
                s.reset();
            }
        }
        if (!s) {
            auto created =
                sessions_->create(sid, chr, "", has_tools(c.id) ? char_tools_.at(c.id).prompt : std::string());
            if (!created) return created.error();
            s = created.value();
            chars_[c.id] = s;
            std::vector<play_steps::effect> effs;
            for (const auto& m : want) effs.push_back({c.id, m});
            if (auto st = apply(effs); !st.ok()) return st;
        }
        chars_[c.id] = s;
        auto& cr = char_rep_[c.id];
        cr.id = c.id;
        cr.session_id = sid;
    }
    return {};
}

// Plays the steps not in the game log (up to max_steps), phase by phase, each step's event appended once done.
status game::play_rest(std::vector<step_event>& done) {
    // Play the rest, phase by phase.
    done_ = &done;
    size_t cur_phase = SIZE_MAX;
    auto phase_t0 = steady::now();
    int64_t phase_steps = 0;
    auto end_phase = [&] {
        if (cur_phase == SIZE_MAX) return;
        char buf[160];
        std::snprintf(buf, sizeof buf, "[play] phase %s done: %lld steps in %.2f s", sc_.phases[cur_phase].id.c_str(),
                      static_cast<long long>(phase_steps), seconds_since(phase_t0));
        progress(buf);
    };
    for (int64_t idx = static_cast<int64_t>(done.size()); idx < rep_.n_steps; ++idx) {
        if (opt_.max_steps >= 0 && idx >= opt_.max_steps) break;
        if (opt_.should_stop && opt_.should_stop()) {
            rep_.interrupted = true;
            break;
        }
        const step& s = steps_[static_cast<size_t>(idx)];
        if (s.phase_idx != cur_phase) {
            end_phase();
            cur_phase = s.phase_idx;
            phase_t0 = steady::now();
            phase_steps = 0;
            int64_t n = 0;
            for (const auto& x : steps_) n += x.phase_idx == cur_phase;
            const auto& ph = sc_.phases[cur_phase];
            progress("[play] phase " + std::to_string(cur_phase + 1) + "/" + std::to_string(sc_.phases.size()) + " " +
                     ph.id + " (" + phase_kind_name(ph.kind) + ") " + ph.title + ": " + std::to_string(n) + " steps");
        }
        auto ev = run_step(idx);
        if (!ev && ev.error().code() == errc::cancelled && opt_.should_stop && opt_.should_stop()) {
            rep_.interrupted = true;
            break;
        }
        if (!ev) return ev.error();
        ev->ts = unix_now();  // the time it is appended (what append_raw_event gave an event without one)
        auto seq = sessions_->append_raw_event(game_id_, event_json(ev.value()));
        if (!seq) return seq.error();
        done.push_back(std::move(ev.value()));
        ++phase_steps;
        if (opt_.on_step) opt_.on_step(idx, rep_.n_steps);
    }
    end_phase();

    return {};
}

result<play_report> game::finish(const std::vector<step_event>& done, steady::time_point t_start) {
    play_report_detail::score_probes(sc_, done, rep_);
    play_report_detail::score_turns(steps_, done, rep_, char_rep_);
    if (sc_.kind == scenario_kind::mystery) {
        rep_.clues = play_table::score_clues(sc_, table_);
        rep_.accusation = play_table::score_votes(sc_, table_);
    }
    for (const auto& c : sc_.characters) {
        auto& cr = char_rep_[c.id];
        auto s = chars_[c.id];
        cr.n_tokens = static_cast<int64_t>(s->stats().n_tokens);
        rep_.characters.push_back(cr);
    }
    std::promise<engine::kv_cache_stats> kvp;
    runner_->run_on_engine_thread([&kvp](engine::engine& e) { kvp.set_value(e.kv().stats()); });
    const auto kv = kvp.get_future().get();
    rep_.hits_resident = kv.hits_resident;
    rep_.hits_store = kv.hits_store;
    rep_.misses = kv.misses;
    rep_.seconds = seconds_since(t_start);
    rep_.transcript = play_report_detail::transcript(sc_, steps_, done);
    rep_.results_json = play_report_detail::results_json(sc_, opt_, rep_, runner_->n_ctx(), window());
    if (auto st = play_report_detail::write_file(opt_.transcript_path, rep_.transcript); !st.ok()) return st;
    if (auto st = play_report_detail::write_file(opt_.results_path, rep_.results_json + "\n"); !st.ok()) return st;
    teardown();
    return std::move(rep_);
}

}  // namespace mnemos::agent::play_game

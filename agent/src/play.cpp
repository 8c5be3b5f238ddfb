// The scenario runner (agent/play.h).
#include "agent/play.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>

#include "agent/runtime.h"
#include "engine/engine.h"
#include "memory/store.h"

namespace mnemos::agent {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

double seconds_since(steady::time_point t0) { return std::chrono::duration<double>(steady::now() - t0).count(); }

// Session ids allow [A-Za-z0-9_.-]; anything else in a scenario id becomes '_'.
std::string sanitize_id(std::string_view s) {
    std::string out(s.substr(0, 48));
    for (auto& c : out)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) c = '_';
    return out.empty() ? std::string("game") : out;
}

// One unit of the game, in play order. Scripted steps are fully determined by
// the scenario; generated ones (turn, probe, interactive player) by the game log.
enum class step_kind { narration, clue, line, turn, probe };

const char* step_kind_name(step_kind k) {
    switch (k) {
        case step_kind::narration:
            return "narration";
        case step_kind::clue:
            return "clue";
        case step_kind::line:
            return "line";
        case step_kind::turn:
            return "turn";
        case step_kind::probe:
            return "probe";
    }
    return "?";
}

struct step {
    step_kind kind = step_kind::line;
    size_t phase_idx = 0;
    std::string speaker;                // character or player id; "" for the narrator
    std::string to = "all";             // character or player id, or "all"
    std::string text;                   // scripted text
    std::vector<std::string> audience;  // clue: characters who see it (empty: everyone)
    const scenario_probe* probe = nullptr;
    bool player_input = false;  // an interactive player's turn
};

std::vector<step> build_steps(const scenario& sc) {
    std::string gm;
    for (const auto& c : sc.characters)
        if (c.role == character_role::game_master) {
            gm = c.id;
            break;
        }
    std::vector<step> steps;
    for (size_t pi = 0; pi < sc.phases.size(); ++pi) {
        const auto& ph = sc.phases[pi];
        if (!ph.narration.empty()) {
            step s;
            s.kind = step_kind::narration;
            s.phase_idx = pi;
            s.speaker = gm;
            s.text = ph.narration;
            steps.push_back(std::move(s));
        }
        for (const auto& cl : sc.clues) {
            if (cl.available_from != ph.id) continue;
            step s;
            s.kind = step_kind::clue;
            s.phase_idx = pi;
            s.speaker = gm;
            s.text = "Clue: " + cl.title + ". " + cl.text;
            for (const auto& v : cl.visible_to)
                if (sc.find_character(v)) s.audience.push_back(v);
            if (!cl.visible_to.empty() && s.audience.empty()) continue;  // seen by players only
            steps.push_back(std::move(s));
        }
        std::vector<scripted_turn> turns = ph.turns;
        if (ph.kind == phase_kind::history && sc.generator && sc.generator->phase == ph.id) {
            auto gen = generate_history(sc, sc.generator->seed);
            turns.insert(turns.end(), gen.begin(), gen.end());
        }
        const int32_t n_turns = static_cast<int32_t>(turns.size());
        auto add_probes = [&](int32_t at) {
            for (const auto& p : sc.probes) {
                if (p.at_phase != ph.id) continue;
                const int32_t pt = (p.at_turn < 0 || p.at_turn > n_turns) ? n_turns : p.at_turn;
                if (pt != at) continue;
                step s;
                s.kind = step_kind::probe;
                s.phase_idx = pi;
                s.speaker = p.asked_to;
                s.probe = &p;
                steps.push_back(std::move(s));
            }
        };
        for (int32_t t = 0; t < n_turns; ++t) {
            add_probes(t);
            const auto& tr = turns[static_cast<size_t>(t)];
            step s;
            s.phase_idx = pi;
            s.speaker = tr.speaker;
            s.to = tr.to.empty() ? "all" : tr.to;
            if (tr.interactive && sc.find_character(tr.speaker)) {
                s.kind = step_kind::turn;
            } else {
                s.kind = step_kind::line;
                s.text = tr.line;
                s.player_input = tr.interactive;
            }
            steps.push_back(std::move(s));
        }
        add_probes(n_turns);
    }
    return steps;
}

struct effect {
    std::string character;  // character id
    engine::chat_message msg;
};

// The game: runtime objects, the steps and what happened.
class game {
  public:
    game(const scenario& sc, const play_options& o) : sc_(sc), opt_(o), steps_(build_steps(sc)) {}

    result<play_report> run(std::shared_ptr<const engine::model> m);

  private:
    std::string display_name(const std::string& id) const {
        if (id.empty()) return "Narrator";
        if (id == "all") return "everyone";
        if (auto c = sc_.find_character(id)) return c->name;
        if (auto p = sc_.find_player(id)) return p->name;
        return id;
    }
    std::string cue(const step& s) const {
        return "(It is your turn, " + display_name(s.speaker) + ". Speak to " + display_name(s.to) + ".)";
    }
    void out(std::string_view text) const {
        if (opt_.on_output) opt_.on_output(text);
    }
    void progress(const std::string& line) const {
        if (opt_.on_progress) opt_.on_progress(line);
    }

    // The characters who hear a step's text (never the speaker).
    std::vector<std::string> listeners(const json& ev) const;
    // Every message a completed step appends, derived from its event alone.
    std::vector<effect> effects(const json& ev) const;
    status apply(const std::vector<effect>& effs);
    status setup_sessions(const std::vector<json>& done);
    status warm_prefix();
    result<json> run_step(int64_t idx);
    std::string transcript_line(const json& ev) const;

    struct gen_result {
        std::string text;
        engine::finish_info info;
        double seconds = 0;
        bool context_full = false;
    };
    gen_result generate(std::vector<engine::token_id> prompt, std::vector<std::string> stop, int32_t budget,
                        int64_t idx, bool stream);

    const scenario& sc_;
    const play_options& opt_;
    std::vector<step> steps_;
    std::shared_ptr<const engine::model> model_;
    std::unique_ptr<memory::store> db_;
    std::unique_ptr<session_store_i> store_;
    std::unique_ptr<engine_runner> runner_;
    std::unique_ptr<session_manager> sessions_;
    std::string game_id_;
    std::map<std::string, session_ptr> chars_;  // character id -> session
    play_report rep_;
    std::map<std::string, character_report> char_rep_;
};

std::vector<std::string> game::listeners(const json& ev) const {
    const std::string speaker = ev.value("speaker", "");
    const std::string to = ev.value("to", "all");
    std::vector<std::string> v;
    if (ev.contains("audience") && ev["audience"].is_array() && !ev["audience"].empty()) {
        for (const auto& a : ev["audience"])
            if (a.is_string() && a.get<std::string>() != speaker) v.push_back(a.get<std::string>());
        return v;
    }
    for (const auto& c : sc_.characters)
        if (c.id != speaker && (to == "all" || to == c.id)) v.push_back(c.id);
    return v;
}

std::vector<effect> game::effects(const json& ev) const {
    std::vector<effect> e;
    const std::string kind = ev.value("kind", "");
    if (kind == "probe") return e;
    const std::string speaker = ev.value("speaker", "");
    const std::string text = ev.value("text", "");
    const bool is_char = sc_.find_character(speaker) != nullptr;
    if (kind == "turn") {
        step s;
        s.speaker = speaker;
        s.to = ev.value("to", "all");
        e.push_back({speaker, {"user", cue(s)}});
        if (!ev.value("context_full", false)) e.push_back({speaker, {"assistant", text}});
    } else if (is_char && !text.empty()) {
        e.push_back({speaker, {"assistant", text}});
    }
    if (!text.empty())
        for (const auto& l : listeners(ev)) e.push_back({l, {"user", display_name(speaker) + ": " + text}});
    return e;
}

status game::apply(const std::vector<effect>& effs) {
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

// Creates the character sessions, or on resume checks each against the
// messages the completed steps imply and rebuilds the ones that differ (a
// step interrupted after some of its messages were written).
status game::setup_sessions(const std::vector<json>& done) {
    std::map<std::string, std::vector<engine::chat_message>> expected;
    for (const auto& ev : done)
        for (auto& e : effects(ev)) expected[e.character].push_back(e.msg);
    for (const auto& c : sc_.characters) {
        const std::string sid = play_character_session_id(sc_, c.id);
        character chr;
        chr.name = c.name;
        chr.persona = c.persona;
        chr.public_knowledge = c.public_knowledge;
        chr.private_knowledge = c.private_script;
        chr.secrets = c.secrets;
        chr.goals = c.goals;
        chr.shared_prefix = game_id_;
        const auto& want = expected[c.id];
        session_ptr s;
        if (auto found = sessions_->find(sid); found) {
            s = found.value();
            bool same = !s->messages.empty() && s->messages.size() == want.size() + 1;
            for (size_t i = 0; same && i < want.size(); ++i)
                same = s->messages[i + 1].role == want[i].role && s->messages[i + 1].content == want[i].content;
            if (!same) {
                progress("[play] rebuilding session " + sid + " (" + std::to_string(s->messages.size()) +
                         " messages, the game log implies " + std::to_string(want.size() + 1) + ")");
                if (auto st = sessions_->remove(sid); !st.ok()) return st;
                s.reset();
            }
        }
        if (!s) {
            auto created = sessions_->create(sid, chr, "");
            if (!created) return created.error();
            s = created.value();
            chars_[c.id] = s;
            std::vector<effect> effs;
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

// Prefills each character's system message once (prefill only), in cast
// order: the first computes (or loads from the store) the shared prefix, the
// others reuse its pages.
status game::warm_prefix() {
    const auto& tok = model_->tok();
    for (const auto& c : sc_.characters) {
        auto s = chars_[c.id];
        std::vector<engine::token_id> sys;
        {
            std::lock_guard lk(s->mu);
            if (s->messages.empty()) continue;
            const std::string text = model_->chat().render_message(s->messages, 0);
            sys = tok.encode(text, tok.add_bos_default(), true);
        }
        auto& cr = char_rep_[c.id];
        cr.n_system_tokens = static_cast<int32_t>(sys.size());
        if (sys.empty() || static_cast<int32_t>(sys.size()) >= runner_->n_ctx()) continue;
        auto g = generate(sys, {}, 0, 0, false);
        cr.n_prefix_reused = g.info.n_reused;
    }
    return {};
}

game::gen_result game::generate(std::vector<engine::token_id> prompt, std::vector<std::string> stop, int32_t budget,
                                int64_t idx, bool stream) {
    gen_result g;
    const int32_t room = runner_->n_ctx() - static_cast<int32_t>(prompt.size());
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
    r.sampling.seed = opt_.seed + static_cast<uint64_t>(idx);
    std::promise<engine::finish_info> done;
    r.on_token = [this, &g, stream](engine::token_id, std::string_view text) {
        g.text += text;
        if (stream) out(text);
    };
    r.on_finish = [&done](const engine::finish_info& info) { done.set_value(info); };
    runner_->submit(std::move(r));
    g.info = done.get_future().get();
    g.seconds = seconds_since(t0);
    return g;
}

result<json> game::run_step(int64_t idx) {
    const step& s = steps_[static_cast<size_t>(idx)];
    json ev = {
        {"type", "step"},       {"idx", idx}, {"kind", step_kind_name(s.kind)}, {"phase", sc_.phases[s.phase_idx].id},
        {"speaker", s.speaker}, {"to", s.to}};
    if (!s.audience.empty()) ev["audience"] = s.audience;
    const int32_t turn_budget = opt_.max_tokens > 0 ? opt_.max_tokens : sc_.budgets.max_tokens_per_turn;
    const int32_t probe_budget = opt_.max_tokens > 0 ? opt_.max_tokens : sc_.budgets.max_tokens_per_probe;
    const std::string head = display_name(s.speaker) + " -> " + display_name(s.to) + ": ";

    if (s.kind == step_kind::probe) {
        auto sess = chars_.at(s.speaker);
        std::vector<engine::token_id> prompt;
        {
            std::lock_guard lk(sess->mu);
            std::vector<engine::chat_message> msgs = sess->messages;
            msgs.push_back({"user", s.probe->question});
            prompt = sess->tokens;
            const auto& tok = model_->tok();
            const auto q = tok.encode(model_->chat().render_message(msgs, msgs.size() - 1),
                                      prompt.empty() && tok.add_bos_default(), true);
            prompt.insert(prompt.end(), q.begin(), q.end());
            const auto gp = tok.encode(model_->chat().generation_prompt(), false, true);
            prompt.insert(prompt.end(), gp.begin(), gp.end());
        }
        out("[probe " + s.probe->id + "] " + display_name(s.speaker) + ", " + s.probe->question + "\n  answer: ");
        auto g = generate(std::move(prompt), model_->chat().stop_strings(), probe_budget, idx, true);
        auto sc = score_probe(*s.probe, g.text);
        if (g.context_full) sc.passed = false;
        out(std::string(g.context_full ? "(context full)" : "") + "\n  " + (sc.passed ? "PASS" : "FAIL") + "\n");
        ev["probe"] = s.probe->id;
        ev["text"] = g.text;
        ev["passed"] = sc.passed;
        if (g.context_full) ev["context_full"] = true;
        rep_.timings.push_back(
            {idx, "probe", s.speaker, g.seconds, g.info.n_prompt, g.info.n_reused, g.info.n_generated});
        return ev;
    }
    if (s.kind == step_kind::turn) {
        auto sess = chars_.at(s.speaker);
        auto plan = sessions_->begin_turn(sess, {{"user", cue(s)}});
        if (!plan) return plan.error();
        out(head);
        auto g = generate(std::move(plan->prompt), std::move(plan->stop), turn_budget, idx, true);
        out(g.context_full ? "(context full)\n" : "\n");
        if (auto st = sessions_->end_turn(sess, g.text, !g.context_full); !st.ok()) return st;
        ev["text"] = g.text;
        if (g.context_full) ev["context_full"] = true;
        auto& cr = char_rep_[s.speaker];
        cr.n_generated += g.info.n_generated;
        rep_.timings.push_back(
            {idx, "turn", s.speaker, g.seconds, g.info.n_prompt, g.info.n_reused, g.info.n_generated});
        std::vector<effect> rest;
        for (auto& e : effects(ev))
            if (e.character != s.speaker) rest.push_back(std::move(e));
        if (auto st = apply(rest); !st.ok()) return st;
        return ev;
    }
    std::string text = s.text;
    if (s.player_input) {
        text = opt_.ask_player ? opt_.ask_player(display_name(s.speaker)) : std::string();
        if (text.empty()) ev["skipped"] = true;
    }
    ev["text"] = text;
    if (!text.empty())
        out((s.kind == step_kind::line ? head : "[" + std::string(step_kind_name(s.kind)) + "] ") + text + "\n");
    if (auto st = apply(effects(ev)); !st.ok()) return st;
    return ev;
}

std::string game::transcript_line(const json& ev) const {
    const std::string kind = ev.value("kind", "");
    const std::string speaker = ev.value("speaker", "");
    const std::string text = ev.value("text", "");
    if (kind == "probe") {
        const auto* p = sc_.find_character(speaker);
        std::string q;
        for (const auto& pr : sc_.probes)
            if (pr.id == ev.value("probe", "")) q = pr.question;
        return "[probe " + ev.value("probe", "") + " -> " + (p ? p->name : speaker) + "] " + q + "\n  answer: " + text +
               "\n  " + (ev.value("passed", false) ? "PASS" : "FAIL") + "\n";
    }
    if (kind == "narration" || kind == "clue") return "[" + kind + "] " + text + "\n";
    std::string s = display_name(speaker) + " -> " + display_name(ev.value("to", "all")) + ": " + text;
    if (ev.value("context_full", false)) s += "(context full)";
    if (ev.value("skipped", false)) s += "(no input)";
    return s + "\n";
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

    engine::engine_options eo;
    eo.n_threads = opt_.n_threads;
    eo.n_ctx = opt_.n_ctx;
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
        store_ = make_durable_session_store(*db_, model_->fingerprint(), 16);
    } else {
        store_ = make_memory_session_store();
    }
    sessions_ = std::make_unique<session_manager>(*model_, *store_);
    sessions_->set_shared_prefix(game_id_, shared_prefix_text(sc_));

    // The game log: what is done.
    std::vector<json> done;
    if (auto meta_text = store_->get_session(game_id_); meta_text.ok()) {
        if (!opt_.resume)
            return make_error(errc::unsupported, "the store already holds game '" + game_id_ +
                                                     "'; pass --resume to continue it, or use another store");
        // Different sampling settings still resume, but the game will not equal an uninterrupted run.
        const json meta = json::parse(meta_text.value(), nullptr, false);
        if (meta.is_object() &&
            (meta.value("temperature", 0.0) != static_cast<double>(opt_.temperature) ||
             meta.value("seed", uint64_t(0)) != opt_.seed || meta.value("max_tokens", 0) != opt_.max_tokens))
            progress("[play] note: the game was started with temperature " + meta.value("temperature", json()).dump() +
                     ", seed " + meta.value("seed", json()).dump() + ", max tokens " +
                     meta.value("max_tokens", json()).dump() + "; continuing with this run's settings");
        auto evs = store_->read_events(game_id_);
        if (!evs) return evs.error();
        for (const auto& e : evs.value()) {
            json ev = json::parse(e, nullptr, false);
            if (ev.is_discarded() || !ev.is_object() || ev.value("type", "") != "step") continue;
            const int64_t idx = static_cast<int64_t>(done.size());
            if (ev.value("idx", int64_t(-1)) != idx || idx >= rep_.n_steps ||
                ev.value("kind", "") != step_kind_name(steps_[static_cast<size_t>(idx)].kind))
                return make_error(errc::corrupt, "game log of '" + game_id_ + "' does not match the scenario at step " +
                                                     std::to_string(idx));
            done.push_back(std::move(ev));
        }
    } else {
        json meta = {{"kind", "game"},
                     {"scenario", sc_.id},
                     {"temperature", opt_.temperature},
                     {"seed", opt_.seed},
                     {"max_tokens", opt_.max_tokens}};
        if (auto st = store_->put_session(game_id_, meta.dump()); !st.ok()) return st;
    }
    rep_.n_steps_resumed = static_cast<int64_t>(done.size());
    if (!done.empty())
        progress("[play] resuming " + game_id_ + " at step " + std::to_string(done.size()) + "/" +
                 std::to_string(rep_.n_steps));
    if (auto st = setup_sessions(done); !st.ok()) return st;
    if (auto st = warm_prefix(); !st.ok()) return st;

    // Play the rest, phase by phase.
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
        if (!ev) return ev.error();
        auto seq = store_->append_event(game_id_, ev->dump());
        if (!seq) return seq.error();
        done.push_back(std::move(ev.value()));
        ++phase_steps;
        if (opt_.on_step) opt_.on_step(idx, rep_.n_steps);
    }
    end_phase();

    // Results.
    for (const auto& ev : done) {
        if (ev.value("kind", "") != "probe") continue;
        for (const auto& p : sc_.probes)
            if (p.id == ev.value("probe", "")) {
                probe_result pr{p.id,
                                p.asked_to,
                                p.question,
                                ev.value("text", ""),
                                score_probe(p, ev.value("text", "")),
                                ev.value("context_full", false)};
                if (pr.context_full) pr.score.passed = false;
                rep_.n_probes_passed += pr.score.passed;
                rep_.probes.push_back(std::move(pr));
            }
    }
    for (const auto& ev : done)
        if (ev.value("kind", "") == "turn" && !ev.value("context_full", false))
            ++char_rep_[ev.value("speaker", "")].n_turns;
    for (const auto& c : sc_.characters) {
        auto& cr = char_rep_[c.id];
        auto s = chars_[c.id];
        std::lock_guard lk(s->mu);
        cr.n_tokens = static_cast<int64_t>(s->tokens.size());
        rep_.characters.push_back(cr);
    }
    std::promise<engine::kv_cache_stats> kvp;
    runner_->run_on_engine_thread([&kvp](engine::engine& e) { kvp.set_value(e.kv().stats()); });
    const auto kv = kvp.get_future().get();
    rep_.hits_resident = kv.hits_resident;
    rep_.hits_store = kv.hits_store;
    rep_.misses = kv.misses;
    runner_.reset();
    if (db_) db_->flush();
    rep_.seconds = seconds_since(t_start);

    std::string tr = sc_.title + "\n";
    size_t last_phase = SIZE_MAX;
    for (size_t i = 0; i < done.size(); ++i) {
        if (steps_[i].phase_idx != last_phase) {
            last_phase = steps_[i].phase_idx;
            tr += "\n== " + sc_.phases[last_phase].title + " ==\n";
        }
        tr += transcript_line(done[i]);
    }
    rep_.transcript = std::move(tr);

    json res = {{"scenario", sc_.id},       {"title", sc_.title},
                {"game_session", game_id_}, {"temperature", opt_.temperature},
                {"seed", opt_.seed},        {"max_tokens", opt_.max_tokens},
                {"steps", rep_.n_steps},    {"steps_resumed", rep_.n_steps_resumed},
                {"seconds", rep_.seconds}};
    json probes = json::array();
    for (const auto& p : rep_.probes)
        probes.push_back({{"id", p.id},
                          {"asked_to", p.asked_to},
                          {"question", p.question},
                          {"answer", p.answer},
                          {"passed", p.score.passed},
                          {"missing", p.score.missing},
                          {"revealed", p.score.revealed},
                          {"tools_missing", p.score.tools_missing},
                          {"context_full", p.context_full}});
    res["probes"] = probes;
    const size_t n_probes = rep_.probes.size();
    res["score"] = {{"passed", rep_.n_probes_passed},
                    {"total", n_probes},
                    {"fraction", n_probes ? double(rep_.n_probes_passed) / double(n_probes) : 0.0}};
    json chars = json::array();
    for (const auto& c : rep_.characters)
        chars.push_back({{"id", c.id},
                         {"session", c.session_id},
                         {"tokens", c.n_tokens},
                         {"generated", c.n_generated},
                         {"turns", c.n_turns},
                         {"system_tokens", c.n_system_tokens},
                         {"prefix_reused", c.n_prefix_reused}});
    res["characters"] = chars;
    res["prefix_cache"] = {
        {"hits_resident", rep_.hits_resident}, {"hits_store", rep_.hits_store}, {"misses", rep_.misses}};
    json turns = json::array();
    for (const auto& t : rep_.timings)
        turns.push_back({{"step", t.step_idx},
                         {"kind", t.kind},
                         {"speaker", t.speaker},
                         {"seconds", t.seconds},
                         {"prompt", t.n_prompt},
                         {"reused", t.n_reused},
                         {"generated", t.n_generated}});
    res["turns"] = turns;
    rep_.results_json = res.dump(2);

    auto write = [](const std::string& path, const std::string& text) -> status {
        if (path.empty()) return {};
        std::ofstream f(path, std::ios::binary);
        f << text;
        if (!f) return make_error(errc::io_error, "cannot write " + path);
        return {};
    };
    if (auto st = write(opt_.transcript_path, rep_.transcript); !st.ok()) return st;
    if (auto st = write(opt_.results_path, rep_.results_json + "\n"); !st.ok()) return st;
    return std::move(rep_);
}

}  // namespace

std::string play_game_session_id(const scenario& sc) { return sanitize_id(sc.id) + ".game"; }

std::string play_character_session_id(const scenario& sc, std::string_view character_id) {
    return sanitize_id(sc.id) + "." + sanitize_id(character_id);
}

result<play_report> play_scenario(const scenario& sc, std::shared_ptr<const engine::model> m,
                                  const play_options& options) {
    if (!m) return make_error(errc::invalid_argument, "no model");
    game g(sc, options);
    return g.run(std::move(m));
}

}  // namespace mnemos::agent

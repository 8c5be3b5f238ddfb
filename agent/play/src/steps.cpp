// The game as data (agent/play/steps.h).
#include "agent/play/steps.h"

#include <cctype>

#include "agent/play/table.h"
#include "agent/scenario/runner_text.h"
#include "agent/scenario/text_normalize.h"
#include "tools/prompt.h"

namespace mnemos::agent::play_steps {

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
        case step_kind::investigate:
            return "investigate";
        case step_kind::ask:
            return "ask";
        case step_kind::vote:
            return "vote";
        case step_kind::answer:
            return "answer";
        case step_kind::verdict:
            return "verdict";
    }
    return "?";
}

namespace {

// What opens phase pi: its narration, the clues released then, and the verdict of a mystery's reveal.
void opening_steps(const scenario& sc, size_t pi, const std::string& gm, std::vector<step>& steps) {
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
        if (!play_table::released_at(sc, cl, pi)) continue;
        step s;
        s.kind = step_kind::clue;
        s.phase_idx = pi;
        s.speaker = gm;
        s.text = runner_text(sc, runner_text_key::clue, {{"title", cl.title}, {"text", cl.text}});
        for (const auto& v : play_table::clue_audience(cl))
            if (sc.find_character(v)) s.audience.push_back(v);
        if (!cl.visible_to.empty() && s.audience.empty()) continue;  // seen by players only
        steps.push_back(std::move(s));
    }
    if (ph.kind == phase_kind::reveal && sc.kind == scenario_kind::mystery && !sc.solution.empty()) {
        step s;
        s.kind = step_kind::verdict;
        s.phase_idx = pi;
        s.speaker = gm;
        steps.push_back(std::move(s));
    }
}

// The turns of phase pi: its policy's, then the generated history of a history phase.
std::vector<scripted_turn> phase_turns(const scenario& sc, const scenario_phase& ph) {
    std::vector<scripted_turn> turns = play_table::policy_turns(sc, ph);
    if (ph.kind == phase_kind::history && sc.generator && sc.generator->phase == ph.id) {
        auto gen = generate_history(sc, sc.generator->seed);
        turns.insert(turns.end(), gen.begin(), gen.end());
    }
    return turns;
}

// The probes of phase pi asked before turn `at` (n_turns: at the phase's end, also for out-of-range turns).
void probe_steps(const scenario& sc, size_t pi, int32_t at, int32_t n_turns, std::vector<step>& steps) {
    for (const auto& p : sc.probes) {
        if (p.at_phase != sc.phases[pi].id) continue;
        const int32_t pt = (p.at_turn < 0 || p.at_turn > n_turns) ? n_turns : p.at_turn;
        if (pt != at) continue;
        step s;
        s.kind = step_kind::probe;
        s.phase_idx = pi;
        s.speaker = p.asked_to;
        s.probe = &p;
        steps.push_back(std::move(s));
    }
}

// One scripted turn: an action (and the answer an ask calls for), a model's turn, or a line.
void turn_step(const scenario& sc, size_t pi, const scripted_turn& tr, std::vector<step>& steps) {
    step s;
    s.phase_idx = pi;
    s.speaker = tr.speaker;
    s.to = tr.to.empty() ? "all" : tr.to;
    if (tr.action != turn_action::talk) {
        play_table::action_step(sc, tr, s);
        steps.push_back(std::move(s));
        if (tr.action != turn_action::ask) return;
        step answer;  // whoever the question addressed: known once it is asked
        answer.kind = step_kind::answer;
        answer.phase_idx = pi;
        steps.push_back(std::move(answer));
        return;
    }
    if (tr.interactive && sc.find_character(tr.speaker)) {
        s.kind = step_kind::turn;
        s.expect_tools = tr.expect_tools;
    } else {
        s.kind = step_kind::line;
        s.text = tr.line;
        const scenario_player* pl = sc.find_player(tr.speaker);
        s.player_input = tr.interactive || (pl && pl->interactive);
    }
    steps.push_back(std::move(s));
}

}  // namespace

// The order of the steps it pushes is the game (a resumed run checks its log against it).
std::vector<step> build_steps(const scenario& sc) {
    std::string gm;
    for (const auto& c : sc.characters)
        if (c.role == character_role::game_master) {
            gm = c.id;
            break;
        }
    std::vector<step> steps;
    for (size_t pi = 0; pi < sc.phases.size(); ++pi) {
        opening_steps(sc, pi, gm, steps);
        const std::vector<scripted_turn> turns = phase_turns(sc, sc.phases[pi]);
        const int32_t n_turns = static_cast<int32_t>(turns.size());
        for (int32_t t = 0; t < n_turns; ++t) {
            probe_steps(sc, pi, t, n_turns, steps);
            turn_step(sc, pi, turns[static_cast<size_t>(t)], steps);
        }
        probe_steps(sc, pi, n_turns, n_turns, steps);
    }
    return steps;
}

std::string display_name(const scenario& sc, const std::string& id) {
    if (id.empty()) return runner_text(sc, runner_text_key::narrator);
    if (id == "all") return runner_text(sc, runner_text_key::everyone);
    if (auto c = sc.find_character(id)) return c->name;
    if (auto p = sc.find_player(id)) return p->name;
    return id;
}

std::optional<std::string> find_participant(const scenario& sc, std::string_view id_or_name) {
    // Compared as probe matching compares: full-width, case and spacing folded, surrounding spaces ignored.
    std::string want = scenario_text::normalize_for_match(id_or_name);
    while (!want.empty() && want.back() == ' ') want.pop_back();
    if (!want.empty() && want.front() == ' ') want.erase(0, 1);
    auto same = [&](std::string_view s) { return !s.empty() && scenario_text::normalize_for_match(s) == want; };
    if (same("all") || same("everyone") || same(runner_text(sc, runner_text_key::everyone))) return "all";
    for (const auto& c : sc.characters)
        if (same(c.id) || same(c.name)) return c.id;
    for (const auto& p : sc.players)
        if (same(p.id) || same(p.name)) return p.id;
    return std::nullopt;
}

std::string cue(const scenario& sc, const std::string& speaker, const std::string& to) {
    return runner_text(sc, runner_text_key::cue,
                       {{"speaker", display_name(sc, speaker)}, {"to", display_name(sc, to)}});
}

std::string narrate_cue(const scenario& sc, const std::string& phase_id) {
    const scenario_phase* ph = sc.find_phase(phase_id);
    return runner_text(sc, runner_text_key::narrate,
                       {{"title", ph ? ph->title : phase_id}, {"text", ph ? ph->narration : std::string()}});
}

std::string line_head(const scenario& sc, const std::string& speaker, const std::string& to) {
    return runner_text(sc, runner_text_key::line_head,
                       {{"speaker", display_name(sc, speaker)}, {"to", display_name(sc, to)}});
}

const std::string& addressee(const step_event& ev) {
    static const std::string all = "all";
    return ev.to.empty() ? all : ev.to;
}

std::vector<std::string> listeners(const scenario& sc, const step_event& ev) {
    std::vector<std::string> v;
    if (!ev.audience.empty()) {
        for (const auto& a : ev.audience)
            if (a != ev.speaker) v.push_back(a);
        return v;
    }
    const std::string& to = ev.kind == "answer" ? std::string("all") : addressee(ev);  // answers are public
    for (const auto& c : sc.characters)
        if (c.id != ev.speaker && (to == "all" || to == c.id)) v.push_back(c.id);
    return v;
}

namespace {

// What the model was shown of a call: its result, else {"error": "..."} (the tool response of a failed call).
nlohmann::json shown(const step_call& c) { return c.result ? *c.result : nlohmann::json{{"error", c.error}}; }

}  // namespace

std::vector<effect> effects(const scenario& sc, const step_event& ev) {
    std::vector<effect> e;
    if (ev.kind == "probe") return e;
    if (play_table::is_action_kind(ev.kind)) {
        e = play_table::action_effects(sc, ev);
        play_table::add_reveal_effects(sc, ev, e);
        return e;
    }
    const std::string& speaker = ev.speaker;
    const std::string& text = ev.text;
    const bool is_char = sc.find_character(speaker) != nullptr;
    if (ev.kind == "turn" || (ev.kind == "answer" && is_char && !ev.skipped)) {
        e.push_back({speaker, {"user", cue(sc, speaker, addressee(ev))}});
        for (const auto& rd : step_rounds(ev)) {
            e.push_back({speaker, {"assistant", rd.content}});
            for (const auto& c : rd.calls)
                e.push_back({speaker, {"tool", tools::render_tool_response(c.name, shown(c))}});
        }
        if (!ev.context_full) e.push_back({speaker, {"assistant", text}});
    } else if (is_char && !text.empty() && ev.kind != "clue") {  // the game master does not keep the clues it hands out
        // It opened the phase in its own words: what it was asked, then what it said.
        if (ev.kind == "narration") e.push_back({speaker, {"user", narrate_cue(sc, ev.phase)}});
        e.push_back({speaker, {"assistant", text}});
    }
    if (!text.empty())
        for (const auto& l : listeners(sc, ev))
            e.push_back({l,
                         {"user", runner_text(sc, runner_text_key::heard,
                                              {{"speaker", display_name(sc, speaker)}, {"text", text}})}});
    play_table::add_reveal_effects(sc, ev, e);
    return e;
}

std::vector<std::string> tools_called(const step_event& ev) {
    std::vector<std::string> v;
    for (const auto& rd : step_rounds(ev))
        for (const auto& c : rd.calls) v.push_back(c.name);
    return v;
}

std::string transcript_line(const scenario& sc, const step_event& ev) {
    const std::string& speaker = ev.speaker;
    const std::string& text = ev.text;
    std::string calls;  // the step's tool calls, one line each, before its text
    for (const auto& rd : step_rounds(ev))
        for (const auto& c : rd.calls)
            calls += "  [tool] " + c.name + " " + c.arguments.dump() + " -> " +
                     (c.result ? c.result->dump() : "error: " + c.error) + "\n";
    if (ev.kind == "probe") {
        const auto* p = sc.find_character(speaker);
        const std::string probe = ev.probe.value_or("");
        std::string q;
        for (const auto& pr : sc.probes)
            if (pr.id == probe) q = pr.question;
        return runner_text(sc, runner_text_key::probe_line,
                           {{"probe", probe}, {"name", p ? p->name : speaker}, {"question", q}}) +
               calls + runner_text(sc, runner_text_key::probe_answer, {{"text", text}}) + "  " +
               runner_text(sc, ev.passed.value_or(false) ? runner_text_key::pass : runner_text_key::fail) + "\n";
    }
    if (ev.kind == "narration") return runner_text(sc, runner_text_key::narration_tag) + text + "\n";
    if (ev.kind == "clue") return runner_text(sc, runner_text_key::clue_tag) + text + "\n";
    if (play_table::is_action_kind(ev.kind)) return calls + play_table::action_transcript(sc, ev);
    std::string s = calls + line_head(sc, speaker, addressee(ev)) + text;
    if (ev.context_full) s += runner_text(sc, runner_text_key::context_full);
    if (ev.skipped) s += runner_text(sc, runner_text_key::no_input);
    return s + "\n" + play_table::reveal_transcript(sc, ev);
}

// Session ids allow [A-Za-z0-9_.-]; anything else in a scenario id becomes '_'.
std::string sanitize_id(std::string_view s) {
    std::string out(s.substr(0, 48));
    for (auto& c : out)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) c = '_';
    return out.empty() ? std::string("game") : out;
}

}  // namespace mnemos::agent::play_steps

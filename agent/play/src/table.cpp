// The table's mechanics (agent/play/table.h).
#include "agent/play/table.h"

#include <algorithm>

#include "agent/play/steps.h"
#include "agent/scenario/runner_text.h"
#include "agent/scenario/text_normalize.h"
#include "agent/scenario/text_util.h"
#include "tools/prompt.h"

namespace mnemos::agent::play_table {

using json = nlohmann::json;
using play_steps::effect;

std::string name_of(const scenario& sc, const std::string& id) {
    if (const auto* s = sc.find_suspect(id)) return s->name;
    if (const auto* l = sc.find_location(id)) return l->name;
    return play_steps::display_name(sc, id);
}

namespace {

size_t phase_index(const scenario& sc, const std::string& id) {
    for (size_t i = 0; i < sc.phases.size(); ++i)
        if (sc.phases[i].id == id) return i;
    return SIZE_MAX;
}

// Whether a found clue may be found in phase pi (its available_from reached, or none).
bool available(const scenario& sc, const scenario_clue& k, size_t pi) {
    return k.available_from.empty() || phase_index(sc, k.available_from) <= pi;
}

// Whether the text says any of the words, compared as probe matching compares (width, case, numerals, times).
bool contains_any(const std::string& text, const std::vector<std::string>& words) {
    const std::string said = scenario_text::normalize_for_match(text);
    return std::any_of(words.begin(), words.end(), [&](const auto& w) {
        const std::string word = scenario_text::normalize_for_match(w);
        return !word.empty() && word != " " && scenario_text::contains_normalized(said, word);
    });
}

// A question as everyone hears it: "<asker> asks <asked>: <question>".
std::string asks_text(const scenario& sc, const std::string& speaker, const std::string& asked, const std::string& q) {
    return runner_text(sc, runner_text_key::asks,
                       {{"speaker", name_of(sc, speaker)}, {"asked", name_of(sc, asked)}, {"text", q}});
}

json shown(const step_call& c) { return c.result ? *c.result : json{{"error", c.error}}; }

}  // namespace

bool released_at(const scenario& sc, const scenario_clue& cl, size_t pi) {
    if (!cl.pushed()) return false;
    if (cl.trigger && cl.trigger->act > 0) {
        const int32_t act = cl.trigger->act;
        for (size_t i = 0; i < sc.phases.size(); ++i)
            if (sc.phases[i].act == act) return i == pi;  // the act's first phase
        return false;
    }
    return cl.available_from == sc.phases[pi].id;
}

std::vector<std::string> clue_audience(const scenario_clue& cl) {
    std::vector<std::string> v = cl.visible_to;
    if (!v.empty() && !cl.found_by.empty() && std::find(v.begin(), v.end(), cl.found_by) == v.end())
        v.push_back(cl.found_by);
    return v;
}

std::vector<std::string> participants(const scenario& sc, const scenario_phase& ph) {
    if (!ph.participants.empty()) return ph.participants;
    std::vector<std::string> v;
    for (const auto& c : sc.characters)
        if (c.role == character_role::npc) v.push_back(c.id);
    return v;
}

std::vector<scripted_turn> policy_turns(const scenario& sc, const scenario_phase& ph) {
    if (ph.policy == turn_policy::scripted) return ph.turns;
    std::vector<scripted_turn> turns;
    const auto who = participants(sc, ph);
    for (int32_t r = 0; r < ph.rounds; ++r)
        for (const auto& p : who) {
            scripted_turn t;
            t.interactive = true;
            if (ph.policy == turn_policy::directed) {
                t.speaker = sc.game_master();  // it chooses whom to ask (its ask() call)
                t.action = turn_action::ask;
            } else {
                t.speaker = p;
                t.action = ph.action;
            }
            turns.push_back(std::move(t));
        }
    return turns;
}

void action_step(const scenario& sc, const scripted_turn& tr, play_steps::step& s) {
    using play_steps::step_kind;
    s.kind = tr.action == turn_action::investigate ? step_kind::investigate
             : tr.action == turn_action::ask       ? step_kind::ask
                                                   : step_kind::vote;
    s.expect_tools = tr.expect_tools;
    if (sc.find_character(tr.speaker)) return;  // generated: it chooses
    const scenario_player* pl = sc.find_player(tr.speaker);
    s.text = tr.line;
    s.target = tr.target;
    s.player_input = tr.interactive || (pl && pl->interactive);
}

bool is_action_kind(const std::string& kind) {
    return kind == "investigate" || kind == "ask" || kind == "vote" || kind == "verdict";
}

std::string clue_text(const scenario& sc, const scenario_clue& cl) {
    return runner_text(sc, runner_text_key::clue, {{"title", cl.title}, {"text", cl.text}});
}

std::string action_cue(const scenario& sc, const step_event& ev) {
    const std::string who = name_of(sc, ev.speaker);
    const runner_text_key k = ev.kind == "investigate" ? runner_text_key::cue_investigate
                              : ev.kind == "ask"       ? runner_text_key::cue_ask
                                                       : runner_text_key::cue_vote;
    return runner_text(sc, k, {{"speaker", who}});
}

std::vector<effect> action_effects(const scenario& sc, const step_event& ev) {
    std::vector<effect> e;
    const bool is_char = sc.find_character(ev.speaker) != nullptr;
    if (ev.kind == "verdict") {
        if (ev.text.empty()) return e;
        if (is_char) e.push_back({ev.speaker, {"assistant", ev.text}});
        for (const auto& c : sc.characters)
            if (c.id != ev.speaker)
                e.push_back({c.id,
                             {"user", runner_text(sc, runner_text_key::heard,
                                                  {{"speaker", name_of(sc, ev.speaker)}, {"text", ev.text}})}});
        return e;
    }
    if (is_char) {
        // Its act is its call: the cue, the call and its result (no reply after it).
        e.push_back({ev.speaker, {"user", action_cue(sc, ev)}});
        for (const auto& rd : step_rounds(ev)) {
            e.push_back({ev.speaker, {"assistant", rd.content}});
            for (const auto& c : rd.calls)
                e.push_back({ev.speaker, {"tool", tools::render_tool_response(c.name, shown(c))}});
        }
    }
    const std::string asked = asked_of(ev);
    if (ev.kind == "ask" && !ev.text.empty() && !asked.empty())
        for (const auto& c : sc.characters)
            if (c.id != ev.speaker) e.push_back({c.id, {"user", asks_text(sc, ev.speaker, asked, ev.text)}});
    return e;
}

void add_reveal_effects(const scenario& sc, const step_event& ev, std::vector<effect>& out) {
    for (const auto& r : reveals_of(ev)) {
        const scenario_clue* k = sc.find_clue(r.clue);
        if (!k) continue;
        std::vector<std::string> to;
        if (r.to_all) {  // the cast (the game master hands clues out: it does not keep them)
            for (const auto& c : sc.characters)
                if (c.role != character_role::game_master || c.id == r.finder) to.push_back(c.id);
        } else {
            to.push_back(r.finder);
            for (const auto& v : k->visible_to) to.push_back(v);
        }
        std::set<std::string> seen;
        for (const auto& id : to) {
            if (!sc.find_character(id) || !seen.insert(id).second) continue;
            if (r.by_tool && id == r.finder) continue;  // it read the clue as its call's result
            out.push_back({id, {"user", clue_text(sc, *k)}});
        }
    }
}

std::string action_transcript(const scenario& sc, const step_event& ev) {
    const std::string who = name_of(sc, ev.speaker);
    std::string s;
    if (ev.kind == "verdict")
        return runner_text(sc, runner_text_key::verdict_tag) + ev.text + "\n" + reveal_transcript(sc, ev);
    if (ev.skipped)
        s = runner_text(sc, runner_text_key::action_head, {{"speaker", who}, {"action", ev.kind}}) +
            runner_text(sc, runner_text_key::no_input);
    else if (ev.kind == "investigate")
        s = runner_text(sc, runner_text_key::investigates, {{"speaker", who}, {"target", name_of(sc, ev.to)}});
    else if (ev.kind == "ask")
        s = asks_text(sc, ev.speaker, asked_of(ev), ev.text);
    else
        s = runner_text(sc, runner_text_key::votes_for, {{"speaker", who}, {"suspect", name_of(sc, ev.to)}});
    return s + (ev.context_full ? runner_text(sc, runner_text_key::context_full) : "") + "\n" +
           reveal_transcript(sc, ev);
}

std::string reveal_transcript(const scenario& sc, const step_event& ev) {
    std::string s;
    for (const auto& r : reveals_of(ev)) {
        const scenario_clue* k = sc.find_clue(r.clue);
        const std::string shown =
            runner_text(sc, r.to_all ? runner_text_key::shown_to_everyone : runner_text_key::kept_by_finder);
        s += runner_text(sc, runner_text_key::found_line,
                         {{"title", k ? k->title : r.clue}, {"finder", name_of(sc, r.finder)}, {"shown", shown}}) +
             "\n";
    }
    return s;
}

std::vector<reveal> reveals_of(const step_event& ev) {
    std::vector<reveal> v;
    auto it = ev.extra.find("reveals");
    if (it == ev.extra.end() || !it->is_array()) return v;
    for (const auto& r : *it) {
        if (!r.is_object()) continue;
        v.push_back({r.value("clue", ""), r.value("finder", ""), r.value("to_all", false), r.value("by_tool", false)});
    }
    return v;
}

void add_reveals(step_event& ev, const std::vector<reveal>& rs) {
    if (rs.empty()) return;
    json& arr = ev.extra["reveals"];
    if (!arr.is_array()) arr = json::array();
    for (const auto& r : rs)
        arr.push_back({{"clue", r.clue}, {"finder", r.finder}, {"to_all", r.to_all}, {"by_tool", r.by_tool}});
}

std::optional<vote> vote_of(const step_event& ev) {
    auto it = ev.extra.find("vote");
    if (it == ev.extra.end() || !it->is_object()) return std::nullopt;
    return vote{it->value("voter", ""), it->value("suspect", "")};
}

void set_vote(step_event& ev, const vote& v) { ev.extra["vote"] = {{"voter", v.voter}, {"suspect", v.suspect}}; }

std::string asked_of(const step_event& ev) {
    auto it = ev.extra.find("asked");
    return it != ev.extra.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void set_asked(step_event& ev, const std::string& who) { ev.extra["asked"] = who; }

void apply(table_state& st, const step_event& ev) {
    for (const auto& r : reveals_of(ev)) st.found.emplace(r.clue, r.finder);
    if (auto v = vote_of(ev)) {
        auto& vs = st.votes;
        vs.erase(std::remove_if(vs.begin(), vs.end(), [&](const vote& x) { return x.voter == v->voter; }), vs.end());
        vs.push_back(*v);
    }
}

table_state replay(const std::vector<step_event>& done) {
    table_state st;
    for (const auto& ev : done)
        if (ev.kind != "probe") apply(st, ev);
    return st;
}

std::optional<reveal> investigate(const scenario& sc, const table_state& st, const std::string& who,
                                  const std::string& target, size_t pi) {
    for (const auto& k : sc.clues) {
        if (k.target != target || st.found.count(k.id) || !available(sc, k, pi)) continue;
        return reveal{k.id, who, k.reveal == clue_reveal::all, false};
    }
    return std::nullopt;
}

std::vector<reveal> triggered(const scenario& sc, const table_state& st, const step_event& ev) {
    std::vector<reveal> v;
    // Words said at the table: lines, turns, questions and answers (not the narrator's, a clue's or the verdict).
    if (ev.text.empty() || ev.kind == "probe" || ev.kind == "narration" || ev.kind == "clue" || ev.kind == "verdict")
        return v;
    const size_t pi = phase_index(sc, ev.phase);
    const std::string to = ev.kind == "ask" ? asked_of(ev) : ev.to;
    for (const auto& k : sc.clues) {
        if (!k.trigger || st.found.count(k.id) || !available(sc, k, pi)) continue;
        const auto& t = *k.trigger;
        bool fires = false;
        if (!t.keywords.empty())
            fires = (t.said_by.empty() || t.said_by == ev.speaker) && contains_any(ev.text, t.keywords);
        else if (!t.asked.empty())
            fires = to == t.asked && contains_any(ev.text, t.subject);
        if (fires) v.push_back({k.id, ev.speaker, k.reveal == clue_reveal::all, false});
    }
    return v;
}

std::string verdict_text(const scenario& sc, const table_state& st) {
    const accusation_report a = score_votes(sc, st);
    std::string s;
    if (!a.votes.empty()) {
        std::string votes;
        for (const auto& v : a.votes)
            votes += (votes.empty() ? "" : runner_text(sc, runner_text_key::list_separator)) +
                     runner_text(sc, runner_text_key::vote_entry,
                                 {{"voter", name_of(sc, v.voter)}, {"suspect", name_of(sc, v.suspect)}});
        s = runner_text(sc, runner_text_key::verdict_votes, {{"votes", votes}}) +
            (a.verdict.empty() ? runner_text(sc, runner_text_key::no_majority)
                               : runner_text(sc, runner_text_key::table_accuses, {{"name", name_of(sc, a.verdict)}})) +
            (sc.language.rfind("zh", 0) == 0 ? "" : " ");
    }
    s += runner_text(sc, runner_text_key::verdict_truth, {{"solution", sc.solution}});
    for (const auto& k : sc.culprits)
        s += runner_text(sc, runner_text_key::verdict_culprit,
                         {{"name", name_of(sc, k.id)}, {"role", culprit_role_text(sc, k.role)}});
    return s;
}

clue_report score_clues(const scenario& sc, const table_state& st) {
    clue_report r;
    for (const auto& k : sc.clues) {
        if (k.pushed()) continue;
        ++r.n_available;
        auto it = st.found.find(k.id);
        if (it == st.found.end()) continue;
        ++r.n_found;
        ++r.by_finder[it->second];
        r.found.emplace_back(k.id, it->second);
    }
    return r;
}

accusation_report score_votes(const scenario& sc, const table_state& st) {
    accusation_report a;
    auto culprit = [&](const std::string& id) {
        return std::any_of(sc.culprits.begin(), sc.culprits.end(), [&](const auto& k) { return k.id == id; });
    };
    for (const auto& v : st.votes) {
        a.votes.push_back({v.voter, v.suspect, culprit(v.suspect)});
        a.n_correct += culprit(v.suspect);
        ++a.tally[v.suspect];
    }
    int32_t best = 0;
    for (const auto& [who, n] : a.tally) {
        if (n > best) {
            best = n;
            a.verdict = who;
        } else if (n == best) {
            a.verdict.clear();  // a tie accuses no one
        }
    }
    a.solved = !a.verdict.empty() && culprit(a.verdict);
    return a;
}

}  // namespace mnemos::agent::play_table

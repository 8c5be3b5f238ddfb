// The end of a game (agent/play/play_report.h).
#include "agent/play/play_report.h"

#include <algorithm>
#include <fstream>

namespace mnemos::agent::play_report_detail {

void score_probes(const scenario& sc, const std::vector<step_event>& done, play_report& rep) {
    for (const auto& ev : done) {
        if (ev.kind != "probe") continue;
        const std::string probe = ev.probe.value_or("");
        for (const auto& p : sc.probes)
            if (p.id == probe) {
                const auto called = play_steps::tools_called(ev);
                probe_result pr{
                    p.id, p.asked_to, p.question, ev.text, score_probe(p, ev.text, called), ev.context_full, called};
                if (pr.context_full) pr.score.passed = false;
                rep.n_probes_passed += pr.score.passed;
                rep.probes.push_back(std::move(pr));
            }
    }
}

void score_turns(const std::vector<play_steps::step>& steps, const std::vector<step_event>& done, play_report& rep,
                 std::map<std::string, character_report>& chars) {
    for (const auto& ev : done) {
        if (ev.windowed) ++rep.n_windowed;
        if (ev.kind != "turn") continue;
        if (!ev.context_full) ++chars[ev.speaker].n_turns;
        const auto& st = steps[static_cast<size_t>(ev.idx)];
        if (st.expect_tools.empty()) continue;
        tool_turn_result tt{ev.idx, st.speaker, st.expect_tools, play_steps::tools_called(ev), {}, false};
        for (const auto& want : st.expect_tools)
            if (std::find(tt.called.begin(), tt.called.end(), want) == tt.called.end()) tt.missing.push_back(want);
        tt.passed = tt.missing.empty();
        rep.n_tool_turns_passed += tt.passed;
        rep.tool_turns.push_back(std::move(tt));
    }
}

std::string transcript(const scenario& sc, const std::vector<play_steps::step>& steps,
                       const std::vector<step_event>& done) {
    std::string tr = sc.title + "\n";
    size_t last_phase = SIZE_MAX;
    for (size_t i = 0; i < done.size(); ++i) {
        if (steps[i].phase_idx != last_phase) {
            last_phase = steps[i].phase_idx;
            tr += "\n== " + sc.phases[last_phase].title + " ==\n";
        }
        tr += play_steps::transcript_line(sc, done[i]);
    }
    return tr;
}

namespace {

json clues_json(const clue_report& c) {
    json found = json::array();
    for (const auto& [clue, finder] : c.found) found.push_back({{"clue", clue}, {"finder", finder}});
    json by = json::object();
    for (const auto& [who, n] : c.by_finder)
        by[who] = {{"found", n}, {"fraction", c.n_available ? double(n) / double(c.n_available) : 0.0}};
    return {{"available", c.n_available},
            {"found", c.n_found},
            {"fraction", c.n_available ? double(c.n_found) / double(c.n_available) : 0.0},
            {"by_finder", by},
            {"list", found}};
}

json accusation_json(const scenario& sc, const accusation_report& a) {
    json votes = json::array();
    for (const auto& v : a.votes) votes.push_back({{"voter", v.voter}, {"suspect", v.suspect}, {"correct", v.correct}});
    json culprits = json::array();
    for (const auto& k : sc.culprits) {
        auto it = a.tally.find(k.id);
        culprits.push_back(
            {{"id", k.id}, {"role", culprit_role_name(k.role)}, {"votes", it == a.tally.end() ? 0 : it->second}});
    }
    return {{"votes", votes},
            {"tally", a.tally},
            {"verdict", a.verdict.empty() ? json() : json(a.verdict)},
            {"solved", a.solved},
            {"correct_votes", a.n_correct},
            {"culprits", culprits}};
}

}  // namespace

// Long but flat: one block per section of the results file, in the order the file lists them.
std::string results_json(const scenario& sc, const play_options& o, const play_report& rep, int32_t n_ctx,
                         int32_t window_tokens) {
    json res = {{"scenario", sc.id},
                {"title", sc.title},
                {"game_session", rep.game_session_id},
                {"temperature", o.temperature},
                {"seed", o.seed},
                {"max_tokens", o.max_tokens},
                {"steps", rep.n_steps},
                {"steps_resumed", rep.n_steps_resumed},
                {"seconds", rep.seconds}};
    json probes = json::array();
    for (const auto& p : rep.probes)
        probes.push_back({{"id", p.id},
                          {"asked_to", p.asked_to},
                          {"question", p.question},
                          {"answer", p.answer},
                          {"passed", p.score.passed},
                          {"missing", p.score.missing},
                          {"revealed", p.score.revealed},
                          {"tools_called", p.tools_called},
                          {"tools_missing", p.score.tools_missing},
                          {"context_full", p.context_full}});
    res["probes"] = probes;
    json tool_turns = json::array();
    for (const auto& t : rep.tool_turns)
        tool_turns.push_back({{"step", t.step_idx},
                              {"speaker", t.speaker},
                              {"expected", t.expected},
                              {"called", t.called},
                              {"missing", t.missing},
                              {"passed", t.passed}});
    res["tool_turns"] = tool_turns;
    res["tool_score"] = {{"passed", rep.n_tool_turns_passed}, {"total", rep.tool_turns.size()}};
    res["context"] = {
        {"n_ctx", n_ctx},
        {"window_tokens", window_tokens},
        {"windowed_steps", rep.n_windowed},
        {"policy",
         "a generation whose context (plus room to answer) exceeds the window sees the character's system text "
         "(shared prefix and character) and its most recent messages that fit; older messages stay in the "
         "durable log, reachable only through recall where the scenario offers it"}};
    const size_t n_probes = rep.probes.size();
    res["score"] = {{"passed", rep.n_probes_passed},
                    {"total", n_probes},
                    {"fraction", n_probes ? double(rep.n_probes_passed) / double(n_probes) : 0.0}};
    if (sc.kind == scenario_kind::mystery) {
        res["clues"] = clues_json(rep.clues);
        res["accusation"] = accusation_json(sc, rep.accusation);
    }
    json chars = json::array();
    for (const auto& c : rep.characters)
        chars.push_back({{"id", c.id},
                         {"session", c.session_id},
                         {"tokens", c.n_tokens},
                         {"generated", c.n_generated},
                         {"turns", c.n_turns},
                         {"system_tokens", c.n_system_tokens},
                         {"prefix_reused", c.n_prefix_reused}});
    res["characters"] = chars;
    res["prefix_cache"] = {
        {"hits_resident", rep.hits_resident}, {"hits_store", rep.hits_store}, {"misses", rep.misses}};
    json turns = json::array();
    for (const auto& t : rep.timings)
        turns.push_back({{"step", t.step_idx},
                         {"kind", t.kind},
                         {"speaker", t.speaker},
                         {"seconds", t.seconds},
                         {"prompt", t.n_prompt},
                         {"reused", t.n_reused},
                         {"generated", t.n_generated}});
    res["turns"] = turns;
    return res.dump(2);
}

status write_file(const std::string& path, const std::string& text) {
    if (path.empty()) return {};
    std::ofstream f(path, std::ios::binary);
    f << text;
    if (!f) return make_error(errc::io_error, "cannot write " + path);
    return {};
}

}  // namespace mnemos::agent::play_report_detail

// Tests for the table's mechanics (agent/play/table.h, agent/play/action_tools.h) and their scenario fields:
// the validator names the field of a malformed mechanic; investigation reveals a target's clues in order, once,
// to the finder (or to everyone); keyword and asked triggers fire once; votes are scored (plurality, ties,
// several culprits); and scenarios/mystery_lighthouse.json played on the tiny random model: every reveal reaches
// exactly the sessions it should, the triggers fire once, the answers come from the one asked, the votes are
// scored from the game log, the game master knows the solution but holds no clue it handed out, and a game
// stopped mid-way resumes to the same logs.
#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "agent/play/action_tools.h"
#include "agent/play/play.h"
#include "agent/play/steps.h"
#include "agent/play/table.h"
#include "memory/store.h"
#include "tests/agent/scenario_util.h"

using namespace mnemos;
using namespace mnemos::agent;
using namespace mnemos::test_agent;
using json = nlohmann::json;

namespace {

json lighthouse_json(const std::string& name = "mystery_lighthouse") {
    std::ifstream in(scenarios_dir() / (name + ".json"));
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str());
}

scenario parse(const json& doc) {
    auto r = parse_scenario(doc.dump(), "t");
    INFO((r.ok() ? std::string() : r.error().message()));
    REQUIRE(r.ok());
    return std::move(r).value();
}

std::string mechanics_errors(const json& doc) {
    auto r = parse_scenario(doc.dump(), "t");
    REQUIRE(!r.ok());
    return r.error().message();
}

bool text_has(const std::string& msg, const std::string& part) { return msg.find(part) != std::string::npos; }

size_t phase_of(const scenario& sc, const std::string& id) {
    for (size_t i = 0; i < sc.phases.size(); ++i)
        if (sc.phases[i].id == id) return i;
    FAIL("no phase " << id);
    return 0;
}

step_event said(const std::string& phase, const std::string& speaker, const std::string& to, const std::string& text) {
    step_event ev;
    ev.kind = "line";
    ev.phase = phase;
    ev.speaker = speaker;
    ev.to = to;
    ev.text = text;
    return ev;
}

// Every event of a closed store's session, parsed.
std::vector<json> events_of(const std::string& store_dir, const std::string& sid) {
    memory::store_options so;
    so.path = store_dir;
    so.create_if_missing = false;
    auto db = memory::store::open(so);
    REQUIRE(db.ok());
    auto evs = db.value()->read_events(sid);
    REQUIRE(evs.ok());
    std::vector<json> out;
    for (const auto& e : evs.value()) out.push_back(json::parse(e.json));
    return out;
}

}  // namespace

TEST_CASE("mechanics: the lighthouse scenario validates in English and Chinese with the same ids",
          "[play][mechanics]") {
    const scenario en = parse(lighthouse_json());
    const scenario zh = parse(lighthouse_json("mystery_lighthouse.zh"));
    CHECK(en.characters.size() >= 6);
    REQUIRE(en.culprits.size() == 2);
    CHECK(en.culprits[1].role == culprit_role::mastermind);
    CHECK(en.find_suspect(en.culprits[1].id) != nullptr);  // the mastermind is played by no one
    CHECK((en.tools.npc == std::vector<std::string>{"recall", "note"}));
    REQUIRE(zh.clues.size() == en.clues.size());
    for (size_t i = 0; i < en.clues.size(); ++i) {
        CHECK(zh.clues[i].id == en.clues[i].id);
        CHECK(zh.clues[i].target == en.clues[i].target);
    }
    REQUIRE(zh.phases.size() == en.phases.size());
    for (size_t i = 0; i < en.phases.size(); ++i) CHECK(zh.phases[i].policy == en.phases[i].policy);
    // Every older scenario still loads.
    for (const char* f :
         {"ci_smoke", "mystery_blackwood", "mystery_blackwood.zh", "companion_weeks", "tool_agent_inventory"}) {
        INFO(f);
        auto r = load_scenario((scenarios_dir() / (std::string(f) + ".json")).string());
        CHECK(r.ok());
    }
}

TEST_CASE("mechanics: malformed mechanics get errors that name the field", "[play][mechanics]") {
    const json good = lighthouse_json();
    json j = good;
    j["clues"][1]["target"] = "attic";
    CHECK(text_has(mechanics_errors(j), "/clues/1/target: unknown location, character or suspect 'attic'"));
    j = good;
    j["clues"][6]["trigger"]["act"] = 2;
    CHECK(
        text_has(mechanics_errors(j), "/clues/6/trigger: a trigger needs exactly one of 'keyword', 'asked' or 'act'"));
    j = good;
    j["clues"][7]["trigger"].erase("subject");
    CHECK(text_has(mechanics_errors(j), "/clues/7/trigger/subject: 'asked' and 'subject' go together"));
    j = good;
    j["clues"][8]["trigger"]["act"] = 9;
    CHECK(text_has(mechanics_errors(j), "/clues/8/trigger/act: no phase has act 9"));
    j = good;
    j["culprits"][0]["role"] = "accomplice";
    CHECK(text_has(mechanics_errors(j), "/culprits: needs a culprit with role killer"));
    j = good;
    j["culprits"][1]["id"] = "gm";
    CHECK(text_has(mechanics_errors(j), "/culprits/1/id: the game master 'gm' cannot be a culprit"));
    j = good;
    j["culprit"] = "fisher";
    CHECK(text_has(mechanics_errors(j), "/culprits: give 'culprit' (one killer) or 'culprits', not both"));
    j = good;
    j["phases"][1]["turns"][0].erase("target");
    CHECK(
        text_has(mechanics_errors(j), "/phases/1/turns/0/target: missing: a scripted player's action needs a target"));
    j = good;
    j["phases"][1]["turns"][1]["action"] = "vote";
    CHECK(text_has(mechanics_errors(j), "/phases/1/turns/1/action: a vote is cast in an accusation phase"));
    j = good;
    j["phases"][2]["participants"] = {"nobody"};
    CHECK(text_has(mechanics_errors(j), "/phases/2/participants/0: unknown character 'nobody'"));
    j = good;
    j["phases"][2]["policy"] = "sometimes";
    CHECK(text_has(mechanics_errors(j), "/phases/2/policy: expected one of: scripted, round_robin, directed"));
    j = good;
    j["tools"] = {{"npc", {"teleport"}}};
    CHECK(text_has(mechanics_errors(j), "/tools/npc/0: unknown built-in tool 'teleport'"));
    j = good;
    j["clues"][0].erase("available_from");
    CHECK(text_has(mechanics_errors(j), "/clues/0/available_from: missing: a clue without a target or trigger"));
    j = good;
    j["tools"] = {{"npc", json::array()}};
    CHECK(parse(j).tools.npc.empty());  // [] turns the npcs' tools off
}

TEST_CASE("mechanics: investigate reveals a target's clues in order, once, from their phase on", "[play][mechanics]") {
    const scenario sc = parse(lighthouse_json());
    play_table::table_state st;
    const size_t search = phase_of(sc, "search");
    auto r = play_table::investigate(sc, st, "painter", "lamp_room", search);
    REQUIRE(r);
    CHECK(r->clue == "ledger");
    CHECK(r->finder == "painter");
    CHECK(r->to_all);  // "reveal_to": "all"
    step_event ev;
    play_table::add_reveals(ev, {*r});
    play_table::apply(st, ev);
    r = play_table::investigate(sc, st, "clerk", "lamp_room", search);
    REQUIRE(r);
    CHECK(r->clue == "wick");
    CHECK(!r->to_all);
    play_table::add_reveals(ev, {*r});
    play_table::apply(st, ev);
    CHECK(!play_table::investigate(sc, st, "cook", "lamp_room", search));  // nothing more there
    CHECK(play_table::investigate(sc, st, "cook", "fisher", search)->clue == "note");
    CHECK(!play_table::investigate(sc, st, "cook", "attic", search));
    // Targets are named as probes are matched: width, case and spacing folded.
    CHECK(play_actions::find_target(sc, "\xEF\xBC\xAC\xEF\xBC\xA1MP_ROOM") == "lamp_room");  // "ＬＡMP_ROOM"
    CHECK(play_actions::find_target(sc, " lamp_room  ") == "lamp_room");
    CHECK(play_actions::find_target(sc, "lamp").empty());

    // What the finder's and the others' sessions receive: the finder read its own call's result.
    ev = {};
    ev.kind = "line";
    ev.speaker = "inspector";
    play_table::add_reveals(ev, {{"oilskin", "painter", false, true}, {"ledger", "painter", true, true}});
    std::map<std::string, int> got;
    for (const auto& e : play_steps::effects(sc, ev)) got[e.character] += e.msg.content.rfind("Clue: ", 0) == 0;
    CHECK(got["painter"] == 0);
    for (const char* c : {"cook", "fisher", "doctor", "clerk"}) CHECK(got[c] == 1);  // the ledger only
    CHECK(got["gm"] == 0);  // "to all" is the cast: the game master would never read it

    // Scored: clues to find (targets and keyword / asked triggers), per finder.
    st.found["oilskin"] = "inspector";
    const clue_report cr = play_table::score_clues(sc, st);
    CHECK(cr.n_available == 7);
    CHECK(cr.n_found == 3);
    CHECK(cr.by_finder.at("painter") == 1);
    CHECK(cr.by_finder.at("inspector") == 1);
}

TEST_CASE("mechanics: keyword and asked triggers fire once, from the right words", "[play][mechanics]") {
    const scenario sc = parse(lighthouse_json());
    play_table::table_state st;
    CHECK(play_table::triggered(sc, st, said("arrival", "cook", "all", "Tea at half past ten.")).empty());
    auto fired = play_table::triggered(sc, st, said("arrival", "cook", "all", "He paid fifty GUINEAS."));
    REQUIRE(fired.size() == 1);
    CHECK(fired[0].clue == "guineas");
    CHECK(fired[0].to_all);
    step_event ev = said("arrival", "cook", "all", "guineas");
    play_table::add_reveals(ev, fired);
    play_table::apply(st, ev);
    CHECK(play_table::triggered(sc, st, said("money", "clerk", "all", "fifty guineas")).empty());  // once
    // Said in full-width letters, the keyword fires as well (matched as probe facts are).
    fired = play_table::triggered(sc, play_table::table_state{},
                                  said("arrival", "cook", "all", "\xEF\xBC\xA7\xEF\xBC\xB5INEAS!"));  // "ＧＵINEAS!"
    REQUIRE(fired.size() == 1);
    CHECK(fired[0].clue == "guineas");
    // Asked: a question to the doctor about the wrist; not the same words to someone else.
    CHECK(play_table::triggered(sc, st, said("search", "inspector", "cook", "And his wrist?")).empty());
    fired = play_table::triggered(sc, st, said("search", "inspector", "doctor", "And his wrist?"));
    REQUIRE(fired.size() == 1);
    CHECK(fired[0].clue == "wrist");
    CHECK(fired[0].finder == "inspector");
    step_event ask;
    ask.kind = "ask";
    ask.phase = "cross";
    ask.speaker = "cook";
    ask.text = "What bruise?";
    play_table::set_asked(ask, "doctor");
    CHECK(play_table::triggered(sc, play_table::table_state{}, ask).size() == 1);  // an ask() call counts
    // Narration and clue texts never fire a trigger.
    step_event clue = said("search", "gm", "all", "guineas");
    clue.kind = "clue";
    CHECK(play_table::triggered(sc, play_table::table_state{}, clue).empty());
}

TEST_CASE("mechanics: votes are scored: plurality, ties and several culprits", "[play][mechanics]") {
    const scenario sc = parse(lighthouse_json());
    play_table::table_state st;
    auto cast = [&](const std::string& voter, const std::string& suspect) {
        step_event ev;
        play_table::set_vote(ev, {voter, suspect});
        play_table::apply(st, ev);
    };
    cast("cook", "fisher");
    cast("painter", "doctor");
    accusation_report a = play_table::score_votes(sc, st);
    CHECK(a.verdict.empty());  // a tie accuses no one
    CHECK(!a.solved);
    cast("doctor", "harbour_master");
    cast("painter", "fisher");  // a later vote replaces the earlier one
    a = play_table::score_votes(sc, st);
    REQUIRE(a.votes.size() == 3);
    CHECK(a.tally.at("fisher") == 2);
    CHECK(a.verdict == "fisher");
    CHECK(a.solved);
    CHECK(a.n_correct == 3);  // the mastermind is a culprit too
    const std::string verdict = play_table::verdict_text(sc, st);
    CHECK(text_has(verdict, "The table accuses Tom Hale."));
    CHECK(text_has(verdict, sc.solution));
    CHECK(text_has(verdict, "Silas Mott (mastermind)"));
    cast("clerk", "cook");
    cast("cook", "cook");
    CHECK(play_table::score_votes(sc, st).n_correct == 2);
}

TEST_CASE("mechanics: the steps of the policies, actions and the verdict", "[play][mechanics]") {
    const scenario sc = parse(lighthouse_json());
    const auto steps = play_steps::build_steps(sc);
    std::map<std::string, int> kinds;
    for (size_t i = 0; i < steps.size(); ++i) {
        ++kinds[play_steps::step_kind_name(steps[i].kind)];
        if (steps[i].kind == play_steps::step_kind::ask) {
            REQUIRE(i + 1 < steps.size());
            CHECK(steps[i + 1].kind == play_steps::step_kind::answer);  // the one asked answers next
        }
    }
    CHECK(kinds["investigate"] == 3);
    CHECK(kinds["ask"] == 4);  // directed: the game master asks fisher's and clerk's turns; round robin: two
    CHECK(kinds["answer"] == 4);
    CHECK(kinds["vote"] == 4);
    CHECK(kinds["verdict"] == 1);
    // The act clue opens act 2, for the painter only; the game master asks in the directed phase.
    const size_t q = phase_of(sc, "questions");
    bool limp = false;
    for (const auto& s : steps) {
        if (s.phase_idx != q) continue;
        if (s.kind == play_steps::step_kind::clue) limp = s.audience == std::vector<std::string>{"painter"};
        if (s.kind == play_steps::step_kind::ask) CHECK(s.speaker == "gm");
    }
    CHECK(limp);
    // Offered tools: npcs investigate; the round robin's askers and the voters get ask and vote; the game master asks.
    using A = std::vector<turn_action>;
    CHECK(play_actions::offered(sc, "gm") == A{turn_action::ask});
    CHECK((play_actions::offered(sc, "cook") == A{turn_action::investigate, turn_action::ask, turn_action::vote}));
    CHECK(play_actions::offered(sc, "fisher") == A{turn_action::investigate});
    // Typed commands of interactive players.
    auto cmd = play_actions::parse_player_command("/investigate the lamp room ");
    REQUIRE(cmd);
    CHECK(cmd->action == turn_action::investigate);
    CHECK(play_actions::find_target(sc, cmd->argument) == "lamp_room");
    CHECK(play_actions::find_target(sc, "silas mott") == "harbour_master");
    CHECK(!play_actions::parse_player_command("/investigated"));
    CHECK(!play_actions::parse_player_command("hello"));
}

TEST_CASE("mechanics: the lighthouse plays on the tiny model; every reveal reaches exactly its sessions",
          "[play][mechanics]") {
    temp_dir dir("mnemos_mechanics_");
    auto m = load_model(write_model(dir.path, 4096));
    const scenario sc = parse(lighthouse_json());
    play_options o;
    o.max_tokens = 6;
    o.n_threads = 1;
    o.store_dir = (dir.path / "db").string();
    auto r = play_scenario(sc, m, o);
    INFO((r.ok() ? std::string() : r.error().to_string()));
    REQUIRE(r.ok());
    const auto game = events_of(o.store_dir, play_game_session_id(sc));
    REQUIRE(game.size() == static_cast<size_t>(r->n_steps));
    std::map<std::string, std::vector<std::string>> msgs;  // character -> message contents
    for (const auto& c : sc.characters)
        for (const auto& e : events_of(o.store_dir, play_character_session_id(sc, c.id)))
            msgs[c.id].push_back(e.value("content", ""));
    auto holds = [&](const std::string& cid, const std::string& part) {
        return std::any_of(msgs[cid].begin(), msgs[cid].end(), [&](const auto& s) { return text_has(s, part); });
    };

    // The game master knows the truth and keeps none of the clues it handed out.
    CHECK(holds("gm", sc.solution));
    CHECK(!holds("gm", "Clue: The body"));
    for (const auto& c : sc.characters)
        if (c.role == character_role::npc) CHECK(holds(c.id, "\"recall\""));  // tools.npc by default

    // The game master opened every phase in its own words: its session holds the cue (the scripted narration)
    // and what it said; the cast heard that.
    int n_narrations = 0, n_generated = 0;
    for (const json& ev : game) {
        if (ev["kind"] != "narration") continue;
        const std::string text = ev["text"].get<std::string>(), phase = ev["phase"].get<std::string>();
        INFO(ev.dump());
        ++n_narrations;
        n_generated += text != sc.find_phase(phase)->narration;
        CHECK(ev["speaker"] == "gm");
        CHECK(holds("gm", play_steps::narrate_cue(sc, phase)));
        for (const auto& c : sc.characters)
            if (c.role == character_role::npc) CHECK(holds(c.id, text));
    }
    CHECK(n_narrations >= 3);
    CHECK(n_generated > 0);

    std::map<std::string, int> fired;
    int n_votes = 0;
    for (size_t i = 0; i < game.size(); ++i) {
        const json& ev = game[i];
        INFO(ev.dump());
        for (const auto& rv : ev.value("reveals", json::array())) {
            const std::string clue = rv["clue"].get<std::string>(), finder = rv["finder"].get<std::string>();
            ++fired[clue];
            const std::string text = sc.find_clue(clue)->text;
            for (const auto& c : sc.characters) {
                // To the cast (never the game master), or only to the finder (who read it as its call's result).
                const bool want = (rv["to_all"].get<bool>() && c.role != character_role::game_master) || c.id == finder;
                CHECK(holds(c.id, text) == want);
            }
        }
        if (ev["kind"] == "answer" && !ev.value("skipped", false)) {
            CHECK(ev["speaker"] == game[i - 1]["asked"]);  // the one asked answers the asker
            CHECK(ev["to"] == game[i - 1]["speaker"]);
        }
        if (ev["kind"] == "vote" && ev.contains("vote")) ++n_votes;
        if (ev["kind"] == "verdict") CHECK(text_has(ev["text"].get<std::string>(), sc.solution));
    }
    // Scripted words fire their triggers, once: the inspector's question to the doctor, the word "guineas".
    CHECK(fired["wrist"] == 1);
    CHECK(fired["guineas"] == 1);
    CHECK(fired["oilskin"] == 1);  // the inspector's scripted investigation of the boathouse
    for (const auto& [clue, n] : fired) CHECK(n == 1);
    CHECK(holds("painter", "the figure on the stairs limped"));  // the act clue, to the painter only
    CHECK(!holds("cook", "the figure on the stairs limped"));

    // The scores come from the game log.
    CHECK(r->clues.n_available == 7);
    CHECK(r->clues.n_found == static_cast<int32_t>(fired.size()));
    CHECK(static_cast<int>(r->accusation.votes.size()) == n_votes);
    CHECK(n_votes == 4);  // every vote turn is a forced call under the grammar
    const json res = json::parse(r->results_json);
    CHECK(res["clues"]["found"] == fired.size());
    CHECK(res["accusation"]["culprits"].size() == 2);

    // Stopped after the directed questions and resumed: the same logs as this uninterrupted run.
    play_options p = o;
    p.store_dir = (dir.path / "cut").string();
    p.max_steps = 0;
    for (size_t i = 0; i < game.size(); ++i)
        if (game[i]["phase"] == "cross") {
            p.max_steps = static_cast<int64_t>(i);
            break;
        }
    REQUIRE(p.max_steps > 0);
    REQUIRE(play_scenario(sc, m, p).ok());
    p.max_steps = -1;
    p.resume = true;
    auto resumed = play_scenario(sc, m, p);
    REQUIRE(resumed.ok());
    CHECK(resumed->n_steps_resumed > 0);
    for (const std::string& sid : {play_game_session_id(sc), play_character_session_id(sc, "cook"),
                                   play_character_session_id(sc, "gm"), play_character_session_id(sc, "painter")}) {
        INFO(sid);
        auto a = events_of(o.store_dir, sid), b = events_of(p.store_dir, sid);
        for (auto* v : {&a, &b})
            for (auto& e : *v) e.erase("ts");
        CHECK(a == b);
    }
    CHECK(resumed->accusation.votes.size() == r->accusation.votes.size());
    CHECK(resumed->clues.n_found == r->clues.n_found);
}

TEST_CASE("mechanics: an interactive player investigates and votes by typed commands", "[play][mechanics][player]") {
    temp_dir dir("mnemos_mechanics_");
    auto m = load_model(write_model(dir.path, 4096));
    json doc = lighthouse_json();
    doc["players"][0]["mode"] = "interactive";
    // The inspector also votes (a player's action turn in the accusation).
    doc["phases"][5]["policy"] = "scripted";
    doc["phases"][5].erase("participants");
    doc["phases"][5].erase("action");
    doc["phases"][5]["turns"] = {{{"speaker", "inspector"}, {"action", "vote"}}};
    const scenario sc = parse(doc);
    play_options o;
    o.max_tokens = 4;
    o.n_threads = 1;
    o.store_dir = (dir.path / "db").string();
    std::vector<player_prompt> asked;
    o.ask_player = [&](const player_prompt& p) {
        asked.push_back(p);
        if (asked.size() == 2) return player_line{"/investigate The Lamp Room", ""};  // its investigate turn
        if (p.scripted.empty() && asked.size() > 2) return player_line{"/vote Silas Mott", ""};
        return player_line{};  // keep the scripted line
    };
    auto r = play_scenario(sc, m, o);
    INFO((r.ok() ? std::string() : r.error().to_string()));
    REQUIRE(r.ok());
    // The lamp room's first clue (to everyone) went to the inspector, who typed where to search.
    bool ledger = false;
    for (const auto& [clue, finder] : r->clues.found) ledger = ledger || (clue == "ledger" && finder == "inspector");
    CHECK(ledger);
    for (const auto& c : sc.characters) {
        bool holds = false;
        for (const auto& e : events_of(o.store_dir, play_character_session_id(sc, c.id)))
            holds = holds || text_has(e.value("content", ""), sc.find_clue("ledger")->text);
        INFO(c.id);
        CHECK(holds == (c.role != character_role::game_master));  // the cast, not the host
    }
    REQUIRE(r->accusation.votes.size() == 1);
    CHECK(r->accusation.votes[0].voter == "inspector");
    CHECK(r->accusation.votes[0].suspect == "harbour_master");
    CHECK(r->accusation.votes[0].correct);  // the mastermind, played by no one
    CHECK(r->accusation.solved);
}

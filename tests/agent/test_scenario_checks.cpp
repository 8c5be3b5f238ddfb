// Tests for agent/scenario/checks.h, one section at a time on scenario structs built here (no JSON): each check
// reports its own problems with the JSON pointer of the offending field, and a well-formed section reports
// nothing. Also the reader's field readers (agent/scenario/reader.h) and the text helpers.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "agent/scenario/checks.h"
#include "agent/scenario/history_generator.h"
#include "agent/scenario/reader.h"
#include "agent/scenario/text_util.h"

using namespace mnemos::agent;
using namespace mnemos::agent::scenario_checks;
using json = nlohmann::json;

namespace {

// A valid companion scenario: one companion, one player, one conversation phase.
scenario base() {
    scenario sc;
    sc.id = "s";
    sc.kind = scenario_kind::companion;
    sc.characters.push_back({"ada", "Ada", character_role::companion, "kind", "", "", {}, {}});
    sc.players.push_back({"you", "You", "", false});
    scenario_phase ph;
    ph.id = "talk";
    ph.kind = phase_kind::conversation;
    ph.turns.push_back({"you", "ada", "Hello.", false, {}, -1, ""});
    ph.turns.push_back({"ada", "all", "", true, {}, -1, ""});
    sc.phases.push_back(ph);
    return sc;
}

// The errors one check reports on sc ("x: <pointer>: <what>" each).
template <class F>
std::vector<std::string> run(F check, const scenario& sc) {
    reader rd("x");
    check(rd, sc);
    return rd.errors();
}

bool has(const std::vector<std::string>& errs, const std::string& part) {
    for (const auto& e : errs)
        if (e.find(part) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST_CASE("scenario checks: a valid scenario passes every section", "[scenario][checks]") {
    reader rd("x");
    check_references(rd, base());
    CHECK(rd.errors().empty());
}

TEST_CASE("scenario checks: unique ids", "[scenario][checks]") {
    scenario sc = base();
    sc.players.push_back({"ada", "Other Ada", "", false});
    sc.players.push_back({"all", "All", "", false});
    auto errs = run(check_unique_ids, sc);
    CHECK(has(errs, "x: /players/1/id: duplicate character/player id 'ada' (first at /characters/0/id)"));
    CHECK(has(errs, "/players/2/id: 'all' is reserved"));
    CHECK(run(check_unique_ids, base()).empty());
}

TEST_CASE("scenario checks: kind rules and the mystery's culprit and phases", "[scenario][checks]") {
    scenario sc = base();
    sc.characters[0].role = character_role::npc;
    CHECK(has(run(check_kind_rules, sc), "/characters: a companion scenario needs a character with role companion"));
    sc.kind = scenario_kind::tool_agent;
    CHECK(has(run(check_kind_rules, sc), "/tools: a tool_agent scenario needs at least one tool"));

    sc = base();
    sc.kind = scenario_kind::mystery;
    auto errs = run(check_mystery, sc);
    CHECK(has(errs, "/culprit: missing: a mystery needs a culprit"));
    CHECK(has(errs, "/phases: a mystery needs a phase of kind introduction"));
    sc.culprit = "ada";
    sc.phases = {};
    for (auto k : {phase_kind::introduction, phase_kind::accusation, phase_kind::investigation, phase_kind::reveal}) {
        scenario_phase ph;
        ph.id = phase_kind_name(k);
        ph.kind = k;
        ph.round = k == phase_kind::investigation ? 1 : 0;
        sc.phases.push_back(ph);
    }
    errs = run(check_mystery, sc);
    CHECK(has(errs, "/culprit: the culprit 'ada' must be an npc, not companion"));
    CHECK(has(errs, "/phases/2/kind: investigation is out of order"));
}

TEST_CASE("scenario checks: clues", "[scenario][checks]") {
    scenario sc = base();
    sc.clues.push_back({"c", "C", "text", "nowhere", "nobody", {"ada", "ghost"}});
    auto errs = run(check_clues, sc);
    CHECK(has(errs, "/clues/0/available_from: unknown phase 'nowhere'"));
    CHECK(has(errs, "/clues/0/found_by: unknown character or player 'nobody'"));
    CHECK(has(errs, "/clues/0/visible_to/1: unknown character or player 'ghost'"));
    CHECK(errs.size() == 3);
}

TEST_CASE("scenario checks: phases and turns", "[scenario][checks]") {
    scenario sc = base();
    sc.phases[0].turns.push_back({"ada", "ada", "Me.", false, {}, -1, ""});
    sc.phases[0].turns.push_back({"you", "all", "", true, {}, -1, ""});
    sc.phases[0].turns.push_back({"you", "all", "Hi.", false, {"recall"}, -1, ""});
    sc.phases[0].round = 2;
    auto errs = run(check_phases, sc);
    CHECK(has(errs, "/phases/0/turns/2/to: a speaker cannot address itself"));
    CHECK(has(errs, "/phases/0/turns/3/interactive: player 'you' is scripted (mode) and needs a line"));
    CHECK(has(errs, "/phases/0/turns/4/expect_tools: only an interactive character turn"));
    CHECK(has(errs, "/phases/0/turns/4/expect_tools/0: tool 'recall' is not in /tools"));
    CHECK(has(errs, "/phases/0/round: only investigation phases have a round"));
}

TEST_CASE("scenario checks: probes", "[scenario][checks]") {
    scenario sc = base();
    scenario_probe p;
    p.id = "p";
    p.at_phase = "talk";
    p.at_turn = 5;
    p.asked_to = "you";
    p.fact = "f1";
    sc.probes.push_back(p);
    auto errs = run(check_probes, sc);
    CHECK(has(errs, "/probes/0/at/turn: 5 is past the end of phase 'talk' (2 turns)"));
    CHECK(has(errs, "/probes/0/asked_to: unknown character 'you'"));
    CHECK(has(errs, "/probes/0: a probe needs must_contain, must_not_reveal or must_call_tools"));
    CHECK(has(errs, "/probes/0/fact: unknown generator fact 'f1'"));
}

TEST_CASE("scenario checks: the generator and its facts", "[scenario][checks]") {
    scenario sc = base();
    history_generator g;
    g.phase = "talk";  // not a history phase
    g.speaker = "you";
    g.to = "ada";
    g.days = 2;
    g.sentences = {"It is {weekday} and {weather}.", "Unclosed {brace", "The cat sat."};
    g.slots = {{"mood", {"calm"}}};
    g.facts = {{"f1", 3, "The key is blue.", "violet"}, {"f2", 0, "The cat is a violet one.", "cat"}};
    sc.generator = g;
    auto errs = run(check_generator, sc);
    CHECK(has(errs, "/generator/phase: phase 'talk' must have kind history"));
    CHECK(has(errs, "/generator/sentences/0: unknown placeholder {weather}"));
    CHECK(has(errs, "/generator/sentences/1: unbalanced '{' or '}'"));
    reader rd("x");
    check_generator_facts(rd, g);
    const auto& fe = rd.errors();
    CHECK(has(fe, "/generator/facts/0/day: 3 is not before days (2)"));
    CHECK(has(fe, "/generator/facts/0/key: 'violet' does not appear in the fact's text"));
    CHECK(has(fe, "/generator/sentences/2: contains fact key 'cat' (f2)"));
    CHECK(has(fe, "/generator/facts/1/text: contains the key 'violet' of fact 'f1'"));
}

TEST_CASE("scenario reader: fields report their own problems", "[scenario][reader]") {
    scenario_reader::reader rd("x");
    const json j = {{"n", 70}, {"s", 3}, {"id", "Bad Id"}, {"extra", 1}};
    CHECK(rd.integer(j, "/o", "n", true, 0, 1, 10) == 0);
    CHECK(rd.str(j, "/o", "s", false).empty());
    rd.id(j, "/o", "id", true);
    rd.str(j, "/o", "missing", true);
    rd.object(j, "/o", "int_range");
    const auto& e = rd.errors();
    CHECK(has(e, "x: /o/n: 70 is out of range [1, 10]"));
    CHECK(has(e, "x: /o/s: expected a string"));
    CHECK(has(e, "x: /o/id: 'Bad Id' is not a valid id"));
    CHECK(has(e, "x: /o/missing: missing required property"));
    CHECK(has(e, "x: /o/extra: unknown property (accepted: min, max)"));
}

TEST_CASE("scenario text helpers and the generator's calendar", "[scenario][reader]") {
    using namespace scenario_text;
    int64_t d = 0;
    CHECK(parse_date("2025-03-03", d));
    CHECK(!parse_date("2025-02-30", d));
    CHECK(pointer_token("a/b~c") == "a~1b~0c");
    CHECK(scenario_text::valid_id("a.b-c_1"));
    CHECK(!scenario_text::valid_id("A"));
    std::vector<std::string> names;
    CHECK(placeholders("{a} and {b}", names));
    CHECK(names == std::vector<std::string>{"a", "b"});
    CHECK(contains_ci("Hello World", "WORLD"));
    REQUIRE(parse_date("2025-03-03", d));
    const auto dn = history_detail::names_of_day(d);
    CHECK(dn.weekday == "Monday");
    CHECK(dn.date == "3 March 2025");
}

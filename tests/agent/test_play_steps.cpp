// Tests for agent/play/steps.h and agent/play/game_log.h: pure functions of a scenario and of step events, no
// model. The steps of a small game in order (narration, clues, probes between turns, interactive players),
// who hears a step, what each character is told (the cue, the messages a turn with tool calls appends), the
// transcript lines, and the game log's resume checks.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "agent/play/game_log.h"
#include "agent/play/steps.h"

using namespace mnemos;
using namespace mnemos::agent;
using namespace mnemos::agent::play_steps;
using json = nlohmann::json;

namespace {

scenario small_game() {
    const json doc = {
        {"id", "small"},
        {"title", "Small"},
        {"language", "en"},
        {"kind", "tool_agent"},
        {"shared", {{"public_script", "A room."}}},
        {"characters",
         {{{"id", "gm"}, {"name", "Keeper"}, {"role", "game_master"}, {"persona", "Keeps."}},
          {{"id", "cat"}, {"name", "Cat"}, {"role", "npc"}, {"persona", "Meows."}}}},
        {"players",
         {{{"id", "p"}, {"name", "Pat"}, {"mode", "interactive"}},
          {{"id", "q"}, {"name", "Quinn"}, {"mode", "scripted"}}}},
        {"clues",
         {{{"id", "c1"}, {"title", "Fur"}, {"text", "Grey fur."}, {"available_from", "one"}, {"visible_to", {"cat"}}},
          {{"id", "c2"}, {"title", "Note"}, {"text", "Hidden."}, {"available_from", "one"}, {"visible_to", {"p"}}}}},
        {"phases",
         {{{"id", "one"},
           {"kind", "task"},
           {"title", "One"},
           {"narration", "It begins."},
           {"turns",
            {{{"speaker", "q"}, {"to", "cat"}, {"line", "Hello cat."}},
             {{"speaker", "gm"}, {"interactive", true}, {"expect_tools", {"note"}}},
             {{"speaker", "p"}, {"interactive", true}}}}}}},
        {"probes",
         {{{"id", "pr"},
           {"at", {{"phase", "one"}, {"turn", 1}}},
           {"asked_to", "cat"},
           {"question", "Who spoke?"},
           {"must_contain", {"Quinn"}}}}},
        {"tools", {{"builtin", {"note"}}}}};
    auto r = parse_scenario(doc.dump(), "small");
    INFO((r.ok() ? std::string() : r.error().message()));
    REQUIRE(r.ok());
    return std::move(r).value();
}

}  // namespace

TEST_CASE("play steps: the game in order", "[play][steps]") {
    const scenario sc = small_game();
    const auto steps = build_steps(sc);
    REQUIRE(steps.size() == 6);
    CHECK(steps[0].kind == step_kind::narration);
    CHECK(steps[0].speaker == "gm");  // the game master narrates
    CHECK(steps[1].kind == step_kind::clue);
    CHECK(steps[1].text == "Clue: Fur. Grey fur.");
    CHECK(steps[1].audience == std::vector<std::string>{"cat"});  // c2 is seen by a player only: no step
    CHECK(steps[2].kind == step_kind::line);
    CHECK(steps[2].to == "cat");
    CHECK(steps[3].kind == step_kind::probe);  // after one turn
    REQUIRE(steps[3].probe);
    CHECK(steps[3].probe->id == "pr");
    CHECK(steps[4].kind == step_kind::turn);
    CHECK(steps[4].expect_tools == std::vector<std::string>{"note"});
    CHECK(steps[5].kind == step_kind::line);  // an interactive player types a line
    CHECK(steps[5].player_input);
    CHECK(std::string(step_kind_name(step_kind::probe)) == "probe");
}

TEST_CASE("play steps: names, cues and who hears what", "[play][steps]") {
    const scenario sc = small_game();
    CHECK(display_name(sc, "") == "Narrator");
    CHECK(display_name(sc, "all") == "everyone");
    CHECK(display_name(sc, "p") == "Pat");
    CHECK(display_name(sc, "zzz") == "zzz");
    CHECK(cue(sc, "gm", "all") == "(It is your turn, Keeper. Speak to everyone.)");
    CHECK(listeners(sc, {.speaker = "q", .to = "cat"}) == std::vector<std::string>{"cat"});
    CHECK(listeners(sc, {.speaker = "gm", .to = "all"}) == std::vector<std::string>{"cat"});
    CHECK(listeners(sc, {.speaker = "q", .to = "all"}) == std::vector<std::string>{"gm", "cat"});
    CHECK(listeners(sc, {.speaker = "q"}) == std::vector<std::string>{"gm", "cat"});  // no addressee: everyone
    CHECK(listeners(sc, {.speaker = "gm", .audience = {"gm", "cat"}}) == std::vector<std::string>{"cat"});
    CHECK(sanitize_id("small game!") == "small_game_");
    CHECK(sanitize_id("") == "game");
}

TEST_CASE("play steps: what a turn with tool calls appends, and its transcript", "[play][steps]") {
    const scenario sc = small_game();
    const step_event ev{
        .kind = "turn",
        .speaker = "gm",
        .to = "all",
        .text = "Noted.",
        .rounds =
            json::array({{{"content", "<tool_call>x</tool_call>"},
                          {"calls", {{{"name", "note"}, {"arguments", {{"text", "a"}}}, {"result", {{"id", 1}}}}}}}})};
    const auto effs = effects(sc, ev);
    REQUIRE(effs.size() == 5);
    CHECK(effs[0].character == "gm");
    CHECK(effs[0].msg.role == "user");
    CHECK(effs[0].msg.content == "(It is your turn, Keeper. Speak to everyone.)");
    CHECK(effs[1].msg.role == "assistant");
    CHECK(effs[1].msg.content == "<tool_call>x</tool_call>");
    CHECK(effs[2].msg.role == "tool");
    CHECK(effs[3].msg.content == "Noted.");
    CHECK(effs[4].character == "cat");
    CHECK(effs[4].msg.content == "Keeper: Noted.");
    CHECK(tools_called(ev) == std::vector<std::string>{"note"});
    CHECK(transcript_line(sc, ev) == "  [tool] note {\"text\":\"a\"} -> {\"id\":1}\nKeeper -> everyone: Noted.\n");
    // A probe appends nothing; a context-full turn keeps only the cue.
    CHECK(effects(sc, {.kind = "probe", .speaker = "cat", .text = "x"}).empty());
    CHECK(effects(sc, {.kind = "turn", .speaker = "gm", .text = "", .context_full = true}).size() == 1);
    CHECK(transcript_line(sc, {.kind = "line", .speaker = "p", .to = "all", .skipped = true}) ==
          "Pat -> everyone: (no input)\n");
    // A failed call: the model was shown {"error": ...}; the transcript says so.
    const step_call failed_call{"note", json{{"text", "b"}}, std::nullopt, "full"};
    const step_event failed{.kind = "turn",
                            .speaker = "gm",
                            .to = "all",
                            .text = "No.",
                            .rounds = step_rounds_json({step_round{"c", {failed_call}}})};
    const auto failed_effs = effects(sc, failed);
    REQUIRE(failed_effs.size() == 5);
    CHECK(failed_effs[2].msg.content.find("full") != std::string::npos);
    CHECK(transcript_line(sc, failed) == "  [tool] note {\"text\":\"b\"} -> error: full\nKeeper -> everyone: No.\n");
    CHECK(tools_called(failed) == std::vector<std::string>{"note"});
}

TEST_CASE("game log: completed steps are checked against the scenario", "[play][steps]") {
    const scenario sc = small_game();
    const auto steps = build_steps(sc);
    std::vector<std::string> log = {
        json{{"type", "step"}, {"idx", 0}, {"kind", "narration"}, {"speaker", "gm"}, {"text", "It begins."}}.dump(),
        json{{"type", "note"}}.dump(),
        json{{"type", "step"}, {"idx", 1}, {"kind", "clue"}, {"speaker", "gm"}, {"text", "Fur."}, {"audience", {"cat"}}}
            .dump()};
    log.push_back("{not json");  // skipped, as before
    auto done = game_log::completed_steps(log, steps, "g");
    REQUIRE(done.ok());
    REQUIRE(done->size() == 2);
    CHECK(done->at(1).kind == "clue");
    CHECK(done->at(1).audience == std::vector<std::string>{"cat"});
    log.push_back(json{{"type", "step"}, {"idx", 2}, {"kind", "turn"}}.dump());  // step 2 is a line
    auto bad = game_log::completed_steps(log, steps, "g");
    REQUIRE(!bad.ok());
    CHECK(bad.error().code() == errc::corrupt);
    CHECK(bad.error().message() == "game log of 'g' does not match the scenario at step 2");

    CHECK(game_log::session_matches({{"system", "s"}, {"user", "a"}}, {{"user", "a"}}));
    CHECK(!game_log::session_matches({{"system", "s"}, {"user", "a"}}, {{"user", "b"}}));
    CHECK(!game_log::session_matches({{"system", "s"}}, {{"user", "a"}}));
    const auto implied = game_log::implied_messages(sc, done.value());
    REQUIRE(implied.count("cat"));
    CHECK(implied.at("cat").size() == 2);  // the narration and the clue

    play_options o;
    CHECK(game_log::settings_note(game_log::game_meta(sc, o), o).empty());
    o.seed = 4;
    CHECK(game_log::settings_note(game_log::game_meta(sc, play_options{}), o).find("seed 0") != std::string::npos);

    // What the spectator page shows as step n/N, the score's probes and the phases.
    const json meta = game_log::game_meta(sc, o);
    CHECK(meta["n_steps"] == steps.size());
    CHECK(meta["n_probes"] == std::count_if(steps.begin(), steps.end(),
                                            [](const auto& s) { return s.kind == play_steps::step_kind::probe; }));
    REQUIRE(meta["phases"].size() == sc.phases.size());
    CHECK(meta["phases"][0]["id"] == sc.phases[0].id);
    CHECK(meta["title"] == sc.title);
    for (const auto& c : sc.characters) CHECK(meta["names"][c.id] == c.name);
    for (const auto& p : sc.players) CHECK(meta["names"][p.id] == p.name);
}

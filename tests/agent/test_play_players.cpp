// A player in "mode": "interactive" is asked for every one of its turns (the prompt names whom the script has
// it address and the scripted line); an empty answer says the scripted line, a typed one replaces it, and
// "@name: text" addresses someone else. Without a way to ask, the scripted lines are said.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/play/play.h"
#include "agent/scenario/scenario.h"
#include "tests/agent/scenario_util.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace mnemos;
using namespace mnemos::agent;
using namespace mnemos::test_agent;

TEST_CASE("parse_player_line: @name: text and @id text address someone; the rest is text", "[play][player]") {
    CHECK(parse_player_line("  Where were you?  ").text == "Where were you?");
    CHECK(parse_player_line("  Where were you?  ").to.empty());
    auto named = parse_player_line("@Lady Ashworth: And you, madam?");
    CHECK(named.to == "Lady Ashworth");
    CHECK(named.text == "And you, madam?");
    auto by_id = parse_player_line("@maid what did you see");
    CHECK(by_id.to == "maid");
    CHECK(by_id.text == "what did you see");
    CHECK(parse_player_line("@maid").text == "@maid");  // no text: said as typed
    CHECK(parse_player_line("").text.empty());
}

TEST_CASE("play: an interactive player is asked for each of its turns; it may keep, replace or readdress",
          "[play][player]") {
    temp_dir dir("mnemos_players_");
    std::ifstream in(scenarios_dir() / "ci_smoke.json");
    json j = json::parse(in);
    j["players"][0]["mode"] = "interactive";  // nothing else changes: its scripted turns become its prompts
    const fs::path path = dir.path / "smoke.json";
    std::ofstream(path) << j.dump(2);
    auto sc = load_scenario(path.string());
    REQUIRE(sc.ok());
    std::vector<player_prompt> asked;
    std::string other;  // whom the second answer addresses instead: anyone but the script's addressee
    play_options o;
    o.max_tokens = 4;
    o.n_threads = 1;
    o.ask_player = [&](const player_prompt& q) {
        asked.push_back(q);
        if (asked.size() == 1) return player_line{};  // say the scripted line
        if (asked.size() == 2) {                      // readdress
            for (const auto& c : sc->characters)
                if (other.empty() && c.name != q.to) other = c.name;
            return parse_player_line("@" + other + ": Only you.");
        }
        return player_line{"My own words.", {}};
    };
    auto m = load_model(write_model(dir.path));
    auto rep = play_scenario(sc.value(), m, o);
    REQUIRE(rep.ok());
    REQUIRE(asked.size() == 3);  // ci_smoke's detective has three turns
    for (const auto& q : asked) {
        CHECK(q.player == sc->players[0].name);
        CHECK(!q.scripted.empty());
        CHECK(!q.to.empty());
    }
    const std::string& t = rep->transcript;
    INFO(t);
    const std::string me = sc->players[0].name;
    CHECK(t.find(me + " -> " + asked[0].to + ": " + asked[0].scripted) != std::string::npos);
    CHECK(t.find(me + " -> " + asked[1].to + ": " + asked[1].scripted) == std::string::npos);
    CHECK(t.find(me + " -> " + other + ": Only you.") != std::string::npos);
    CHECK(t.find("My own words.") != std::string::npos);
}

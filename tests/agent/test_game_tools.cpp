// Tests for agent/play/game_tools.h: the packs kept by add_item / remove_item / list_inventory, item names
// matched loosely but never ambiguously, the state rebuilt from a game log's calls, the schemas bounded for
// constrained decoding, and the registry of a scenario's tools (built-ins and game tools) with run_tool_call.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "agent/play/game_tools.h"

using namespace mnemos;
using namespace mnemos::agent;
using namespace mnemos::agent::game_tools;
using json = nlohmann::json;

namespace {

json call(tool_state& st, const std::string& name, const json& args) {
    json out;
    game_tool_handler(name, st)(args, [&](result<json> r) {
        out = r ? r.value() : json{{"error", r.error().message()}};
    });
    return out;
}

}  // namespace

TEST_CASE("game tools: packs", "[play][game_tools]") {
    tool_state st;
    CHECK(call(st, "add_item", {{"owner", "ann"}, {"item", "Rope"}, {"quantity", 2}}) ==
          json{{"owner", "ann"}, {"item", "Rope"}, {"quantity", 2}});
    CHECK(call(st, "add_item", {{"owner", "ann"}, {"item", "rope "}})["quantity"] == 3);  // same item, any case
    call(st, "add_item", {{"owner", "ann"}, {"item", "Lantern"}});
    CHECK(call(st, "add_item", {{"owner", ""}, {"item", "x"}}).contains("error"));
    CHECK(call(st, "remove_item", {{"owner", "ann"}, {"item", "lant"}}) ==
          json{{"owner", "ann"}, {"item", "Lantern"}, {"quantity", 0}});  // by part of its name; then gone
    CHECK(call(st, "remove_item", {{"owner", "ann"}, {"item", "Rope"}, {"quantity", 9}})["error"] ==
          "ann holds only 3 of 'Rope'");
    CHECK(call(st, "list_inventory", {{"owner", "ann"}}) ==
          json{{"owner", "ann"}, {"items", {{{"item", "Rope"}, {"quantity", 3}}}}});
    CHECK(call(st, "list_inventory", json::object()) ==
          json{{"packs", {{"ann", {{{"item", "Rope"}, {"quantity", 3}}}}}}});
    CHECK(call(st, "open_door", {{"door", 1}}) == json{{"ok", true}, {"tool", "open_door"}});

    std::vector<tool_state::item> pack{{"Red key", 1}, {"Blue key", 1}};
    CHECK(find_item(pack, "key") == nullptr);  // ambiguous
    CHECK(find_item(pack, "RED KEY") == &pack[0]);
    CHECK(find_item(pack, "blue") == &pack[1]);
}

TEST_CASE("game tools: the state comes back from the game log's turns", "[play][game_tools]") {
    const json turn_rounds = {
        {{"calls",
          {{{"name", "add_item"}, {"arguments", {{"owner", "a"}, {"item", "Coin"}}}, {"result", json::object()}},
           {{"name", "note"}, {"arguments", {{"text", "remember"}}}, {"result", json::object()}},
           {{"name", "add_item"}, {"arguments", {{"owner", "a"}, {"item", "Gem"}}}, {"error", "failed"}}}}}};
    const json probe_rounds = {
        {{"calls",
          {{{"name", "add_item"}, {"arguments", {{"owner", "a"}, {"item", "Ghost"}}}, {"result", json::object()}}}}}};
    const std::vector<step_event> done = {{.kind = "turn", .rounds = turn_rounds},
                                          {.kind = "probe", .rounds = probe_rounds}};  // probes ran on a copy
    tool_state st;
    replay_tool_calls(done, st);
    REQUIRE(st.packs["a"].size() == 1);
    CHECK(st.packs["a"][0].name == "Coin");
    CHECK(st.notes == std::vector<std::string>{"remember"});
}

TEST_CASE("game tools: schemas bounded for constrained decoding, keywords kept", "[play][game_tools]") {
    json s = {{"type", "object"},
              {"additionalProperties", false},
              {"properties",
               {{"n", {{"type", "integer"}, {"minimum", 1}}},
                {"name", {{"type", "string"}, {"maxLength", 100}}},
                {"color", {{"type", "string"}, {"enum", {"red"}}}}}}};
    bound_strings(s, 40);
    CHECK(s["additionalProperties"] == false);
    CHECK(s["properties"]["n"]["minimum"] == 1);
    CHECK(s["properties"]["name"]["maxLength"] == 40);
    CHECK(!s["properties"]["color"].contains("maxLength"));
}

TEST_CASE("game tools: the registry of a scenario's tools", "[play][game_tools]") {
    scenario sc;
    sc.tools.builtin = {"clock", "roll_dice", "note"};
    sc.tools.game = {{"add_item", "Adds.", R"({"type":"object","properties":{"item":{"type":"string"}}})"},
                     {"set_volume", "Sets.",
                      R"({"type":"object","properties":{"level":{"type":"integer","minimum":0,"maximum":10}}})"}};
    auto store = make_memory_session_store();
    tool_state st;
    std::vector<std::string> lines;
    auto reg = make_game_tools(sc, st, "s.gm", 1, 0, *store, [&](const std::string& l) { lines.push_back(l); });
    std::vector<std::string> names;
    for (const auto& t : reg->list()) names.push_back(t.name);
    CHECK(names == std::vector<std::string>{"clock", "roll_dice", "note", "add_item", "set_volume"});
    CHECK(reg->find("add_item")->parameters["properties"]["item"]["maxLength"] == k_max_argument_chars);
    CHECK(lines.empty());

    // The clock is the game's calendar; notes go to the state; an unknown tool is an error value.
    CHECK(run_tool_call(*reg, {"clock", json::object()})["result"].dump().find("2026-01-01") != std::string::npos);
    CHECK(run_tool_call(*reg, {"note", {{"text", "hi"}}}).contains("result"));
    CHECK(st.notes == std::vector<std::string>{"hi"});
    CHECK(run_tool_call(*reg, {"teleport", json::object()}).contains("error"));
    // Bounds stay in the schema: the grammar keeps the model inside them and the registry refuses others.
    CHECK(run_tool_call(*reg, {"set_volume", {{"level", 7}}}).contains("result"));
    CHECK(run_tool_call(*reg, {"set_volume", {{"level", 11}}})["error"].dump().find("maximum") != std::string::npos);
    // roll_dice draws per step: the same step rolls the same.
    tool_state st2;
    auto again = make_game_tools(sc, st2, "s.gm", 1, 0, *store, {});
    const json args = {{"notation", "4d1000"}};
    const json first = run_tool_call(*reg, {"roll_dice", args});
    REQUIRE(first.contains("result"));
    CHECK(first == run_tool_call(*again, {"roll_dice", args}));
}

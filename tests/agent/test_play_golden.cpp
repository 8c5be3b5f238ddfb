// Golden test of a played game: scenarios/ci_smoke.json (no tools) and scenarios/tool_agent_inventory.json
// (the game master as a tool agent, tool_choice "required") played on the tiny generated model, greedy, one
// thread. Everything the game leaves behind is compared with tests/agent/golden/play_<scenario>.txt: the game
// log and every character session's events (the bytes on disk), the results JSON, the transcript, the streamed
// output and the progress lines. Masked before comparing (wall-clock values, nothing else): "ts" of events
// -> 0, "seconds" of the results JSON -> 0, the "%.2f s" of the progress lines -> "0.00 s".
//
// MNEMOS_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing (only when the output is meant to change).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "agent/core/runtime.h"
#include "agent/play/play.h"
#include "agent/scenario/scenario.h"
#include "memory/store.h"
#include "tests/agent/scenario_util.h"

using namespace mnemos;
using namespace mnemos::agent;
using namespace mnemos::test_agent;

namespace {

std::string golden_path(const std::string& name) {
    return std::string(MNEMOS_SOURCE_DIR) + "/tests/agent/golden/play_" + name + ".txt";
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string mask(std::string text) {
    text = std::regex_replace(text, std::regex("\"ts\":[0-9]+"), "\"ts\":0");
    text = std::regex_replace(text, std::regex("\"seconds\": [-0-9.eE+]+"), "\"seconds\": 0");
    return std::regex_replace(text, std::regex(" [0-9]+\\.[0-9]{2} s"), " 0.00 s");
}

// The event logs of a closed store: the game's, then each character's, one event per line.
std::string read_events(const std::string& store_dir, const scenario& sc) {
    memory::store_options so;
    so.path = store_dir;
    so.create_if_missing = false;
    auto db = memory::store::open(so);
    REQUIRE(db.ok());
    std::string out;
    std::vector<std::string> ids{play_game_session_id(sc)};
    for (const auto& c : sc.characters) ids.push_back(play_character_session_id(sc, c.id));
    for (const auto& id : ids) {
        out += "-- session " + id + "\n";
        auto evs = db.value()->read_events(id);
        REQUIRE(evs.ok());
        for (const auto& e : evs.value()) out += e.json + "\n";
    }
    return out;
}

// Plays the scenario and returns everything it produced, masked.
std::string play_golden(const std::string& name, int32_t n_ctx, const std::string& tool_choice) {
    temp_dir dir("mnemos_play_golden_");
    auto m = load_model(write_model(dir.path, n_ctx));
    auto loaded = load_scenario((scenarios_dir() / (name + ".json")).string());
    REQUIRE(loaded.ok());
    const scenario& sc = loaded.value();
    play_options o;
    o.max_tokens = 6;
    o.n_threads = 1;
    o.tool_choice = tool_choice;
    o.store_dir = (dir.path / "db").string();
    o.results_path = (dir.path / "results.json").string();
    o.transcript_path = (dir.path / "transcript.txt").string();
    std::string streamed, progress;
    o.on_output = [&](std::string_view t) { streamed += t; };
    o.on_progress = [&](std::string_view l) { (progress += l) += "\n"; };
    auto r = play_scenario(sc, m, o);
    INFO((r.ok() ? std::string() : r.error().to_string()));
    REQUIRE(r.ok());
    CHECK(r->results_json + "\n" == read_file(o.results_path));
    CHECK(r->transcript == read_file(o.transcript_path));
    std::string all = "== events\n" + read_events(o.store_dir, sc);
    all += "== results\n" + read_file(o.results_path);
    all += "== transcript\n" + read_file(o.transcript_path);
    all += "== output\n" + streamed + "\n";
    all += "== progress\n" + progress;
    return mask(all);
}

void compare_golden(const std::string& name, const std::string& got) {
    const std::string path = golden_path(name);
    if (const char* u = std::getenv("MNEMOS_UPDATE_GOLDEN"); u && std::string(u) == "1") {
        std::ofstream(path, std::ios::binary) << got;
        WARN("rewrote " << path);
        return;
    }
    const std::string want = read_file(path);
    REQUIRE(!want.empty());
    if (got == want) return;
    // The first differing line, for the report.
    std::istringstream a(got), b(want);
    std::string la, lb;
    int line = 1;
    while (std::getline(a, la) && std::getline(b, lb) && la == lb) ++line;
    INFO("first difference at line " << line << "\n got:  " << la << "\n want: " << lb);
    CHECK(got == want);
}

}  // namespace

TEST_CASE("play golden: ci_smoke leaves the same events, results, transcript and output", "[play][golden]") {
    compare_golden("ci_smoke", play_golden("ci_smoke", 1024, "auto"));
}

TEST_CASE("play golden: tool_agent_inventory (forced calls) leaves the same bytes", "[play][golden][tools]") {
    compare_golden("tool_agent_inventory", play_golden("tool_agent_inventory", 4096, "required"));
}

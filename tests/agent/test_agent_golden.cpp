// Golden test of the server's agent sessions (POST /v1/sessions/{id}/messages on a session created with
// "agent": settings): seeded turns over the tiny model under every first tool_choice (required, named, auto,
// none), a last step that may not call, sessions without tools, a reply cut by max_tokens, a prompt that does
// not fit, and refused tool_choice values. The replies and the events the store holds must stay the same
// bytes across refactors of the loop. Masked before comparing: timestamps ("ts", "created") and the random
// ids (call_..., chatcmpl-...). The golden file is tests/agent/golden/agent_server.txt (one line per reply or
// event); MNEMOS_UPDATE_GOLDEN=1 rewrites it.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "tests/agent/server_fixture.h"

using namespace mnemos::test_agent;

namespace {

std::string server_golden_path() { return std::string(MNEMOS_SOURCE_DIR) + "/tests/agent/golden/agent_server.txt"; }

std::string masked(std::string s) {
    s = std::regex_replace(s, std::regex("\"(ts|created)\":[0-9]+"), "\"$1\":0");
    s = std::regex_replace(s, std::regex("call_[0-9a-f]{24}"), "call_X");
    return std::regex_replace(s, std::regex("chatcmpl-[0-9a-f]{24}"), "chatcmpl-X");
}

struct golden_run {
    fixture& f;
    std::vector<std::string> lines;

    void create(const std::string& id, const json& agent) {
        json body = {{"id", id}, {"character", {{"name", "Helper"}, {"persona", "You help."}}}, {"agent", agent}};
        auto r = request(f.port, "POST", "/v1/sessions", body.dump());
        REQUIRE(r.status == 201);
    }
    void message(const std::string& id, const json& body) {
        auto r = request(f.port, "POST", "/v1/sessions/" + id + "/messages", body.dump());
        lines.push_back(id + " " + std::to_string(r.status) + " " + masked(r.body));
    }
    void events(const std::string& id) {
        auto evs = f.store->read_events(id);
        REQUIRE(evs.ok());
        for (const auto& e : evs.value()) lines.push_back(id + " event " + masked(e));
    }
};

json msg(const std::string& content, const json& choice, uint64_t seed, int max_tokens = 600) {
    json b = {{"content", content}, {"max_tokens", max_tokens}, {"seed", seed}};
    if (!choice.is_null()) b["tool_choice"] = choice;
    return b;
}

json named(const std::string& fn) { return {{"type", "function"}, {"function", {{"name", fn}}}}; }

std::vector<std::string> run_all() {
    fixture_sizes sizes{4096, 256 * 1024};
    sizes.attention = engine::attention_mode::full;  // a history longer than the window is cut
    fixture f({}, false, {}, sizes);
    golden_run g{f, {}};
    g.create("a4", {{"tools", {"roll_dice", "recall", "note"}}, {"max_steps", 4}, {"seed", 42}});
    g.message("a4", msg("Roll two dice for me please", "required", 7));
    g.message("a4", msg("What did you roll before?", named("recall"), 8));
    g.message("a4", msg("Note that down.", named("note"), 9));
    g.message("a4", msg("Anything else?", "auto", 10));
    g.message("a4", msg("Roll again?", nullptr, 11));
    g.message("a4", msg("Just talk.", "none", 12));
    g.message("a4", msg("Cut short.", "none", 13, 3));
    g.message("a4", msg("Bad choice.", "sometimes", 14));
    g.message("a4", msg("Unknown tool.", named("clock"), 15));
    std::string big;
    for (int i = 0; i < 5000; ++i) big += " word";
    g.message("a4", msg(big, "required", 16));
    g.message("a4", msg("After the flood.", "required", 22));  // the history is cut to the window
    g.create("a1", {{"tools", {"roll_dice"}}, {"max_steps", 1}});
    g.message("a1", msg("Roll a die.", "required", 17));
    g.create("a2", {{"tools", {"roll_dice", "note"}}, {"max_steps", 2}, {"seed", 5}});
    g.message("a2", msg("Roll a die, then answer.", "required", 18));
    g.message("a2", msg("Once more.", named("roll_dice"), 19));
    g.create("a0", {{"tools", false}, {"max_steps", 3}});
    g.message("a0", msg("No tools here.", "sometimes", 20));
    g.message("a0", msg("Still none.", "required", 21));
    for (const char* id : {"a4", "a1", "a2", "a0"}) g.events(id);
    return g.lines;
}

}  // namespace

TEST_CASE("agent sessions: seeded turns give the golden replies and events", "[agent][tools][golden]") {
    const auto lines = run_all();
    if (std::getenv("MNEMOS_UPDATE_GOLDEN")) {
        std::ofstream out(server_golden_path());
        for (const auto& l : lines) out << l << "\n";
    }
    std::ifstream in(server_golden_path());
    std::vector<std::string> golden;
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) golden.push_back(l);
    REQUIRE(golden.size() == lines.size());
    for (size_t i = 0; i < lines.size(); ++i) CHECK(lines[i] == golden[i]);
}

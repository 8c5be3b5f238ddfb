// Golden test of the events on disk: the bytes session_manager and session_store_i write for each kind
// of event (messages with and without extras, tool calls and results, notes, shared prefixes) and the
// step records of a game must stay the same across refactors, so old stores still read and new ones are
// the same bytes. Timestamps ("ts") are replaced by 0 before comparing; nothing else is masked.
// The golden file is tests/agent/golden/events.jsonl (one event per line).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "agent/core/event.h"
#include "agent/core/runtime.h"
#include "tests/agent/scenario_util.h"

using namespace mnemos;
using namespace mnemos::test_agent;
using json = nlohmann::json;

namespace {

std::string events_golden_path() { return std::string(MNEMOS_SOURCE_DIR) + "/tests/agent/golden/events.jsonl"; }

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> v;
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) v.push_back(line);
    return v;
}

std::string zero_ts(const std::string& text) {
    return std::regex_replace(text, std::regex("\"ts\":[0-9]+"), "\"ts\":0");
}

// Every kind of event the core writes, through the real writers.
std::vector<std::string> write_events(const engine::model& m) {
    auto store = agent::make_memory_session_store();
    agent::session_manager sm(m, *store);
    agent::character c;
    c.name = "Butler";
    c.persona = "You serve at the manor.";
    c.secrets = {"You saw the cook at midnight."};
    auto s = sm.create("golden", c, "owner-key", "# Tools\nrecall", R"({"max_steps":4})");
    REQUIRE(s.ok());
    auto plan = sm.begin_turn(s.value(), {{"user", "Who was in the kitchen? \xe5\x8e\xa8\xe6\x88\xbf"}});
    REQUIRE(plan.ok());
    const json calls = json::array({{{"id", "call_1"},
                                     {"type", "function"},
                                     {"function", {{"name", "recall"}, {"arguments", R"({"query":"kitchen"})"}}}}});
    REQUIRE(sm.continue_turn(s.value(), {{"assistant", "<tool_call>{}</tool_call>"}},
                             {{{"kind", "tool_call"}, {"tool_calls", calls}, {"step", 0}}})
                .ok());
    REQUIRE(sm.continue_turn(s.value(), {{"tool", "{\"found\": 1}"}},
                             {{{"kind", "tool_result"}, {"name", "recall"}, {"tool_call_id", "call_1"}, {"step", 0}}})
                .ok());
    agent::context_window cw;
    cw.truncated = true, cw.n_kept_first = 10, cw.n_dropped = 20, cw.n_kept_recent = 30;
    REQUIRE(sm.end_turn(s.value(), "The cook.", true, json{{"context", agent::context_window_json(cw)}}).ok());
    REQUIRE(sm.append_raw_event("golden", {{"type", "note"}, {"id", 1}, {"text", "cook at midnight"}}).ok());
    REQUIRE(sm.begin_turn(s.value(), {{"user", "Thanks."}}).ok());
    REQUIRE(sm.end_turn(s.value(), "", true).ok());
    REQUIRE(store->put_prefix("rules", "Nobody leaves the manor.").ok());
    std::vector<std::string> out = store->read_events("golden").value();
    const auto prefixes = store->read_events(agent::k_prefix_log_id);
    REQUIRE(prefixes.ok());
    out.insert(out.end(), prefixes->begin(), prefixes->end());
    return out;
}

}  // namespace

TEST_CASE("events: the writers produce the golden bytes", "[agent][event][golden]") {
    temp_dir dir("mnemos_golden_");
    auto m = load_model(write_model(dir.path, 1024));
    auto written = write_events(*m);
    if (std::getenv("MNEMOS_UPDATE_GOLDEN")) {
        std::ofstream out(events_golden_path());
        for (const auto& e : written) out << zero_ts(e) << "\n";
    }
    auto golden = read_lines(events_golden_path());
    REQUIRE(golden.size() >= written.size());
    for (size_t i = 0; i < written.size(); ++i) CHECK(zero_ts(written[i]) == golden[i]);
}

TEST_CASE("events: every golden event parses to its type and writes back the same bytes", "[agent][event][golden]") {
    // The golden file also holds step records of a game (written by mnemos play) after the core's events.
    auto golden = read_lines(events_golden_path());
    REQUIRE(golden.size() >= 12);
    for (const auto& line : golden) {
        auto ev = agent::parse_event(line);
        REQUIRE(ev.ok());
        CHECK(!std::holds_alternative<agent::other_event>(ev.value()));
        CHECK(agent::event_json_text(ev.value()) == line);
    }
}

TEST_CASE("events: typed fields are read, unknown fields and kinds kept, bad JSON refused", "[agent][event]") {
    auto msg = agent::parse_event(
        R"({"content":"hi","kind":"tool_result","name":"recall","role":"tool","step":2,"tool_call_id":"c","ts":5,"type":"message"})");
    REQUIRE(msg.ok());
    const auto& me = std::get<agent::message_event>(msg.value());
    CHECK(me.role == "tool");
    CHECK(me.kind == agent::message_kind::tool_result);
    CHECK(me.name == "recall");
    CHECK(me.step == 2);
    CHECK(me.ts == 5);
    auto other = agent::parse_event(R"({"type":"future","x":1})");
    REQUIRE(other.ok());
    CHECK(std::holds_alternative<agent::other_event>(other.value()));
    CHECK(agent::event_json_text(other.value()) == R"({"type":"future","x":1})");
    CHECK(agent::parse_event("{not json").error().code() == errc::corrupt);
    CHECK(agent::parse_event("[1]").error().code() == errc::corrupt);
    CHECK(agent::parse_event(R"({"type":"message","role":3})").error().code() == errc::corrupt);
}

TEST_CASE("events: a step's rounds read typed and write back the same bytes", "[agent][event][golden]") {
    size_t n_failed_calls = 0, n_steps_with_rounds = 0;
    for (const auto& line : read_lines(events_golden_path())) {
        auto ev = agent::parse_event(line);
        REQUIRE(ev.ok());
        const auto* st = std::get_if<agent::step_event>(&ev.value());
        if (!st) continue;
        const auto rounds = agent::step_rounds(*st);
        CHECK(agent::step_rounds_json(rounds) == st->rounds);
        agent::step_event copy = *st;
        copy.rounds = agent::step_rounds_json(rounds);
        CHECK(agent::event_json_text(copy) == line);
        n_steps_with_rounds += !rounds.empty();
        for (const auto& rd : rounds)
            for (const auto& c : rd.calls) n_failed_calls += !c.result;
    }
    CHECK(n_steps_with_rounds >= 2);
    CHECK(n_failed_calls >= 1);
    agent::step_event odd;
    odd.rounds = json::array({1, {{"content", 2}, {"calls", {{{"name", "x"}}}}}});
    const auto rounds = agent::step_rounds(odd);  // a round that is not an object is skipped
    REQUIRE(rounds.size() == 1);
    CHECK(rounds[0].content.empty());
    REQUIRE(rounds[0].calls.size() == 1);
    CHECK(rounds[0].calls[0].name == "x");
    CHECK(rounds[0].calls[0].arguments == json::object());
    CHECK(agent::step_rounds_json({}).is_null());
}

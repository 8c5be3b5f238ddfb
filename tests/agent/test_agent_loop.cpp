// Tests for agent/tooling/agent_loop.h: the tool-agent loop as a step machine, driven by a fake generator
// (scripted texts) and fake tools: a call -> its results -> the final answer; a forced first call; the step
// limit (the last generation may not call); no tools; misuse; and the helpers drivers share (apply,
// shown_result, tool_messages). Also the one list of built-in tool names and agent settings' use of it, and
// the tool choice over a registry that the server's agent sessions read (openai_tools.h).
#include <catch2/catch.hpp>
#include <deque>
#include <string>
#include <vector>

#include "agent/tooling/agent_loop.h"

using namespace mnemos;
using namespace mnemos::agent;
using json = nlohmann::json;

namespace {

std::shared_ptr<const engine::grammar> any_grammar() {
    auto g = engine::grammar::from_json_schema(R"({"type": "object"})", {});
    REQUIRE(g.ok());
    return g.value();
}

loop::loop_options tool_options() {
    loop::loop_options o;
    o.g_auto = any_grammar();
    o.g_forced = any_grammar();
    o.call_tag = {7, 8, 9};
    return o;
}

// Drives the loop like play does, with scripted generations and a tool that echoes its arguments.
struct fake_driver {
    std::deque<std::string> texts;     // what each generation writes
    std::vector<loop::generate> gens;  // what the loop asked for
    std::vector<loop::run_tools> runs;
    loop::done finished;

    void drive(loop::agent_loop& lp) {
        for (auto a = lp.next();; a = lp.next()) {
            if (auto* d = std::get_if<loop::done>(&a)) {
                finished = *d;
                return;
            }
            if (auto* t = std::get_if<loop::run_tools>(&a)) {
                runs.push_back(*t);
                std::vector<json> results;
                for (const auto& c : t->calls) results.push_back({{"result", {{"echo", c.arguments}}}});
                REQUIRE(lp.on_tool_results(results).ok());
                continue;
            }
            gens.push_back(std::get<loop::generate>(a));
            REQUIRE(!texts.empty());
            REQUIRE(lp.on_generated(texts.front()).ok());
            texts.pop_front();
        }
    }
};

const std::string k_roll = "<tool_call>\n{\"name\": \"roll_dice\", \"arguments\": {\"sides\": 6}}\n</tool_call>";

}  // namespace

TEST_CASE("agent loop: a tool call, its results, then the final answer", "[agent_loop]") {
    loop::agent_loop lp(tool_options());
    fake_driver d;
    d.texts = {"Let me roll. " + k_roll, "You rolled."};
    d.drive(lp);
    REQUIRE(d.gens.size() == 2);
    CHECK(d.gens[0].step == 0);
    CHECK(d.gens[0].choice == tool_choice::automatic);
    CHECK(d.gens[0].trigger == "<tool_call>");
    CHECK(d.gens[0].stop == std::vector<std::string>{"</tool_call>"});
    CHECK(d.gens[0].constraint != nullptr);
    CHECK(d.gens[0].prompt_suffix.empty());
    CHECK(d.gens[1].step == 1);
    CHECK(d.gens[1].choice == tool_choice::automatic);
    REQUIRE(d.runs.size() == 1);
    REQUIRE(d.runs[0].calls.size() == 1);
    CHECK(d.runs[0].calls[0].name == "roll_dice");
    CHECK(d.runs[0].calls[0].arguments == json{{"sides", 6}});
    // The call message: the text around the call, then the call in Hermes form.
    CHECK(d.runs[0].content.rfind("Let me roll.", 0) == 0);
    CHECK(d.runs[0].content.find(hermes_tool_call("roll_dice", {{"sides", 6}})) != std::string::npos);
    CHECK(d.finished.text == "You rolled.");
    CHECK(d.finished.n_steps == 2);
    REQUIRE(lp.rounds().size() == 1);
    CHECK(lp.rounds()[0].results[0]["result"]["echo"] == json{{"sides", 6}});
    CHECK(lp.called() == std::vector<std::string>{"roll_dice"});
}

TEST_CASE("agent loop: a forced first call opens with the call tag and carries no text", "[agent_loop]") {
    auto o = tool_options();
    o.first_choice = tool_choice::required;
    loop::agent_loop lp(o);
    fake_driver d;
    d.texts = {R"({"name": "clock", "arguments": {}})", "It is noon."};
    d.drive(lp);
    REQUIRE(d.gens.size() == 2);
    CHECK(d.gens[0].choice == tool_choice::required);
    CHECK(d.gens[0].prompt_suffix == std::vector<engine::token_id>{7, 8, 9});
    CHECK(d.gens[0].constraint == o.g_forced);
    CHECK(d.gens[0].trigger.empty());
    CHECK(d.gens[0].stop.empty());
    CHECK(d.gens[1].choice == tool_choice::automatic);  // only the first generation is forced
    REQUIRE(d.runs.size() == 1);
    CHECK(d.runs[0].content == hermes_tool_call("clock", json::object()));
    CHECK(d.finished.text == "It is noon.");
    // named is forced too; without a forced grammar the first generation is automatic.
    o.first_choice = tool_choice::named;
    CHECK(loop::agent_loop::choice_at(o, 0) == tool_choice::required);
    o.g_forced = nullptr;
    CHECK(loop::agent_loop::choice_at(o, 0) == tool_choice::automatic);
}

TEST_CASE("agent loop: the last generation may not call a tool", "[agent_loop]") {
    auto o = tool_options();
    o.max_steps = 3;
    loop::agent_loop lp(o);
    fake_driver d;
    d.texts = {k_roll, k_roll, k_roll};  // a model that calls forever
    d.drive(lp);
    REQUIRE(d.gens.size() == 3);
    CHECK(d.gens[2].choice == tool_choice::none);
    CHECK(d.gens[2].constraint == nullptr);
    CHECK(d.gens[2].stop.empty());
    CHECK(d.runs.size() == 2);
    CHECK(d.finished.text == k_roll);  // returned as text, not run
    CHECK(d.finished.n_steps == 3);
    CHECK(lp.called().size() == 2);
}

TEST_CASE("agent loop: without tools or with choice none, one plain generation", "[agent_loop]") {
    for (bool tools : {false, true}) {
        loop::loop_options o = tools ? tool_options() : loop::loop_options{};
        o.first_choice = tools ? tool_choice::none : tool_choice::automatic;
        loop::agent_loop lp(o);
        fake_driver d;
        d.texts = {k_roll};
        d.drive(lp);
        REQUIRE(d.gens.size() == 1);
        CHECK(d.gens[0].choice == tool_choice::none);
        CHECK(d.runs.empty());
        CHECK(d.finished.text == k_roll);
    }
}

TEST_CASE("agent loop: feeding the wrong thing is an error and changes nothing", "[agent_loop]") {
    loop::agent_loop lp(tool_options());
    CHECK(lp.on_tool_results({}).code() == errc::internal);
    CHECK(std::holds_alternative<loop::generate>(lp.next()));
    REQUIRE(lp.on_generated(k_roll).ok());
    CHECK(lp.on_generated("again").code() == errc::internal);
    CHECK(lp.on_tool_results({}).code() == errc::internal);  // one call, no results
    CHECK(std::holds_alternative<loop::run_tools>(lp.next()));
    CHECK(lp.on_tool_results({json{{"error", "boom"}}}).ok());
    CHECK(std::holds_alternative<loop::generate>(lp.next()));
}

TEST_CASE("agent loop: apply, shown_result and tool_messages", "[agent_loop]") {
    loop::generate g;
    g.prompt_suffix = {5, 6};
    g.constraint = any_grammar();
    g.trigger = "<tool_call>";
    g.stop = {"</tool_call>"};
    engine::request r;
    r.prompt = {1, 2};
    r.stop = {"<|im_end|>"};
    loop::apply(g, r);
    CHECK(r.prompt == std::vector<engine::token_id>{1, 2, 5, 6});
    CHECK(r.stop == std::vector<std::string>{"<|im_end|>", "</tool_call>"});
    CHECK(r.constraint == g.constraint);
    CHECK(r.constraint_trigger == "<tool_call>");

    CHECK(loop::shown_result({{"result", 3}}) == json(3));
    CHECK(loop::shown_result({{"error", "timeout"}}) == json{{"error", "timeout"}});
    loop::run_tools t;
    t.calls = {{"a", json::object()}, {"b", json::object()}};
    auto msgs = loop::tool_messages(t, {{{"result", 1}}, {{"error", "no"}}});
    REQUIRE(msgs.size() == 2);
    CHECK(msgs[0].role == "tool");
    CHECK(msgs[0].content.find("\"a\"") != std::string::npos);
    CHECK(msgs[1].content.find("no") != std::string::npos);
}

TEST_CASE("built-in tool names: one list, used by agent settings", "[agent_loop]") {
    CHECK(builtin_tools::is_builtin("recall"));
    CHECK(!builtin_tools::is_builtin("teleport"));
    CHECK(builtin_tools::names() == "roll_dice, clock, note, recall");
    auto all = parse_agent_settings(json(true));
    REQUIRE(all.ok());
    CHECK(all->tools == std::vector<std::string>{"roll_dice", "clock", "note", "recall"});
    auto bad = parse_agent_settings(json{{"tools", {"teleport"}}});
    REQUIRE(!bad.ok());
    CHECK(bad.error().message().find("(roll_dice, clock, note, recall)") != std::string::npos);
}

TEST_CASE("tool choice over a registry: parse_tool_choice_value and tool_call_grammar", "[agent_loop]") {
    tools::tool_registry none, two;
    for (const char* n : {"a", "b"}) {
        tools::tool t;
        t.name = n;
        t.parameters = {{"type", "object"}, {"properties", {{"x", {{"type", "integer"}}}}}};
        t.handler = [](const json&, tools::tool_done done) { done(json::object()); };
        REQUIRE(two.add(std::move(t)).ok());
    }
    CHECK(parse_tool_choice_value(json(), two)->choice == tool_choice::automatic);
    CHECK(parse_tool_choice_value(json(), none)->choice == tool_choice::none);
    CHECK(parse_tool_choice_value("auto", none)->choice == tool_choice::none);
    CHECK(parse_tool_choice_value("none", two)->choice == tool_choice::none);
    CHECK(parse_tool_choice_value("required", two)->choice == tool_choice::required);
    auto named = parse_tool_choice_value({{"type", "function"}, {"function", {{"name", "b"}}}}, two);
    REQUIRE(named.ok());
    CHECK(named->choice == tool_choice::named);
    CHECK(named->named == "b");
    CHECK(parse_tool_choice_value("sometimes", two).error().code() == errc::invalid_argument);
    CHECK(parse_tool_choice_value("required", none).error().message() == "'tool_choice' needs 'tools'");
    CHECK(parse_tool_choice_value({{"type", "function"}, {"function", {{"name", "c"}}}}, two).error().message() ==
          "'tool_choice' names an unknown function 'c'");
    CHECK(parse_tool_choice_value(3, two).error().code() == errc::invalid_argument);

    CHECK(tool_call_grammar(two, {tool_choice::none, ""}).value() == nullptr);
    for (auto c : {tool_choice::automatic, tool_choice::required}) CHECK(tool_call_grammar(two, {c, ""}).value());
    CHECK(tool_call_grammar(two, {tool_choice::named, "a"}).value());
    CHECK(tool_call_grammar(two, {tool_choice::named, "c"}).error().code() == errc::invalid_argument);
    CHECK(tool_call_grammar(none, {tool_choice::required, ""}).error().code() == errc::invalid_argument);
}

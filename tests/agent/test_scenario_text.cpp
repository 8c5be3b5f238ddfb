// Tests for probe matching's normalisation (agent/scenario/text_normalize.h) and the runner's text in the
// scenario's language (agent/scenario/runner_text.h): tables of cases, each a fact and an answer that must (or
// must not) match, and the table's keys, languages, placeholders and a scenario's overrides.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "agent/scenario/runner_text.h"
#include "agent/scenario/scenario.h"
#include "agent/scenario/text_normalize.h"
#include "agent/scenario/text_util.h"
#include "tests/agent/scenario_util.h"

using namespace mnemos::agent;
using scenario_text::contains_normalized;
using scenario_text::normalize_for_match;

namespace {

bool matches(const std::string& answer, const std::string& fact) {
    return contains_normalized(normalize_for_match(answer), normalize_for_match(fact));
}

struct match_case {
    const char* answer;
    const char* fact;
    bool match;
};

}  // namespace

TEST_CASE("normalize_for_match: width, case, spaces", "[scenario][text]") {
    CHECK(normalize_for_match("ＡＢＣ１２３") == "abc123");
    CHECK(normalize_for_match("a\u3000\u3000b\n\tc") == "a b c");
    CHECK(normalize_for_match("ÉCOLE Ærø ĀŁŽ") == "école ærø āłž");
    CHECK(normalize_for_match("ΑΘΗΝΑ Москва ЁЖ") == "αθηνα москва ёж");
    CHECK(normalize_for_match("plain text") == "plain text");
    // Invalid UTF-8 passes through byte for byte.
    CHECK(normalize_for_match(std::string("a\xff\xfe b")) == std::string("a\xff\xfe b"));
    CHECK(normalize_for_match(std::string("\xe4\xb8")) == std::string("\xe4\xb8"));
}

TEST_CASE("normalize_for_match: Chinese numerals, times and dates", "[scenario][text]") {
    const std::vector<std::pair<const char*, const char*>> cases = {
        {"21:00", "9:00pm"},
        {"9 pm", "9:00pm"},
        {"9pm", "9:00pm"},
        {"9:00 P.M.", "9:00pm"},
        {"晚上9点", "9:00pm"},
        {"晚上九点", "9:00pm"},
        {"21点", "9:00pm"},
        {"二十一点", "9:00pm"},
        {"09:05", "9:05"},
        {"9点05分", "9:05"},
        {"九点零五分", "9:05"},
        {"九点四十", "9:40"},
        {"９：４０", "9:40"},
        {"九点半", "9:30"},
        {"九点三刻", "9:45"},
        {"12:05", "12:05"},
        {"00:05", "12:05am"},
        {"12 am", "12:00am"},
        {"noon at 12 pm", "noon at 12:00pm"},
        {"9 o'clock", "9:00"},
        {"上午10点", "10:00am"},
        {"两点", "2:00"},
        {"2025-03-03", "2025-3-3"},
        {"2025/3/3", "2025-3-3"},
        {"2025年3月3日", "2025-3-3"},
        {"二〇二五年三月三日", "2025-3-3"},
        {"March 3rd, 2025", "2025-3-3"},
        {"3 March 2025", "2025-3-3"},
        {"the 3rd of March", "the 3-3"},
        {"Sept. 14", "9-14"},
        {"三月三日", "3-3"},
        {"十二月二十五号", "12-25"},
        {"at 9 may have left", "at 9 may have left"},
        {"I have 3 apples", "i have 3 apples"},
        {"一个人", "一个人"},
        {"3.5", "3.5"},
    };
    for (const auto& [in, want] : cases) {
        INFO(in);
        CHECK(normalize_for_match(in) == want);
    }
}

TEST_CASE("probe matching: facts written one way are found written another", "[scenario][text]") {
    const std::vector<match_case> cases = {
        {"He left the greenhouse at 9:40 p.m.", "9:40", true},
        {"He left at 21:40.", "9:40 pm", true},
        {"He left at 9:40.", "21:40", false},  // the fact says evening; the answer does not
        {"他晚上九点四十离开了温室。", "9:40", true},
        {"他是9点40分离开的", "九点四十", true},
        {"大约十一点四十", "11:40", true},
        {"It was 11:40.", "1:40", false},  // a number is not cut
        {"Room 100", "10", false},
        {"Room 10, upstairs", "10", true},
        {"ＪＵＬＩＡＮ was there", "julian", true},
        {"朱利安在露台上", "朱利安", true},
        {"On 3 March the will changed", "March 3rd", true},
        {"遗嘱在3月3日修改", "March 3", true},
        {"On 12 March", "2 March", false},
        {"at 9 in the evening", "9:00pm", false},
        {"ÉLISE", "élise", true},
    };
    for (const auto& c : cases) {
        INFO(c.answer << " / " << c.fact);
        CHECK(matches(c.answer, c.fact) == c.match);
    }
}

TEST_CASE("score_probe normalises must_contain and must_not_reveal", "[scenario][text]") {
    scenario_probe p;
    p.must_contain = {{"九点四十", "9点40"}, {"朱利安"}};
    p.must_not_reveal = {{"ＰＯＩＳＯＮ"}};
    CHECK(score_probe(p, "朱利安 left at 9:40 pm").passed);
    CHECK(!score_probe(p, "朱利安 left at 19:40").passed);
    const auto s = score_probe(p, "朱利安, 9:40, poison");
    CHECK(!s.passed);
    REQUIRE(s.revealed.size() == 1);
    CHECK(s.revealed[0] == "ＰＯＩＳＯＮ");
}

TEST_CASE("runner text: every key has a name, English and Chinese", "[scenario][text]") {
    for (size_t i = 0; i < static_cast<size_t>(runner_text_key::n_keys); ++i) {
        const auto k = static_cast<runner_text_key>(i);
        const std::string name = runner_text_name(k);
        INFO(name);
        REQUIRE(runner_text_key_named(name) == k);
        CHECK(!builtin_runner_text("en", k).empty());
        CHECK(!builtin_runner_text("zh", k).empty());
    }
    CHECK(!runner_text_key_named("nope"));
    CHECK(runner_text_languages() == std::vector<std::string>{"en", "zh"});
    CHECK(runner_text_placeholders(runner_text_key::cue) == std::vector<std::string>{"speaker", "to"});
    CHECK(runner_text_placeholders(runner_text_key::narrator).empty());
}

TEST_CASE("runner text: the scenario's language, its subtags, English otherwise, and overrides", "[scenario][text]") {
    scenario sc;
    sc.language = "en";
    CHECK(runner_text(sc, runner_text_key::cue, {{"speaker", "Ada"}, {"to", "everyone"}}) ==
          "(It is your turn, Ada. Speak to everyone.)");
    CHECK(runner_text(sc, runner_text_key::clue, {{"title", "A {text}"}, {"text", "x"}}) == "Clue: A {text}. x");
    sc.language = "zh-Hans";
    CHECK(runner_text(sc, runner_text_key::cue, {{"speaker", "林歌手"}, {"to", "所有人"}}) ==
          "（轮到你了，林歌手。请对所有人说。）");
    CHECK(runner_text(sc, runner_text_key::everyone) == "所有人");
    sc.language = "fr";
    CHECK(runner_text(sc, runner_text_key::narrator) == "Narrator");
    sc.text_overrides["narrator"] = "Le narrateur";
    sc.text_overrides["cue"] = "[{to}] {speaker}, à vous.";
    CHECK(runner_text(sc, runner_text_key::narrator) == "Le narrateur");
    CHECK(runner_text(sc, runner_text_key::cue, {{"speaker", "Ada"}, {"to", "tous"}}) == "[tous] Ada, à vous.");
    CHECK(fill_text("{a}{b}{unknown}{", {{"a", "1"}, {"b", "{a}"}}) == "1{a}{unknown}{");
}

namespace {

const char* k_minimal = R"({"id": "t", "title": "T", "language": "zh", "kind": "companion",
  "shared": {"public_script": "p"},
  "characters": [{"id": "ada", "name": "阿达", "role": "companion", "persona": "p"}],
  "phases": [{"id": "talk", "kind": "conversation", "turns": [{"speaker": "ada", "interactive": true}]}],
  "runner_text": RT})";

std::string with_runner_text(const std::string& rt) {
    std::string s = k_minimal;
    s.replace(s.find("RT"), 2, rt);
    return s;
}

}  // namespace

TEST_CASE("runner_text in a scenario file: read, and malformed values named", "[scenario][text]") {
    auto ok = parse_scenario(with_runner_text(R"({"cue": "轮到{speaker}了"})"), "t.json");
    REQUIRE(ok.ok());
    CHECK(ok->text_overrides.at("cue") == "轮到{speaker}了");
    CHECK(runner_text(ok.value(), runner_text_key::cue, {{"speaker", "阿达"}}) == "轮到阿达了");

    auto err = [](const std::string& rt) {
        auto r = parse_scenario(with_runner_text(rt), "t.json");
        REQUIRE(!r.ok());
        return r.error().message();
    };
    CHECK_THAT(err("[]"), Catch::Contains("t.json: /runner_text: expected an object"));
    CHECK_THAT(err(R"({"cuee": "x"})"), Catch::Contains("/runner_text/cuee: unknown runner text (known: cue,"));
    CHECK_THAT(err(R"({"cue": 3})"), Catch::Contains("/runner_text/cue: expected a string"));
    CHECK_THAT(err(R"({"cue": "{speaker} {who}"})"),
               Catch::Contains("/runner_text/cue: unknown placeholder {who} (this text may use: {speaker}, {to})"));
    CHECK_THAT(err(R"({"narrator": "{x}"})"), Catch::Contains("(this text may use: none)"));
    CHECK_THAT(err(R"({"cue": "{speaker"})"), Catch::Contains("/runner_text/cue: unbalanced"));
}

TEST_CASE("runner text: the schema lists every key", "[scenario][text]") {
    std::ifstream in(mnemos::test_agent::scenarios_dir() / "scenario.schema.json");
    REQUIRE(in);
    const auto schema = nlohmann::json::parse(in);
    std::set<std::string> in_schema, in_cpp;
    for (const auto& k : schema.at("$defs").at("runner_text").at("propertyNames").at("enum"))
        in_schema.insert(k.get<std::string>());
    for (size_t i = 0; i < static_cast<size_t>(runner_text_key::n_keys); ++i)
        in_cpp.insert(runner_text_name(static_cast<runner_text_key>(i)));
    CHECK(in_schema == in_cpp);
    CHECK(schema.at("properties").at("runner_text").at("$ref") == "#/$defs/runner_text");
}

TEST_CASE("runner text: the Chinese blackwood renders its system texts in Chinese", "[scenario][text]") {
    for (const char* name : {"mystery_blackwood.json", "mystery_blackwood.zh.json"}) {
        auto r = load_scenario((mnemos::test_agent::scenarios_dir() / name).string());
        REQUIRE(r.ok());
        const bool zh = r->language == "zh";
        for (const auto& c : r->characters) {
            INFO(name << " " << c.id);
            const std::string sys = character_system_text(r.value(), c);
            CHECK((sys.find("## 规则") != std::string::npos) == zh);
            CHECK((sys.find("## Rules") != std::string::npos) == !zh);
            if (!c.private_script.empty())
                CHECK((sys.find(zh ? "私密信息（除非合适，不要透露）：" : "Private knowledge (") != std::string::npos));
            CHECK(scenario_text::valid_id(c.id));  // ids stay ASCII handles; names are the cast's own
        }
    }
}

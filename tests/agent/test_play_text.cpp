// Tests for the game's words and its checks around them (agent/play/play.h on the tiny model): a scenario in
// Chinese gets the runner's Chinese text and its characters' display names in every session, with ASCII ids in
// the game log; participants are found by id or by name (width and case folded); the warm-up reports its progress
// and names a system text longer than the window instead of skipping it silently; and a resume after a character's
// text changed is refused naming the character, or applied as a new system message with accept_changes.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/play/play.h"
#include "agent/play/steps.h"
#include "agent/scenario/scenario.h"
#include "memory/store.h"
#include "tests/agent/play_util.h"
#include "tests/agent/scenario_util.h"

using nlohmann::json;
using namespace mnemos;
using namespace mnemos::agent;
using namespace mnemos::test_agent;

namespace {

// ci_smoke in Chinese: the language and the display names change, the ids stay.
scenario smoke_zh() {
    scenario sc = load_smoke();
    sc.language = "zh";
    const std::vector<std::pair<std::string, std::string>> names = {
        {"gm", "主持人"}, {"cook", "厨师"}, {"maid", "女仆"}, {"detective", "侦探"}};
    for (auto& c : sc.characters)
        for (const auto& [id, name] : names)
            if (c.id == id) c.name = name;
    sc.players[0].name = "侦探";
    return sc;
}

// Every (role, content) message of a character's session in a closed store.
std::vector<std::pair<std::string, std::string>> session_messages(const std::string& store_dir, const scenario& sc,
                                                                  const std::string& cid) {
    memory::store_options so;
    so.path = store_dir;
    so.create_if_missing = false;
    auto db = memory::store::open(so);
    REQUIRE(db.ok());
    auto evs = db.value()->read_events(play_character_session_id(sc, cid));
    REQUIRE(evs.ok());
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& e : evs.value()) {
        json j = json::parse(e.json);
        if (j.value("type", "") == "message") out.emplace_back(j.value("role", ""), j.value("content", ""));
    }
    return out;
}

std::optional<std::string> find_participant_of(const scenario& sc, const std::string& who) {
    return play_steps::find_participant(sc, who);
}

bool any_contains(const std::vector<std::pair<std::string, std::string>>& msgs, const std::string& role,
                  const std::string& text) {
    for (const auto& [r, c] : msgs)
        if (r == role && c.find(text) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST_CASE("play text: a Chinese scenario gets Chinese runner text and display names", "[play][text]") {
    temp_dir dir("mnemos_play_text_");
    auto m = load_model(write_model(dir.path, 1024));
    const scenario sc = smoke_zh();
    play_options o = small_options();
    o.store_dir = (dir.path / "db").string();
    std::string streamed;
    o.on_output = [&](std::string_view t) { streamed += t; };
    auto r = play_scenario(sc, m, o);
    REQUIRE(r.ok());

    const auto gm = session_messages(o.store_dir, sc, "gm");
    REQUIRE(!gm.empty());
    CHECK(gm[0].second.find("## 规则") != std::string::npos);
    CHECK(gm[0].second.find("## Rules") == std::string::npos);
    // The game master hands the clue out without keeping it (games_mech); its listeners hear it in Chinese.
    CHECK(!any_contains(gm, "assistant", "线索："));
    CHECK(any_contains(gm, "user", "（轮到你了，主持人。请对所有人说。）"));
    CHECK(any_contains(gm, "user", "厨师：I was in the garden."));
    const auto cook = session_messages(o.store_dir, sc, "cook");
    CHECK(cook[0].second.find("秘密（绝不透露）：\n- You ate a slice.") != std::string::npos);
    CHECK(cook[0].second.find("私密信息（除非合适，不要透露）：") != std::string::npos);
    CHECK(any_contains(cook, "user", "主持人：线索：Paw prints。Paw prints under the window."));
    for (const auto& msgs : {gm, cook})
        for (const auto& [role, content] : msgs) {
            INFO(content);
            CHECK(content.find("It is your turn") == std::string::npos);
            CHECK(content.find("Clue:") == std::string::npos);
        }
    // The printed game and the transcript: Chinese tags and names, the ids only where they are handles.
    CHECK(streamed.find("【线索】线索：Paw prints") != std::string::npos);
    CHECK(streamed.find("侦探 → 女仆：What did you see?") != std::string::npos);
    CHECK(streamed.find("【提问 cook_heard_dog】厨师，What did the maid see?") != std::string::npos);
    CHECK(r->transcript.find("侦探 → 厨师：Did you eat the pie?") != std::string::npos);
    CHECK(r->transcript.find(" -> ") == std::string::npos);
}

TEST_CASE("play text: participants are found by id or by display name, width and case folded", "[play][text]") {
    const scenario sc = smoke_zh();
    using play_steps::find_participant;
    CHECK(find_participant(sc, "cook") == "cook");
    CHECK(find_participant(sc, "ＣＯＯＫ") == "cook");
    CHECK(find_participant(sc, " 厨师 ") == "cook");
    CHECK(find_participant(sc, "侦探") == "detective");
    CHECK(find_participant(sc, "所有人") == "all");
    CHECK(find_participant(sc, "Everyone") == "all");
    CHECK(!find_participant(sc, "园丁"));
    CHECK(!find_participant(sc, ""));
    CHECK(play_steps::display_name(sc, "") == "旁白");
    CHECK(play_steps::display_name(sc, "all") == "所有人");
    CHECK(play_steps::cue(sc, "maid", "cook") == "（轮到你了，女仆。请对厨师说。）");
}

TEST_CASE("play text: a typed line addresses someone with ASCII or full-width marks", "[play][text]") {
    auto line = parse_player_line("＠厨师：你中午在哪里？");
    CHECK(line.to == "厨师");
    CHECK(line.text == "你中午在哪里？");
    line = parse_player_line("@厨师\u3000你在哪？");
    CHECK(line.to == "厨师");
    CHECK(line.text == "你在哪？");
    line = parse_player_line("@Cook: where were you? at: noon");
    CHECK(line.to == "Cook");
    CHECK(line.text == "where were you? at: noon");
    line = parse_player_line("just a line：with a colon");
    CHECK(line.to.empty());
    CHECK(line.text == "just a line：with a colon");
    CHECK(find_participant_of(smoke_zh(), parse_player_line("＠ＣＯＯＫ：hi").to) == "cook");
}

TEST_CASE("play text: the warm-up reports each character and names a system text longer than the window",
          "[play][text]") {
    temp_dir dir("mnemos_play_warm_");
    SECTION("every character is prefilled, the last report of each complete") {
        auto m = load_model(write_model(dir.path, 1024));
        const scenario sc = load_smoke();
        play_options o = small_options();
        o.max_steps = 0;
        std::vector<warmup_progress> seen;
        o.on_warmup = [&](const warmup_progress& w) { seen.push_back(w); };
        REQUIRE(play_scenario(sc, m, o).ok());
        std::vector<std::string> done;
        for (const auto& w : seen) {
            CHECK(w.n_characters == 3);
            CHECK(!w.skipped);
            CHECK(w.n_done <= w.n_tokens);
            if (w.n_done == w.n_tokens) done.push_back(w.name);
        }
        CHECK(done == std::vector<std::string>{"Host", "Cook", "Maid"});
    }
    SECTION("a system text longer than the window is reported, not skipped silently") {
        auto m = load_model(write_model(dir.path, 256));
        scenario sc = load_smoke();
        for (auto& c : sc.characters)
            if (c.id == "maid")
                for (int i = 0; i < 80; ++i) c.private_script += " The dog sat by the kitchen window again.";
        play_options o = small_options();
        o.max_steps = 0;
        o.attention.mode = engine::attention_mode::full;  // sequences bounded by n_ctx (sparse ones are not)
        std::vector<warmup_progress> seen;
        std::string progress;
        o.on_warmup = [&](const warmup_progress& w) { seen.push_back(w); };
        o.on_progress = [&](std::string_view l) { (progress += l) += "\n"; };
        REQUIRE(play_scenario(sc, m, o).ok());
        bool maid_skipped = false;
        for (const auto& w : seen) maid_skipped = maid_skipped || (w.name == "Maid" && w.skipped);
        CHECK(maid_skipped);
        CHECK_THAT(progress, Catch::Contains("the system text of Maid (maid) is"));
        CHECK_THAT(progress, Catch::Contains("more than the window"));
        CHECK_THAT(progress, Catch::Contains("(context full)"));
    }
}

TEST_CASE("play text: resume after a character's text changed is refused, or applied with accept_changes",
          "[play][text][resume]") {
    temp_dir dir("mnemos_play_changed_");
    auto m = load_model(write_model(dir.path, 1024));
    scenario sc = load_smoke();
    play_options o = small_options();
    o.store_dir = (dir.path / "db").string();
    o.max_steps = 4;
    REQUIRE(play_scenario(sc, m, o).ok());

    SECTION("the same scenario resumes") {
        o.resume = true;
        o.max_steps = -1;
        auto r = play_scenario(sc, m, o);
        INFO((r.ok() ? std::string() : r.error().message()));
        CHECK(r.ok());
    }
    SECTION("a changed private script is refused, naming the character; accept_changes applies it") {
        for (auto& c : sc.characters)
            if (c.id == "cook") c.private_script = "At noon you were in the cellar.";
        o.resume = true;
        o.max_steps = -1;
        auto refused = play_scenario(sc, m, o);
        REQUIRE(!refused.ok());
        CHECK_THAT(refused.error().message(), Catch::Contains("the system text of Cook (cook) differs"));
        CHECK_THAT(refused.error().message(), Catch::Contains("--accept-changes"));
        CHECK_THAT(refused.error().message(), !Catch::Contains("Maid"));

        o.accept_changes = true;
        auto accepted = play_scenario(sc, m, o);
        INFO((accepted.ok() ? std::string() : accepted.error().message()));
        REQUIRE(accepted.ok());
        CHECK(accepted->n_steps_done == accepted->n_steps);
        const auto cook = session_messages(o.store_dir, sc, "cook");
        REQUIRE(cook.size() > 2);
        CHECK(cook[0].second.find("garden") != std::string::npos);  // the old text stays where it was
        size_t n_system = 0;
        for (const auto& [role, content] : cook)
            if (role == "system") {
                ++n_system;
                if (n_system == 2) CHECK(content == character_system_text(sc, sc.characters[1]));
            }
        CHECK(n_system == 2);
        CHECK(session_messages(o.store_dir, sc, "maid").front().first == "system");

        // The new text is now the game's: a further resume needs no flag.
        o.accept_changes = false;
        auto again = play_scenario(sc, m, o);
        INFO((again.ok() ? std::string() : again.error().message()));
        CHECK(again.ok());
    }
    SECTION("a changed rule changes every character") {
        sc.rules = "Answer in two short sentences.";
        o.resume = true;
        auto refused = play_scenario(sc, m, o);
        REQUIRE(!refused.ok());
        CHECK_THAT(refused.error().message(), Catch::Contains("Host (gm), Cook (cook), Maid (maid)"));
    }
}

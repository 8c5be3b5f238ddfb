// Tests for the tool-agent game master of agent/play.h on
// scenarios/tool_agent_inventory.json with a tiny random model and
// tool_choice "required" (a random model never writes <tool_call> by itself):
// every game-master turn calls the scenario's tools, the calls run against
// packs kept by the runner, calls and results are durable events (game log
// and the character's session), expect_tools / must_call_tools are scored
// from the calls made, the packs are rebuilt from the game log on resume
// (the resumed game's log equals an uninterrupted one), and generations
// whose context outgrows the scenario's window see the system text plus a
// recent window.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "agent/play.h"
#include "agent/runtime.h"
#include "agent/scenario.h"
#include "memory/store.h"
#include "tests/support/tiny_model.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace mnemos;
using namespace mnemos::agent;

namespace {

struct tmp_dir {
    fs::path path;
    tmp_dir() {
        path = fs::temp_directory_path() / ("mnemos_play_tools_" + random_hex(8));
        fs::create_directories(path);
    }
    ~tmp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::shared_ptr<const engine::model> tiny_chat_model(const fs::path& dir) {
    const std::string path = (dir / "tiny.gguf").string();
    test::tiny_model_options o;
    o.tokenizer = "gpt2";
    o.n_embd = 64;
    o.n_ff = 128;
    o.n_ctx = 4096;
    REQUIRE(test::write_tiny_model(path, o));
    auto loaded = engine::model::load(path);
    REQUIRE(loaded.ok());
    return std::shared_ptr<const engine::model>(std::move(loaded.value()));
}

scenario load_tool_scenario() {
    fs::path p = fs::path(__FILE__).parent_path() / ".." / ".." / "scenarios" / "tool_agent_inventory.json";
    auto r = load_scenario(p.string());
    INFO((r.ok() ? std::string() : r.error().message()));
    REQUIRE(r.ok());
    return std::move(r).value();
}

play_options tool_options(const std::string& store) {
    play_options o;
    o.store_dir = store;
    o.max_tokens = 6;
    o.n_threads = 1;
    o.tool_choice = "required";
    return o;
}

std::vector<json> read_log(const std::string& store_dir, const std::string& id) {
    memory::store_options so;
    so.path = store_dir;
    so.create_if_missing = false;
    auto db = memory::store::open(so);
    REQUIRE(db.ok());
    auto evs = db.value()->read_events(id);
    REQUIRE(evs.ok());
    std::vector<json> out;
    for (const auto& e : evs.value()) {
        json j = json::parse(e.json);
        j.erase("ts");
        out.push_back(std::move(j));
    }
    return out;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

TEST_CASE("play tools: the game master's calls run, are durable, scored, and survive a resume", "[play][tools]") {
    tmp_dir dir;
    auto m = tiny_chat_model(dir.path);
    const scenario sc = load_tool_scenario();
    const std::string clean_store = (dir.path / "clean").string(), cut_store = (dir.path / "cut").string();

    auto clean = play_scenario(sc, m, tool_options(clean_store));
    INFO((clean.ok() ? std::string() : clean.error().to_string()));
    REQUIRE(clean.ok());

    // Interrupted after the second game-master turn, then resumed: the packs must come back from the game log.
    play_options first = tool_options(cut_store);
    first.max_steps = 5;
    REQUIRE(play_scenario(sc, m, first).ok());
    play_options again = tool_options(cut_store);
    again.resume = true;
    auto resumed = play_scenario(sc, m, again);
    INFO((resumed.ok() ? std::string() : resumed.error().to_string()));
    REQUIRE(resumed.ok());
    CHECK(resumed->n_steps_resumed == 5);

    const std::string game = play_game_session_id(sc), gm = play_character_session_id(sc, "quartermaster");
    const auto log = read_log(clean_store, game);
    CHECK(read_log(cut_store, game) == log);
    {
        // The character's session: same (role, content) messages, with the calls and results in it.
        auto msgs = [](const std::vector<json>& evs) {
            std::vector<std::pair<std::string, std::string>> v;
            for (const auto& e : evs) v.emplace_back(e.value("role", ""), e.value("content", ""));
            return v;
        };
        const auto a = read_log(clean_store, gm);
        CHECK(msgs(read_log(cut_store, gm)) == msgs(a));
        int n_tool = 0, n_call = 0;
        for (const auto& e : a) {
            n_tool += e.value("role", "") == "tool";
            n_call += e.value("content", "").find("<tool_call>") != std::string::npos;
        }
        CHECK(n_tool > 0);
        CHECK(n_call > 0);
    }

    // Every game-master turn and probe called a tool (tool_choice required); the packs kept by the runner
    // agree with an independent replay of the calls in log order (probes act on a copy).
    std::map<std::string, std::map<std::string, int64_t>> packs;
    int n_calls = 0, n_checked_lists = 0;
    for (const auto& ev : log) {
        const std::string kind = ev.value("kind", "");
        if (kind != "turn" && kind != "probe") continue;
        INFO(ev.dump());
        REQUIRE(ev.contains("rounds"));
        REQUIRE(!ev["rounds"].empty());
        auto state = packs;  // probes: a copy
        auto& st = kind == "turn" ? packs : state;
        for (const auto& rd : ev["rounds"])
            for (const auto& c : rd["calls"]) {
                ++n_calls;
                const std::string name = c["name"];
                const json& a = c["arguments"];
                CHECK((c.contains("result") || c.contains("error")));
                if (!c.contains("result")) continue;
                const json& r = c["result"];
                if (name == "add_item") {
                    auto& q = st[a["owner"]][lower(a["item"])];
                    q += a.value("quantity", 1);
                    CHECK(r["quantity"] == q);
                } else if (name == "remove_item") {
                    CHECK(r["owner"] == a["owner"]);
                    auto& pack = st[a["owner"]];
                    auto it = pack.find(lower(r["item"]));
                    REQUIRE(it != pack.end());
                    it->second -= a.value("quantity", 1);
                    CHECK(r["quantity"] == it->second);
                    if (it->second == 0) pack.erase(it);
                } else if (name == "list_inventory") {
                    auto check_pack = [&](const std::string& owner, const json& items) {
                        std::map<std::string, int64_t> got;
                        for (const auto& i : items) got[lower(i["item"])] = i["quantity"];
                        std::map<std::string, int64_t> want;
                        for (const auto& [k, v] : st[owner])
                            if (v > 0) want[k] = v;
                        CHECK(got == want);
                        ++n_checked_lists;
                    };
                    if (r.contains("owner"))
                        check_pack(r["owner"], r["items"]);
                    else
                        for (const auto& [owner, items] : r["packs"].items()) check_pack(owner, items);
                }
            }
    }
    CHECK(n_calls >= 13);  // 7 turns + 6 probes

    // Scores come from the calls made.
    const auto& rep = clean.value();
    REQUIRE(rep.tool_turns.size() == 7);
    int n_passed = 0;
    for (const auto& t : rep.tool_turns) {
        std::set<std::string> called(t.called.begin(), t.called.end());
        bool all = true;
        for (const auto& e : t.expected) all = all && called.count(e);
        CHECK(t.passed == all);
        CHECK(!t.called.empty());
        n_passed += t.passed;
    }
    CHECK(rep.n_tool_turns_passed == n_passed);
    for (const auto& p : rep.probes) {
        const auto* sp = [&]() -> const scenario_probe* {
            for (const auto& q : sc.probes)
                if (q.id == p.id) return &q;
            return nullptr;
        }();
        REQUIRE(sp);
        CHECK(!p.tools_called.empty());
        for (const auto& t : sp->must_call_tools) {
            const bool called = std::find(p.tools_called.begin(), p.tools_called.end(), t) != p.tools_called.end();
            const bool reported_missing =
                std::find(p.score.tools_missing.begin(), p.score.tools_missing.end(), t) != p.score.tools_missing.end();
            CHECK(called != reported_missing);
        }
    }
    const json res = json::parse(rep.results_json);
    CHECK(res["tool_score"]["total"] == 7);
    CHECK(res["tool_turns"].size() == 7);
    // The road log (~8.5k tokens) outgrows the 2048-token window: the gate's generations were windowed.
    CHECK(res["context"]["window_tokens"] == 2048);
    CHECK(rep.n_windowed > 0);
}

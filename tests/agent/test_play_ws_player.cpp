// Interactive players over the WebSocket (mnemos play --serve): a {"type": "player"} frame posts the player's
// line to the game's player_inbox (agent/player_inbox.h) through server_options::on_player; the player's
// turn takes it (whether it came before the turn or while the turn waited), and a turn whose line does not
// come in time is skipped. Bad frames (no game, a key that may not speak as the player, an unknown player,
// empty, too long, not UTF-8 / not JSON) get error frames and the socket keeps working.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/runtime.h"
#include "agent/play/play.h"
#include "agent/play/player_inbox.h"
#include "agent/scenario/scenario.h"
#include "agent/server/server.h"
#include "memory/store.h"
#include "tests/agent/scenario_util.h"
#include "tests/agent/ws_client.h"
#include "tests/support/tiny_model.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace mnemos;
using namespace mnemos::agent;

using namespace mnemos::test_agent;

namespace {

// ci_smoke with its detective made an interactive player who has three turns in the introduction.
scenario interactive_smoke(const fs::path& dir) {
    std::ifstream in(scenarios_dir() / "ci_smoke.json");
    json j = json::parse(in);
    j["players"][0]["mode"] = "interactive";
    json& turns = j["phases"][0]["turns"];
    for (int i = 0; i < 3; ++i) turns.push_back({{"speaker", "detective"}, {"to", "maid"}, {"interactive", true}});
    const fs::path p = dir / "interactive_smoke.json";
    std::ofstream(p) << j.dump(2);
    auto sc = load_scenario(p.string());
    INFO((sc.ok() ? std::string() : sc.error().message()));
    REQUIRE(sc.ok());
    return std::move(sc).value();
}

std::vector<json> read_events(const std::string& store_dir, const std::string& sid) {
    memory::store_options so;
    so.path = store_dir;
    so.create_if_missing = false;
    auto db = memory::store::open(so);
    REQUIRE(db.ok());
    auto evs = db.value()->read_events(sid);
    REQUIRE(evs.ok());
    std::vector<json> out;
    for (const auto& e : evs.value()) out.push_back(json::parse(e.json));
    return out;
}

std::string player_frame(const std::string& name, const std::string& content) {
    return json{{"type", "player"}, {"name", name}, {"content", content}}.dump();
}

// The reply to one frame: its type, and the message of an error.
std::string reply(test_agent::ws_client& c, const std::string& frame, std::string* message = nullptr) {
    c.send(frame);
    auto f = c.next();
    if (!f) return "(none)";
    if (message) *message = f->value("message", "");
    return f->value("type", "");
}

}  // namespace

TEST_CASE("player_inbox: lines wait for their player's turn, in order; a wait times out", "[play][player]") {
    player_inbox inbox({"Ann"});
    CHECK(inbox.post("Bob", "hi").find("no interactive player") != std::string::npos);
    CHECK(inbox.post("Ann", "one").empty());
    CHECK(inbox.post("Ann", "two").empty());
    CHECK(inbox.queued("Ann") == 2);
    CHECK(inbox.wait("Ann", std::chrono::milliseconds(0)) == std::optional<std::string>("one"));
    CHECK(inbox.wait("Ann", std::chrono::milliseconds(0)) == std::optional<std::string>("two"));
    CHECK(!inbox.wait("Ann", std::chrono::milliseconds(50)));
    CHECK(!inbox.wait("Bob", std::chrono::milliseconds(0)));
    // A line posted from another thread while the turn waits.
    std::thread t([&] {
        while (!inbox.waiting_for("Ann")) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        inbox.post("Ann", "three");
    });
    CHECK(inbox.wait("Ann", std::chrono::seconds(10)) == std::optional<std::string>("three"));
    t.join();
    for (size_t i = 0; i < player_inbox::max_queued; ++i) CHECK(inbox.post("Ann", "x").empty());
    CHECK(inbox.post("Ann", "x").find("too many") != std::string::npos);
    inbox.close();
    CHECK(inbox.wait("Ann", std::chrono::seconds(10)) == std::optional<std::string>("x"));
}

TEST_CASE(
    "play --serve: an interactive player's line comes over the WebSocket; bad frames get errors; a late one is skipped",
    "[play][ws][player]") {
    temp_dir dir("mnemos_play_player_test_");
    auto m = load_model(write_model(dir.path));
    const scenario sc = interactive_smoke(dir.path);
    const std::string name = "Detective";
    REQUIRE(sc.find_player("detective"));
    REQUIRE(sc.find_player("detective")->name == name);

    player_inbox inbox({name});
    play_options o;
    o.max_tokens = 6;
    o.n_threads = 1;
    o.store_dir = (dir.path / "store").string();
    std::atomic<int> n_asked{0};
    o.ask_player = [&](const player_prompt& q) {
        // The detective's scripted turns keep their lines (an empty answer). Of the three interactive ones, the
        // first two get their lines; the third waits briefly and is skipped.
        if (!q.scripted.empty()) return player_line{};
        const int k = n_asked++;
        auto line = inbox.wait(q.player, k < 2 ? std::chrono::milliseconds(20000) : std::chrono::milliseconds(300));
        return player_line{line.value_or(std::string()), {}};
    };

    const std::string first = "Where were you at noon, Mary?", second = "Who opened the window?";
    std::unique_ptr<server> srv;
    std::thread late;  // sends the second line while the game waits for it
    bool served = false, late_acked = false;
    std::vector<std::pair<std::string, std::string>> replies;  // (what was sent, reply type)
    std::string no_game_reply, long_message;
    // (No REQUIRE inside the callbacks: they run inside play_scenario.)
    o.on_runtime = [&](engine_runner& runner, session_manager& sm) {
        {  // A server with no game behind it refuses player frames.
            server_options bare;
            bare.port = 0;
            auto s0 = server::start(bare, runner, sm);
            if (!s0.ok()) return;
            test_agent::ws_client c(s0.value()->port(), "/v1/ws");
            if (c.ok) no_game_reply = reply(c, player_frame(name, first));
        }
        server_options so;
        so.port = 0;
        api_key detective, host, spectator;
        detective.key = "detective-secret";
        detective.name = name;
        host.key = "host-secret";
        host.name = "host";
        host.create = true;
        spectator.key = "spectator-secret";
        spectator.name = "spectator";
        spectator.read = {sc.id + ".*"};
        so.auth.keys = {detective, host, spectator};
        so.on_player = [&](const std::string& who, const std::string& content) { return inbox.post(who, content); };
        auto started = server::start(so, runner, sm);
        if (!started.ok()) return;
        srv = std::move(started.value());
        test_agent::ws_client spec(srv->port(), "/v1/ws", "spectator-secret");
        test_agent::ws_client det(srv->port(), "/v1/ws", "detective-secret");
        test_agent::ws_client op(srv->port(), "/v1/ws", "host-secret");
        if (!spec.ok || !det.ok || !op.ok) return;
        replies.push_back({"spectator speaks as the player", reply(spec, player_frame(name, first))});
        replies.push_back({"detective speaks as another", reply(det, player_frame("Mary", first))});
        replies.push_back({"unknown player", reply(op, player_frame("Nobody", first))});
        replies.push_back({"empty content", reply(det, player_frame(name, ""))});
        replies.push_back({"too long", reply(det, player_frame(name, std::string(5000, 'a')), &long_message)});
        replies.push_back({"no name", reply(det, json{{"type", "player"}, {"content", first}}.dump())});
        replies.push_back(
            {"content not a string", reply(det, json{{"type", "player"}, {"name", name}, {"content", 3}}.dump())});
        det.send_binary("{\"type\": \"player\", \"name\": \"Detective\", \"content\": \"\xff\xfe\"}");
        auto bad = det.next();
        replies.push_back({"invalid UTF-8", bad ? bad->value("type", "") : "(none)"});
        // The socket still works: the detective's own line, queued before the turn.
        const std::string ok = reply(det, player_frame(name, first));
        served = ok == "player_ack";
        // The second line comes once the game is waiting for the detective's second turn.
        const uint16_t port = srv->port();
        late = std::thread([&, port] {
            for (int i = 0; i < 20000 && !(inbox.waiting_for(name) && inbox.queued(name) == 0); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            test_agent::ws_client c(port, "/v1/ws", "host-secret");  // an operator key may speak for any player
            if (c.ok) late_acked = reply(c, player_frame(name, second)) == "player_ack";
        });
    };
    o.on_teardown = [&] {
        if (late.joinable()) late.join();
        srv.reset();
    };
    auto r = play_scenario(sc, m, o);
    if (late.joinable()) late.join();
    INFO((r.ok() ? std::string() : r.error().to_string()));
    REQUIRE(r.ok());
    CHECK(no_game_reply == "error");
    REQUIRE(served);
    for (const auto& [what, type] : replies) {
        INFO(what);
        CHECK(type == "error");
    }
    CHECK(long_message.find("too long") != std::string::npos);
    CHECK(late_acked);
    CHECK(n_asked == 3);

    // The game log: the detective's two lines, then a skipped turn.
    std::vector<json> det_steps;
    for (const auto& ev : read_events(o.store_dir, play_game_session_id(sc)))
        if (ev.value("speaker", "") == "detective" && ev.value("phase", "") == "intro") det_steps.push_back(ev);
    INFO(json(det_steps).dump());
    REQUIRE(det_steps.size() == 3);
    CHECK(det_steps[0].value("text", "") == first);
    CHECK(det_steps[1].value("text", "") == second);
    CHECK(det_steps[2].value("text", "x").empty());
    CHECK(det_steps[2].value("skipped", false));
    // The maid heard both lines as the detective's.
    int heard = 0;
    for (const auto& ev : read_events(o.store_dir, play_character_session_id(sc, "maid"))) {
        const std::string content = ev.value("content", "");
        if (content.find(first) != std::string::npos || content.find(second) != std::string::npos) {
            CHECK(content.find(name) != std::string::npos);
            ++heard;
        }
    }
    CHECK(heard == 2);
}

// Ctrl-C and SIGTERM for the commands, driven on the real binary: `play` stops after its step, says where
// and how to go on, and a resumed run reads KV from the disk and ends with the same game as an uninterrupted
// one; `serve` and `chat` shut down cleanly on SIGTERM with every acknowledged event in the store.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "memory/store.h"
#include "tests/agent/pty_process.h"
#include "tests/agent/scenario_util.h"
#include "tests/agent/server_fixture.h"

using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

const std::string k_model = std::string(MNEMOS_SHARED_DIR) + "/models/stories260K-f32.gguf";
const std::string k_scenario = std::string(MNEMOS_SOURCE_DIR) + "/scenarios/mystery_blackwood.json";

std::vector<std::string> play_args(const std::string& store, const std::string& transcript) {
    return {MNEMOS_BINARY,  "play",     k_scenario, "--model",   k_model, "--store",      store,
            "--transcript", transcript, "--quiet",  "--threads", "1",     "--max-tokens", "8"};
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// "prefix hits: A memory, B disk, C computed" of play's last line: B.
long long disk_hits(const std::string& out) {
    std::smatch m;
    static const std::regex hits("prefix hits: \\d+ memory, (\\d+) disk");
    return std::regex_search(out, m, hits) ? std::stoll(m[1]) : -1;
}

}  // namespace

TEST_CASE("play: Ctrl-C stops after the step; --resume reads the disk and ends with the same game",
          "[agent][cli][signals]") {
    if (!std::filesystem::exists(k_model)) {
        WARN("skipped: " << k_model << " not found");
        return;
    }
    temp_dir dir("mnemos_play_int_");
    const auto store = (dir.path / "db").string(), whole = (dir.path / "whole").string();
    const auto t_resumed = dir.path / "resumed.txt", t_whole = dir.path / "whole.txt";
    {
        pty_process play(play_args(store, t_resumed.string()));
        REQUIRE(play.wait_for("[play] phase 2/", 0, 300000));
        kill(play.pid, SIGINT);
        REQUIRE(play.wait_for("; run the same command with --resume to continue", 0, 300000));
        CHECK(play.out.find("interrupted at step ") != std::string::npos);
        CHECK(play.wait_exit() == 130);
    }
    std::string resumed_out;
    {
        auto args = play_args(store, t_resumed.string());
        args.push_back("--resume");
        pty_process play(args);
        REQUIRE(play.wait_for("prefix hits:", 0, 600000));
        play.wait_for("\n", play.out.find("prefix hits:"));
        CHECK(play.wait_exit() == 0);
        resumed_out = play.out;
    }
    INFO(resumed_out);
    CHECK(resumed_out.find("[play] resuming ") != std::string::npos);
    CHECK(disk_hits(resumed_out) > 0);
    {
        pty_process play(play_args(whole, t_whole.string()));
        REQUIRE(play.wait_for("prefix hits:", 0, 600000));
        CHECK(play.wait_exit() == 0);
    }
    const std::string a = read_file(t_resumed), b = read_file(t_whole);
    REQUIRE(!b.empty());
    CHECK(a == b);
}

TEST_CASE("serve: SIGTERM shuts down cleanly with every acknowledged event stored", "[agent][cli][signals]") {
    if (!std::filesystem::exists(k_model)) {
        WARN("skipped: " << k_model << " not found");
        return;
    }
    temp_dir dir("mnemos_serve_term_");
    const std::string store = (dir.path / "db").string();
    pty_process serve({MNEMOS_BINARY, "serve", "--model", k_model, "--store", store, "--port", "0", "--threads", "1",
                       "--max-tokens", "8"});
    REQUIRE(serve.wait_for("on http://127.0.0.1:"));
    serve.wait_for("\n", serve.out.find("on http://127.0.0.1:"));
    std::smatch m;
    REQUIRE(std::regex_search(serve.out, m, std::regex("on http://127\\.0\\.0\\.1:(\\d+)")));
    const auto port = static_cast<uint16_t>(std::stoi(m[1]));
    auto created = request(port, "POST", "/v1/sessions", R"({"id":"s1"})");
    REQUIRE(created.status / 100 == 2);
    auto turn = request(port, "POST", "/v1/sessions/s1/messages", R"({"content":"Hello","temperature":0})");
    REQUIRE(turn.status == 200);
    kill(serve.pid, SIGTERM);
    CHECK(serve.wait_exit() == 0);
    auto db = memory::store::open({.path = store});  // not locked, not damaged
    REQUIRE(db.ok());
    auto evs = db.value()->read_events("s1");
    REQUIRE(evs.ok());
    REQUIRE(evs->size() >= 2);  // the user's line, the reply
    CHECK(evs->back().json.find("\"role\":\"assistant\"") != std::string::npos);
}

TEST_CASE("chat: SIGTERM at the prompt leaves with the conversation stored", "[agent][cli][signals]") {
    if (!std::filesystem::exists(k_model)) {
        WARN("skipped: " << k_model << " not found");
        return;
    }
    temp_dir dir("mnemos_chat_term_");
    const std::string store = (dir.path / "db").string();
    {
        pty_process chat({MNEMOS_BINARY, "chat", "--model", k_model, "--store", store, "--session", "c1",
                          "--max-tokens", "8", "--threads", "1"});
        REQUIRE(chat.wait_for("> "));
        const size_t before = chat.out.size();
        chat.type("hello\n");
        REQUIRE(chat.wait_for(" generated, ", before));  // the reply's statistics line, then the prompt
        REQUIRE(chat.wait_for("> ", chat.out.find(" generated, ", before)));
        kill(chat.pid, SIGTERM);
        CHECK(chat.wait_exit() == 0);
    }
    auto db = memory::store::open({.path = store});
    REQUIRE(db.ok());
    auto evs = db.value()->read_events("c1");
    REQUIRE(evs.ok());
    CHECK(evs->size() == 2);  // the user's line and the reply
}

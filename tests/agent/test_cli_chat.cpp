// The command line driven as a user does: `mnemos chat` in a pseudo-terminal (Ctrl-C in the middle of a
// reply stops it, returns to the prompt and stores the partial reply marked "interrupted"; /exit leaves
// with status 0 and the store reopens with the conversation), and `mnemos --version`.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/core/runtime.h"
#include "memory/store.h"
#include "tests/agent/pty_process.h"
#include "tests/agent/scenario_util.h"

using namespace mnemos;
using namespace mnemos::test_agent;

TEST_CASE("chat: Ctrl-C mid-reply returns to the prompt and keeps the partial reply", "[agent][cli][chat]") {
    // A real model: random-weight SmolLM writes ~100 tokens/s on one thread and almost never ends a
    // reply by itself, so the reply is still streaming when Ctrl-C comes.
    const std::string model = std::string(MNEMOS_SHARED_DIR) + "/models/smollm-bpe-r-q4_k_m.gguf";
    if (!std::filesystem::exists(model)) {
        WARN("skipped: " << model << " not found");
        return;
    }
    temp_dir dir("mnemos_chat_");
    const std::string store = (dir.path / "db").string();
    {
        pty_process chat({MNEMOS_BINARY, "chat", "--model", model, "--store", store, "--session", "c1", "--max-tokens",
                          "1000000", "--ctx", "4096", "--temp", "1", "--threads", "1"});
        REQUIRE(chat.wait_for("> "));
        const size_t before = chat.out.size();
        chat.type("tell me everything\n");
        // The reply is streaming: some of it has arrived (the echo of the line, then at least 200 bytes).
        REQUIRE(chat.wait_for("tell me everything", before));
        const size_t echo = chat.out.size();
        REQUIRE(chat.wait_bytes(echo + 100));
        chat.type("\x03");  // Ctrl-C, as the terminal sends it
        REQUIRE(chat.wait_for("[interrupted]", echo));
        REQUIRE(chat.wait_for("> ", chat.out.find("[interrupted]")));
        chat.type("/exit\n");
        CHECK(chat.wait_exit() == 0);
    }
    auto db = memory::store::open({.path = store});
    REQUIRE(db.ok());
    auto evs = db.value()->read_events("c1");
    REQUIRE(evs.ok());
    REQUIRE(evs->size() == 2);  // a session without a system prompt: the user's line, the partial reply
    const std::string last = evs->back().json;
    CHECK(last.find("\"role\":\"assistant\"") != std::string::npos);
    CHECK(last.find("\"interrupted\":true") != std::string::npos);
}

TEST_CASE("version: the binary names its version, commit, build type and kernels", "[agent][cli]") {
    FILE* p = popen((std::string(MNEMOS_BINARY) + " --version").c_str(), "r");
    REQUIRE(p);
    std::string out;
    char buf[256];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    CHECK(pclose(p) == 0);
    CHECK(out.rfind("mnemos ", 0) == 0);
    CHECK(out.find("commit ") != std::string::npos);
    CHECK(out.find(" build)") != std::string::npos);
    CHECK(out.find("cpu kernels: ") != std::string::npos);
}

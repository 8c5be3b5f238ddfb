// Tests for agent/core/runtime.h: runtime::open composes store, engine thread, session store and
// session manager; its teardown leaves a store that a second runtime reopens with every session and
// the KV blocks of its history; the page size comes from the engine.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <future>

#include "agent/core/runtime.h"
#include "memory/store.h"
#include "tests/agent/scenario_util.h"

using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

// One turn of `s`: the prompt of begin_turn generated to max_tokens, the reply appended.
void one_turn(agent::runtime& rt, const agent::session_ptr& s, const std::string& text) {
    auto plan = rt.sessions().begin_turn(s, {{"user", text}});
    REQUIRE(plan.ok());
    engine::request r;
    r.prompt = plan->prompt;
    r.max_tokens = 4;
    std::promise<engine::finish_info> done;
    r.on_finish = [&done](const engine::finish_info& info) { done.set_value(info); };
    rt.runner().submit(std::move(r));
    auto info = done.get_future().get();
    REQUIRE(info.reason != engine::finish_reason::error);
    REQUIRE(rt.sessions().end_turn(s, "ok", true).ok());
}

}  // namespace

TEST_CASE("runtime: open with a store, tear down, reopen with sessions and KV", "[agent][runtime]") {
    temp_dir dir("mnemos_runtime_");
    auto m = load_model(write_model(dir.path, 1024));
    agent::runtime_options o;
    o.store_dir = (dir.path / "db").string();
    {
        auto rt = agent::runtime::open(m, o);
        REQUIRE(rt.ok());
        CHECK(rt.value()->store() != nullptr);
        CHECK(rt.value()->runner().page_size() == 16);
        agent::character c;
        c.persona = "You are a careful butler who remembers every guest.";
        auto s = rt.value()->sessions().create("butler", c, "");
        REQUIRE(s.ok());
        one_turn(*rt.value(), s.value(), "Who came to dinner yesterday evening?");
    }
    auto rt = agent::runtime::open(m, o);
    REQUIRE(rt.ok());
    auto s = rt.value()->sessions().find("butler");
    REQUIRE(s.ok());
    CHECK(s.value()->messages().size() == 3);  // system, user, assistant
    CHECK(rt.value()->store()->stats().n_blocks > 0);
}

TEST_CASE("runtime: without a store sessions live in memory; a bad store is an error naming it", "[agent][runtime]") {
    temp_dir dir("mnemos_runtime_");
    auto m = load_model(write_model(dir.path, 1024));
    auto rt = agent::runtime::open(m, {});
    REQUIRE(rt.ok());
    CHECK(rt.value()->store() == nullptr);
    CHECK(rt.value()->sessions().create("a", {}, "").ok());
    CHECK(rt.value()->sessions().create("a", {}, "").error().code() == errc::already_exists);

    std::filesystem::create_directories(dir.path / "file_not_dir");
    std::ofstream(dir.path / "file_not_dir" / "CURRENT") << "garbage";
    agent::runtime_options bad;
    bad.store_dir = (dir.path / "file_not_dir").string();
    auto refused = agent::runtime::open(m, bad);
    REQUIRE(!refused.ok());
    CHECK(refused.error().message().rfind("store: ", 0) == 0);
}

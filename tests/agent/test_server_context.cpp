// Histories longer than the model's window: fit_to_window keeps the first block
// (system message) and the recent window, cutting the middle in coarse steps so
// consecutive turns share their prompt prefix; the server says so in "mnemos"
// metadata and in the reply's event, and the event log keeps every message.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "agent/core/runtime.h"
#include "tests/agent/server_fixture.h"

using json = nlohmann::json;
using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

// A plan of n tokens (token i == i), a message every `every` tokens, a first block of n_first.
agent::turn_plan synthetic_plan(int32_t n, int32_t every, int32_t n_first) {
    agent::turn_plan p;
    p.prompt.resize(static_cast<size_t>(n));
    std::iota(p.prompt.begin(), p.prompt.end(), 0);
    for (int32_t i = 0; i < n; i += every) p.message_starts.push_back(i);
    p.n_first = n_first;
    return p;
}

}  // namespace

TEST_CASE("fit_to_window: a prompt that fits is left alone", "[agent][context]") {
    auto p = synthetic_plan(100, 10, 20);
    REQUIRE(agent::fit_to_window(p, 256, 32).ok());
    CHECK(p.prompt.size() == 100);
    CHECK(!p.context.truncated);
    CHECK(p.context.n_kept_recent == 100);
}

TEST_CASE("fit_to_window: keeps the first block and the recent window, cut on a message start", "[agent][context]") {
    auto p = synthetic_plan(1000, 10, 20);
    REQUIRE(agent::fit_to_window(p, 256, 32).ok());
    REQUIRE(p.context.truncated);
    CHECK(p.context.n_kept_first == 20);
    CHECK(p.context.n_kept_first + p.context.n_dropped + p.context.n_kept_recent == 1000);
    CHECK(static_cast<int32_t>(p.prompt.size()) == p.context.n_kept_first + p.context.n_kept_recent);
    CHECK(static_cast<int32_t>(p.prompt.size()) + 32 <= 256);
    const int32_t cut = p.context.n_kept_first + p.context.n_dropped;
    CHECK(cut % 10 == 0);  // a message start
    for (int32_t i = 0; i < 20; ++i) CHECK(p.prompt[static_cast<size_t>(i)] == i);
    CHECK(p.prompt[20] == cut);
    CHECK(p.prompt.back() == 999);
    // Message starts are remapped into the cut prompt.
    CHECK(p.message_starts.front() == 0);
    CHECK(std::find(p.message_starts.begin(), p.message_starts.end(), 20) != p.message_starts.end());
}

TEST_CASE("fit_to_window: the cut moves in coarse steps, so consecutive prompts share a prefix", "[agent][context]") {
    const int32_t n_ctx = 256, reserve = 32;
    int32_t n_cut_changes = 0, prev_cut = -1;
    std::vector<engine::token_id> prev;
    size_t shared_total = 0;
    for (int32_t n = 300; n <= 1300; n += 7) {  // the history grows by 7 tokens a turn
        auto p = synthetic_plan(n, 7, 30);
        REQUIRE(agent::fit_to_window(p, n_ctx, reserve).ok());
        REQUIRE(p.context.truncated);
        CHECK(static_cast<int32_t>(p.prompt.size()) + reserve <= n_ctx);
        CHECK(p.context.n_kept_first == 30);
        CHECK(p.context.n_kept_recent >= (n_ctx - reserve - 30) / 2);  // the recent window stays large
        const int32_t cut = p.context.n_kept_first + p.context.n_dropped;
        if (cut != prev_cut) {
            ++n_cut_changes;
        } else {
            // Same cut: the previous prompt is a prefix of this one (the engine reuses its KV).
            REQUIRE(prev.size() <= p.prompt.size());
            CHECK(std::equal(prev.begin(), prev.end(), p.prompt.begin()));
            shared_total += prev.size();
        }
        prev_cut = cut;
        prev = p.prompt;
    }
    // 143 turns, ~1000 tokens of growth, steps of ~48 tokens: about 21 cut moves, not one per turn.
    CHECK(n_cut_changes <= 26);
    CHECK(shared_total > 0);
}

TEST_CASE("fit_to_window: a long system message is kept whole or refused, never cut; too small a window is an error",
          "[agent][context]") {
    auto p = synthetic_plan(1000, 10, 150);
    REQUIRE(agent::fit_to_window(p, 256, 32).ok());
    CHECK(p.context.n_kept_first == 150);  // more than half the window, whole
    CHECK(static_cast<int32_t>(p.prompt.size()) + 32 <= 256);
    auto big = synthetic_plan(1000, 10, 500);
    auto too_big = agent::fit_to_window(big, 256, 32);
    CHECK(!too_big.ok());
    CHECK(too_big.code() == errc::context_exceeded);
    auto q = synthetic_plan(100, 10, 0);
    CHECK(!agent::fit_to_window(q, 16, 8).ok());
    // The newest message is never cut: one that alone overflows the window is an error.
    auto r = synthetic_plan(1000, 10, 20);
    r.message_starts = {0, 20, 100};
    auto fs = agent::fit_to_window(r, 256, 32);
    CHECK(!fs.ok());
    CHECK(fs.code() == errc::context_exceeded);
}

TEST_CASE("server: many turns beyond the window keep working, with metadata and a whole event log",
          "[agent][server][context]") {
    fixture_sizes sizes;
    sizes.n_ctx = 160;
    sizes.attention = engine::attention_mode::full;  // the cut (sparse attention keeps everything: below)
    fixture f({}, false, {}, sizes);
    const std::string system = "You are Lily. You like to play in the park with your little dog.";
    auto c = request(f.port, "POST", "/v1/sessions",
                     json{{"id", "long"}, {"character", {{"name", "Lily"}, {"persona", system}}}}.dump());
    REQUIRE(c.status == 201);
    // The system message's tokens: the first block every cut keeps.
    auto s = f.sessions->find("long");
    REQUIRE(s.ok());
    int32_t n_system = 0;
    {
        const auto held = s.value()->tokens();
        REQUIRE(held.message_starts.size() == 1);
        n_system = static_cast<int32_t>(held.tokens.size());
    }
    const int n_turns = 24;
    int n_truncated = 0, n_reused_beyond_system = 0;
    for (int t = 0; t < n_turns; ++t) {
        INFO("turn " << t);
        const json body = {{"content", "Tell me about the bird in the big tree, number " + std::to_string(t) + "."},
                           {"max_tokens", 8},
                           {"temperature", 0}};
        auto r = request(f.port, "POST", "/v1/sessions/long/messages", body.dump());
        REQUIRE(r.status == 200);
        const json j = r.j();
        if (!j.contains("mnemos") || !j["mnemos"].contains("context")) continue;  // "mnemos" also has the seed
        ++n_truncated;
        const json cx = j["mnemos"]["context"];
        CHECK(cx["truncated"] == true);
        CHECK(cx["n_kept_first"] == n_system);
        CHECK(cx["n_dropped"].get<int>() > 0);
        CHECK(j["usage"]["prompt_tokens"] == cx["n_kept_first"].get<int>() + cx["n_kept_recent"].get<int>());
        CHECK(j["usage"]["prompt_tokens"].get<int>() + 8 <= 160);
        if (j["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>() > n_system + 16) ++n_reused_beyond_system;
    }
    CHECK(n_truncated >= n_turns / 2);
    // Several truncated turns reused KV past the system message: the cut stayed put between them.
    CHECK(n_reused_beyond_system >= 2);

    auto mt = request(f.port, "GET", "/metrics");
    CHECK(mt.body.find("mnemos_context_truncated_total " + std::to_string(n_truncated)) != std::string::npos);

    // Nothing was dropped from the log: system + every user message and reply.
    auto e = request(f.port, "GET", "/v1/sessions/long/events");
    REQUIRE(e.status == 200);
    const json evs = e.j()["data"];
    REQUIRE(evs.size() == static_cast<size_t>(1 + 2 * n_turns));
    CHECK(evs[0]["role"] == "system");
    CHECK(evs[1]["content"] == "Tell me about the bird in the big tree, number 0.");
    int n_marked = 0;
    for (const auto& ev : evs)
        if (ev["role"] == "assistant" && ev.contains("context") && ev["context"]["truncated"] == true) ++n_marked;
    CHECK(n_marked == n_truncated);

    // Streaming: the final chunk carries the same metadata.
    const json sb = {{"session_id", "long"},
                     {"messages", json::array({{{"role", "user"}, {"content", "And the dog?"}}})},
                     {"max_tokens", 8},
                     {"stream", true}};
    auto st = request(f.port, "POST", "/v1/chat/completions", sb.dump());
    REQUIRE(st.status == 200);
    auto chunks = sse_data(st.body);
    REQUIRE(chunks.size() >= 3);
    const json last = json::parse(chunks[chunks.size() - 2], nullptr, false);
    REQUIRE(last.contains("mnemos"));
    CHECK(last["mnemos"]["context"]["truncated"] == true);
    CHECK(last["mnemos"]["context"]["n_kept_first"] == n_system);

    // Stateless completions with a long history are cut the same way.
    json msgs = json::array({{{"role", "system"}, {"content", system}}});
    for (int t = 0; t < 30; ++t)
        msgs.push_back({{"role", t % 2 ? "assistant" : "user"}, {"content", "the little dog ran home"}});
    auto sl = request(f.port, "POST", "/v1/chat/completions", json{{"messages", msgs}, {"max_tokens", 8}}.dump());
    REQUIRE(sl.status == 200);
    CHECK(sl.j()["mnemos"]["context"]["truncated"] == true);
    CHECK(sl.j()["mnemos"]["context"]["n_kept_first"] == n_system);
}

TEST_CASE("server: with sparse attention a history beyond the window is never cut, and the reply says so",
          "[agent][server][context][sparse]") {
    fixture_sizes sizes;
    sizes.n_ctx = 160;  // attention: automatic (sparse beyond 160 tokens)
    fixture f({}, false, {}, sizes);
    const std::string system = "You are Lily. You like to play in the park with your little dog.";
    auto c = request(f.port, "POST", "/v1/sessions",
                     json{{"id", "long"}, {"character", {{"name", "Lily"}, {"persona", system}}}}.dump());
    REQUIRE(c.status == 201);
    int n_sparse = 0, last_prompt = 0;
    // The pool holds 4 contexts (~750 tokens): the history stays below that in 12 turns.
    for (int t = 0; t < 12; ++t) {
        INFO("turn " << t);
        const json body = {{"content", "Tell me about the bird in the big tree, number " + std::to_string(t) + "."},
                           {"max_tokens", 8},
                           {"temperature", 0}};
        auto r = request(f.port, "POST", "/v1/sessions/long/messages", body.dump());
        INFO(r.body);
        REQUIRE(r.status == 200);
        const json j = r.j();
        const int prompt = j["usage"]["prompt_tokens"].get<int>();
        CHECK(prompt > last_prompt);  // the whole history every turn: it only grows
        last_prompt = prompt;
        if (!j.contains("mnemos") || !j["mnemos"].contains("context")) continue;  // "mnemos" also has the seed
        ++n_sparse;
        const json cx = j["mnemos"]["context"];
        CHECK(cx["truncated"] == false);
        CHECK(cx["n_dropped"] == 0);
        CHECK(cx["attention"] == "sparse");
        CHECK(cx["sink_tokens"] == 16);
        CHECK(cx["window_tokens"] == 64);
        CHECK(cx["pages_per_query"] == 2);
        // Only sinks, window and the pages being attended stay in the pool; the rest is parked.
        CHECK(cx["pages_resident"].get<int>() > 0);
        if (prompt > 400) CHECK(cx["pages_resident"].get<int>() * 16 < prompt);
    }
    CHECK(last_prompt > 3 * 160);
    CHECK(n_sparse >= 8);
}

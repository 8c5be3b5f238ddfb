// The prefix-cache oracle (issue 17): a key guesses an NPC's private system prompt in stateless completions and
// reads usage.prompt_tokens_details.cached_tokens (and the time) of a right and a wrong guess. With API keys the
// KV blocks of a session are salted by the session and a key's stateless blocks by the key (agent/core/
// cache_scope.h), so both guesses get the same answer; without keys (one principal) the oracle is there, which
// shows the test can see it. Also: the shared prefix stays shared, and recall never searches the system message.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/character.h"
#include "agent/server/server.h"
#include "agent/tooling/event_backed_tools.h"
#include "tests/agent/server_fixture.h"
#include "tools/builtins.h"

using json = nlohmann::json;
using namespace mnemos;
using namespace mnemos::test_agent;

namespace {

const char* const k_oracle_rules =
    "Rules of the villa game: players question the household, one at a time, and name the culprit at the end. "
    "Nobody may leave the villa before midnight.";
const char* const k_private = "The study key is under the blue vase in the hall.";
const char* const k_wrong_private = "The study key is under the red rug in the hall.";
// After the guessed sentence: enough text that a wrong guess diverges pages before the end of the prompt.
const char* const k_tail =
    " The gardener saw the cook near the greenhouse at ten, carrying a lantern and a small leather bag, and "
    "said nothing about it to the inspector when he was asked the next morning over breakfast in the kitchen.";

agent::character npc(const std::string& private_first) {
    agent::character c;
    c.name = "Maid";
    c.persona = "You are the maid of the villa.";
    c.secrets = {"I hid the necklace in the piano."};
    c.private_knowledge = private_first + k_tail;
    c.shared_prefix = "rules";
    return c;
}

json npc_json() {
    return {{"id", "npc-maid"},
            {"character",
             {{"name", "Maid"},
              {"persona", "You are the maid of the villa."},
              {"secrets", {"I hid the necklace in the piano."}},
              {"private_knowledge", std::string(k_private) + k_tail},
              {"shared_prefix", "rules"}}}};
}

// A stateless chat completion whose system message is a guess of the NPC's; its cached tokens and seconds.
struct probe {
    int cached = -1;
    double seconds = 0;
};

probe guess(uint16_t port, const std::string& key, const std::string& private_first, const std::string& user) {
    const json body = {
        {"messages",
         {{{"role", "system"}, {"content", agent::character_system_prompt(npc(private_first), k_oracle_rules)}},
          {{"role", "user"}, {"content", user}}}},
        {"max_tokens", 1},
        {"temperature", 0}};
    const auto t0 = std::chrono::steady_clock::now();
    auto r = request(port, "POST", "/v1/chat/completions", body.dump(), key);
    probe p;
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO(r.body);
    REQUIRE(r.status == 200);
    p.cached = r.j()["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>();
    return p;
}

// The NPC, its shared prefix, and one turn (its KV blocks are then cached), as the admin (or open access).
void set_up_npc(uint16_t port, const std::string& admin) {
    REQUIRE(request(port, "PUT", "/v1/prefixes/rules", json{{"text", k_oracle_rules}}.dump(), admin).status == 201);
    REQUIRE(request(port, "POST", "/v1/sessions", npc_json().dump(), admin).status == 201);
    REQUIRE(request(port, "POST", "/v1/sessions/npc-maid/messages", R"({"content":"Hello","max_tokens":1})", admin)
                .status == 200);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

TEST_CASE("cache oracle: without keys (one principal) a right guess reuses more", "[agent][server][auth][cache]") {
    // The control: the oracle the isolation removes is real, and this test's guesses find it.
    fixture f;
    set_up_npc(f.port, "");
    const probe wrong = guess(f.port, "", k_wrong_private, "Hello");
    const probe right = guess(f.port, "", k_private, "Hello");
    INFO("right " << right.cached << ", wrong " << wrong.cached);
    CHECK(right.cached > wrong.cached);
    CHECK(wrong.cached > 0);  // the shared start
}

TEST_CASE("cache oracle: with keys a right and a wrong guess get the same cached_tokens",
          "[agent][server][auth][cache]") {
    auto cfg = agent::parse_auth_config(R"({"keys":[
        {"key":"k-admin","name":"gm","admin":true},
        {"key":"k-eve1","name":"eve1"},
        {"key":"k-eve2","name":"eve2"},
        {"key":"k-eve3","name":"eve3"},
        {"key":"k-reader1","name":"reader1","prefixes":"read"},
        {"key":"k-reader2","name":"reader2","prefixes":"read"}]})");
    REQUIRE(cfg.ok());
    fixture f(cfg.value());
    set_up_npc(f.port, "k-admin");
    // The session itself reuses its own blocks on its next turn.
    auto again =
        request(f.port, "POST", "/v1/sessions/npc-maid/messages", R"({"content":"And?","max_tokens":1})", "k-admin");
    REQUIRE(again.status == 200);
    const int own = again.j()["usage"]["prompt_tokens_details"]["cached_tokens"];
    CHECK(own > 0);

    // Keys without a grant: nothing of the NPC's, right or wrong (each key guesses first, with a cold scope).
    const probe right = guess(f.port, "k-eve1", k_private, "Hello");
    const probe wrong = guess(f.port, "k-eve2", k_wrong_private, "Hello");
    CHECK(right.cached == wrong.cached);
    CHECK(right.cached == 0);
    // Keys that may read the shared prefix: its blocks, and nothing past them, right or wrong.
    const probe r_right = guess(f.port, "k-reader1", k_private, "Hello");
    const probe r_wrong = guess(f.port, "k-reader2", k_wrong_private, "Hello");
    CHECK(r_right.cached == r_wrong.cached);
    CHECK(r_right.cached > 0);
    CHECK(r_right.cached < own);

    // The exact tokens of the NPC's prompt through the legacy endpoint (a raw prompt may spell any markup), by a
    // key that sent nothing before (eve1's own earlier guess would be reused: its own blocks).
    auto s = f.sessions->find("npc-maid");
    REQUIRE(s.ok());
    const auto tokens = s.value()->tokens().tokens;
    auto raw = request(f.port, "POST", "/v1/completions", json{{"prompt", tokens}, {"max_tokens", 1}}.dump(), "k-eve3");
    REQUIRE(raw.status == 200);
    CHECK(raw.j()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0);

    // A second NPC on the same rules shares the rules' blocks (the game's prefix stays shared).
    json other = npc_json();
    other["id"] = "npc-cook";
    other["character"]["name"] = "Cook";
    other["character"]["persona"] = "You are the cook of the villa.";
    REQUIRE(request(f.port, "POST", "/v1/sessions", other.dump(), "k-admin").status == 201);
    auto cook =
        request(f.port, "POST", "/v1/sessions/npc-cook/messages", R"({"content":"Hi","max_tokens":1})", "k-admin");
    REQUIRE(cook.status == 200);
    CHECK(cook.j()["usage"]["prompt_tokens_details"]["cached_tokens"] == r_right.cached);

    // Timing, measured: medians of N alternating tries (each with its own user line, so each key's own
    // cached system message counts the same for both). Bound: the slower median is at most 3x the faster
    // plus 25 ms (generous: the tiny model's prefill is a few ms; what is ruled out is a systematic gap).
    constexpr int n = 15;
    std::vector<double> t_right, t_wrong;
    for (int i = 0; i < n; ++i) {
        const std::string line = "Question " + std::to_string(i) + ": where were you at nine?";
        const probe a = guess(f.port, "k-eve1", k_private, line);
        const probe b = guess(f.port, "k-eve2", k_wrong_private, line);
        CHECK(a.cached == b.cached);
        t_right.push_back(a.seconds);
        t_wrong.push_back(b.seconds);
    }
    const double mr = median(t_right), mw = median(t_wrong);
    WARN("cache oracle timing: median right guess " << mr * 1e3 << " ms, wrong guess " << mw * 1e3 << " ms (n=" << n
                                                    << ")");
    CHECK(std::max(mr, mw) <= 3 * std::min(mr, mw) + 0.025);
}

TEST_CASE("cache oracle: recall never returns the system message", "[agent][server][auth][recall]") {
    fixture f({}, false, {}, fixture_sizes{4096, 256 * 1024});
    REQUIRE(request(f.port, "PUT", "/v1/prefixes/rules", json{{"text", k_oracle_rules}}.dump()).status == 201);
    json create = npc_json();
    create["agent"] = {{"tools", {"recall"}}, {"max_steps", 2}, {"seed", 1}};
    REQUIRE(request(f.port, "POST", "/v1/sessions", create.dump()).status == 201);
    REQUIRE(request(f.port, "POST", "/v1/sessions/npc-maid/messages",
                    R"({"content":"Tell me about the piano and the vase","max_tokens":4,"tool_choice":"none"})")
                .status == 200);
    tools::tool_registry reg;
    REQUIRE(reg.add(tools::make_recall_tool(agent::make_event_history(f.sessions->store()), "npc-maid")).ok());
    auto call = [&](const std::string& query) {
        std::optional<result<json>> out;
        reg.call("recall", json{{"query", query}}, [&](result<json> r) { out.emplace(std::move(r)); });
        REQUIRE(out);
        REQUIRE(out->ok());
        return out->value();
    };
    // The user's own line is found (recall works) ...
    const json mine = call("piano vase");
    CHECK(!mine["hits"].empty());
    // ... the system message's words never are: persona, secrets, private knowledge, rules.
    for (const char* q : {"necklace hid", "study key blue", "gardener greenhouse lantern", "culprit midnight",
                          "Secrets never reveal"}) {
        const json r = call(q);
        INFO(q << ": " << r.dump());
        for (const auto& h : r["hits"]) CHECK(h["role"] != "system");
        CHECK(r.dump().find("necklace") == std::string::npos);
        CHECK(r.dump().find("greenhouse") == std::string::npos);
    }
}

// Long-context attention in a game (issue 13, "script-killer games as published"): a mystery whose characters
// each carry a history several times the attention window still answers, at the accusation, facts stated at
// the introduction, when the engine attends sparsely (sinks + window + selected pages); with the same sinks and
// window and no selected pages it does not, which proves that the page retrieval does the work.
//
// The model is the analytic recall model (tests/support/recall_model.h) with a query offset: it answers the
// value word that followed the key word which ends the user's question, however far back the pair was said,
// provided the attention reaches it. The game runs through the real play path (play_scenario: scenario ->
// steps -> character sessions -> engine): the introduction's scripted lines state one "key value" pair per
// character, long scripted chatter (the recall model's filler words) follows, and at the accusation each
// character is probed for the pair another character stated. No tools (no recall tool): only attention can
// reach the facts. The game master's narration falls back to the scripted text (the recall model generates
// nothing to its cue).
#include <catch2/catch.hpp>
#include <cctype>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "agent/core/context_window.h"
#include "agent/play/play.h"
#include "tests/agent/scenario_util.h"
#include "tests/support/recall_model.h"

using namespace mnemos;
using namespace mnemos::agent;
using namespace mnemos::test_agent;
using json = nlohmann::json;

namespace {

constexpr int k_chars = 4;            // characters, one fact each
constexpr int32_t k_window = 256;     // attention window (tokens)
constexpr int32_t k_sink = 32;        // attention sinks (tokens)
constexpr int32_t k_pages = 8;        // selected pages (16 tokens) in the sparse run
constexpr int k_chatter_lines = 5;    // lines per character after the introduction
constexpr int k_words_per_line = 80;  // filler words per chatter line

const std::string k_space = "\xE2\x96\x81";  // SentencePiece's "▁"

std::shared_ptr<const engine::model> write_and_load(const std::filesystem::path& dir,
                                                    const test::recall_model_spec& spec, test::recall_roles& roles) {
    const std::string path = (dir / ("recall-" + std::to_string(spec.query_offset) + ".gguf")).string();
    REQUIRE(test::write_recall_model(path, spec, &roles));
    return load_model(path);
}

// The word a token is when the text has a space before it ("▁abc" -> "abc"), or "" when its piece is not an
// ASCII word of min_letters letters or more that the tokenizer gives back as this one token after a space.
std::string word_of(const engine::tokenizer& tok, engine::token_id id, size_t min_letters) {
    const std::string& piece = tok.token_text(id);
    if (piece.rfind(k_space, 0) != 0) return "";
    const std::string w = piece.substr(k_space.size());
    if (w.size() < min_letters) return "";
    for (char c : w)
        if (!std::isalpha(static_cast<unsigned char>(c))) return "";
    const auto ids = tok.encode("so " + w, false, false);
    return !ids.empty() && ids.back() == id ? w : "";
}

struct game_words {
    std::vector<std::string> keys, values;  // one fact per character: keys[i] -> values[i]
    std::vector<std::string> fillers;       // neither a key nor a value of the model
};

// Words of the recall model's roles usable as text (keys of any length; values of 3 letters or more, so that an
// answer holds one only by saying it); fewer than k_chars keys or values when the roles give too few.
game_words words_for(const engine::tokenizer& tok, const test::recall_roles& roles) {
    game_words g;
    std::set<engine::token_id> role_ids(roles.keys.begin(), roles.keys.end());
    role_ids.insert(roles.values.begin(), roles.values.end());
    for (size_t k = 0; k < roles.keys.size(); ++k) {
        const std::string kw = word_of(tok, roles.keys[k], 1);
        if (!kw.empty() && g.keys.size() < k_chars) g.keys.push_back(kw);
    }
    for (size_t k = 0; k < roles.values.size(); ++k) {
        const std::string vw = word_of(tok, roles.values[k], 3);
        if (!vw.empty() && g.values.size() < k_chars) g.values.push_back(vw);
    }
    for (engine::token_id id = 3; id < tok.n_vocab(); ++id) {
        if (role_ids.count(id)) continue;
        const std::string w = word_of(tok, id, 2);
        if (!w.empty()) g.fillers.push_back(w);
    }
    return g;
}

std::string chatter(const std::vector<std::string>& fillers, int n_words, std::mt19937_64& rng) {
    std::string s;
    for (int i = 0; i < n_words; ++i) s += (i ? " " : "") + fillers[rng() % fillers.size()];
    return s;
}

std::string question_for(const std::string& key) { return "Which word came right after " + key; }

// The mystery: introduction (each character states "key value" amid filler), a long investigation of filler
// lines, the accusation with one probe per character (the fact of the next character), the reveal.
json recall_game(const game_words& w) {
    std::mt19937_64 rng(13);
    const char* names[k_chars] = {"Ada", "Bert", "Cleo", "Dirk"};
    json chars = json::array();
    chars.push_back(
        {{"id", "host"}, {"name", "Host"}, {"role", "game_master"}, {"persona", chatter(w.fillers, 8, rng)}});
    for (int i = 0; i < k_chars; ++i)
        chars.push_back({{"id", "c" + std::to_string(i)},
                         {"name", names[i]},
                         {"role", "npc"},
                         {"persona", "You are " + std::string(names[i]) + ". " + chatter(w.fillers, 12, rng)}});
    json intro = json::array(), talk = json::array(), probes = json::array();
    for (int i = 0; i < k_chars; ++i)
        intro.push_back({{"speaker", "c" + std::to_string(i)},
                         {"line", chatter(w.fillers, 20, rng) + " " + w.keys[i] + " " + w.values[i] + " " +
                                      chatter(w.fillers, 20, rng)}});
    for (int l = 0; l < k_chatter_lines; ++l)
        for (int i = 0; i < k_chars; ++i)
            talk.push_back({{"speaker", "c" + std::to_string(i)}, {"line", chatter(w.fillers, k_words_per_line, rng)}});
    for (int i = 0; i < k_chars; ++i) {
        const int other = (i + 1) % k_chars;
        probes.push_back({{"id", "fact_" + std::to_string(i)},
                          {"at", {{"phase", "accuse"}}},
                          {"asked_to", "c" + std::to_string(i)},
                          {"question", question_for(w.keys[other])},
                          {"must_contain", json::array({w.values[other]})},
                          {"sources", json::array({"c" + std::to_string(other)})}});
    }
    const json one_line = json::array({{{"speaker", "c0"}, {"line", chatter(w.fillers, 8, rng)}}});
    return {{"id", "recall_table"},
            {"title", "The long table"},
            {"language", "en"},
            {"kind", "mystery"},
            {"shared", {{"public_script", chatter(w.fillers, 30, rng)}, {"rules", chatter(w.fillers, 10, rng)}}},
            {"characters", chars},
            {"culprit", "c1"},
            {"solution", chatter(w.fillers, 10, rng)},
            {"phases",
             json::array({{{"id", "intro"},
                           {"kind", "introduction"},
                           {"title", "Introduction"},
                           {"narration", chatter(w.fillers, 10, rng)},
                           {"turns", intro}},
                          {{"id", "talk"}, {"kind", "investigation"}, {"title", "Talk"}, {"round", 1}, {"turns", talk}},
                          {{"id", "accuse"}, {"kind", "accusation"}, {"title", "Accusation"}, {"turns", one_line}},
                          {{"id", "reveal"}, {"kind", "reveal"}, {"title", "Reveal"}, {"turns", one_line}}})},
            {"probes", probes},
            {"tools", {{"npc", json::array()}}},
            {"budgets", {{"max_tokens_per_probe", 3}, {"max_tokens_per_turn", 3}}}};
}

play_report play(const scenario& sc, const std::shared_ptr<const engine::model>& m, int32_t n_pages) {
    play_options o;
    o.n_threads = 2;
    o.n_ctx = 512;  // sinks + window + 8 pages fit in it; every history is several times longer
    o.kv_bytes = size_t{64} << 20;
    o.attention.mode = engine::attention_mode::automatic;
    o.attention.n_sink = k_sink;
    o.attention.n_window = k_window;
    o.attention.n_pages = n_pages;
    auto r = play_scenario(sc, m, o);
    INFO((r.ok() ? std::string() : r.error().to_string()));
    REQUIRE(r.ok());
    return std::move(r).value();
}

}  // namespace

TEST_CASE(
    "long context game: sparse attention answers introduction facts at the accusation; the window alone does "
    "not",
    "[play][long_context]") {
    temp_dir dir("mnemos-play-long-");
    // The roles (which token is a key, a value, a filler) depend on the seed only: find one whose roles give
    // enough words, then measure where the key ends up in a probe's chat prompt and build the model for it.
    test::recall_model_spec spec;
    test::recall_roles roles;
    std::shared_ptr<const engine::model> m = write_and_load(dir.path, spec, roles);  // its tokenizer
    game_words w;
    for (spec.seed = 1; spec.seed < 2000; ++spec.seed) {
        w = words_for(m->tok(), test::recall_roles_of(spec, m->tok().n_vocab()));
        if (w.keys.size() == k_chars && w.values.size() == k_chars && w.fillers.size() >= 16) break;
    }
    INFO("seed " << spec.seed);
    REQUIRE(w.keys.size() == k_chars);
    REQUIRE(w.values.size() == k_chars);
    const std::vector<engine::chat_message> asked{{"user", question_for(w.keys[0])}};
    const turn_plan plan = plan_for_messages(*m, asked);
    const auto key_id = m->tok().encode("so " + w.keys[0], false, false).back();
    int offset = -1;
    for (size_t i = plan.prompt.size(); i-- > 0;)
        if (plan.prompt[i] == key_id) {
            offset = static_cast<int>(plan.prompt.size() - 1 - i);
            break;
        }
    REQUIRE(offset > 0);  // the chat template's markup follows the question
    spec.query_offset = offset;
    m = write_and_load(dir.path, spec, roles);

    auto parsed = parse_scenario(recall_game(w).dump(), "recall_table");
    INFO((parsed.ok() ? std::string() : parsed.error().message()));
    REQUIRE(parsed.ok());
    const scenario& sc = parsed.value();

    const play_report sparse = play(sc, m, k_pages);
    REQUIRE(sparse.probes.size() == k_chars);
    for (const auto& c : sparse.characters) {
        INFO(c.id << ": " << c.n_tokens << " tokens");
        CHECK(c.n_tokens > 6 * k_window);  // several times the window (and beyond the 512-token context)
    }
    CHECK(sparse.n_windowed == 0);  // nothing was cut: what a character sees is up to the attention
    // The host's narration: the recall model says nothing to its cue (no key before the markup), so the scripted
    // narration is said, and everyone hears it.
    CHECK(sparse.transcript.find("[narration] " + sc.phases[0].narration + "\n") != std::string::npos);
    for (const auto& p : sparse.probes) {
        INFO("sparse: " << p.asked_to << " asked '" << p.question << "' answered '" << p.answer << "'");
        CHECK(p.score.passed);
    }

    const play_report window_only = play(sc, m, 0);
    REQUIRE(window_only.probes.size() == k_chars);
    for (const auto& p : window_only.probes) {
        INFO("window only: " << p.asked_to << " asked '" << p.question << "' answered '" << p.answer << "'");
        CHECK_FALSE(p.score.passed);
    }
}

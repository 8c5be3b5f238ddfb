// Tokenizer tests: exact agreement with the reference engine on the shared
// vocabularies ([model]), and self-contained checks on tiny in-memory vocabs.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "tests/support/gguf_writer.h"
#include "tests/support/tokenizer_vocabs.h"

using mnemos::engine::gguf_file;
using mnemos::engine::stream_decoder;
using mnemos::engine::token_id;
using mnemos::engine::tokenizer;

namespace {

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::unique_ptr<tokenizer> load_vocab(const std::string& name) {
    const std::string path = std::string(MNEMOS_SHARED_DIR) + "/models/vocab-" + name + ".gguf";
    auto f = gguf_file::open(path);
    INFO(path << ": " << (f ? "" : f.error().to_string()));
    REQUIRE(f.ok());
    auto t = tokenizer::from_gguf(**f);
    INFO((t ? "" : t.error().to_string()));
    REQUIRE(t.ok());
    return std::move(t).value();
}

std::string show(const std::vector<token_id>& ids) {
    std::string s;
    for (token_id id : ids) s += std::to_string(id) + " ";
    return s;
}

// SPM: decode() drops only the space the tokenizer added, so text that the tokenizer does not
// rewrite comes back exactly. Not so where user-defined tokens are split out (Phi-3 strips the
// whitespace after "</s>", and a space prefix is added after it).
bool round_trips(const tokenizer& t, const std::string& text) {
    if (!t.is_byte_level()) {
        for (token_id id = 0; id < t.n_vocab(); ++id) {
            const bool user_defined = t.is_special(id) && !t.token_to_piece(id, false).empty();
            if (user_defined && text.find(t.token_text(id)) != std::string::npos) return false;
        }
    }
    return true;
}

struct vocab_case {
    const char* name;
    bool has_inp;  // vocab-<name>.inp/.out exist
};

}  // namespace

TEST_CASE("tokenizer matches the reference on the shared vocabularies", "[model][tokenizer]") {
    const vocab_case cases[] = {
        {"smollm2", false}, {"llama-spm", true}, {"gpt-2", true}, {"phi-3", true}, {"deepseek-llm", true},
    };
    for (const vocab_case& vc : cases) {
        SECTION(vc.name) {
            const auto tok = load_vocab(vc.name);
            const std::string ref = std::string(MNEMOS_SHARED_DIR) + "/reference/";

            // tokens-<v>.jsonl: text, ids (plain), ids_special (special tokens parsed)
            std::ifstream in(ref + "tokens-" + vc.name + ".jsonl");
            REQUIRE(in.good());
            std::string line;
            int n_lines = 0;
            int n_ok = 0;
            int n_round_trips = 0;
            while (std::getline(in, line)) {
                if (line.empty()) continue;
                const nlohmann::json j = nlohmann::json::parse(line);
                const std::string text = j.at("text").get<std::string>();
                const auto ids = j.at("ids").get<std::vector<token_id>>();
                const auto ids_special = j.at("ids_special").get<std::vector<token_id>>();
                const auto got = tok->encode(text, false, false);
                const auto got_special = tok->encode(text, false, true);
                INFO(vc.name << " line " << n_lines << ": '" << text << "'");
                INFO("want " << show(ids) << "\ngot  " << show(got));
                CHECK(got == ids);
                INFO("want special " << show(ids_special) << "\ngot  special " << show(got_special));
                CHECK(got_special == ids_special);
                if (got == ids && got_special == ids_special) ++n_ok;
                if (round_trips(*tok, text)) {
                    CHECK(tok->decode(got) == text);
                    ++n_round_trips;
                }
                ++n_lines;
            }
            CHECK(n_lines == 27);

            // Invalid UTF-8 never crashes and comes back byte for byte (byte fallback / byte-level BPE).
            // Bytes chosen to have tokens in every vocab here: SmolLM2 has none for C0, C1, F5..FF (the
            // reference drops such bytes too), and DeepSeek's user-defined "ÿ", "þ", ... shadow FF, FE, ...
            const std::string bad = "ok \x80\xBF x\xC3 \xE2\x82 \xED\xA0\x80 end\xF0\x9F";
            const auto bad_ids = tok->encode(bad, false, true);
            CHECK_FALSE(bad_ids.empty());
            CHECK(tok->decode(bad_ids) == bad);
            CHECK(n_ok == n_lines);
            CHECK(n_round_trips > 20);

            if (vc.has_inp) {
                // vocab-<v>.inp: inputs, each followed by "\n__ggml_vocab_test__\n"; .out: one line of ids each
                const std::string inp = read_all(ref + "vocab-" + vc.name + ".inp");
                const std::string outp = read_all(ref + "vocab-" + vc.name + ".out");
                const std::string sep = "\n__ggml_vocab_test__\n";
                std::vector<std::string> inputs;
                for (size_t pos = 0; pos < inp.size();) {
                    const size_t at = inp.find(sep, pos);
                    REQUIRE(at != std::string::npos);
                    inputs.push_back(inp.substr(pos, at - pos));
                    pos = at + sep.size();
                }
                std::vector<std::vector<token_id>> expected;
                std::istringstream os(outp);
                while (std::getline(os, line)) {
                    std::istringstream ls(line);
                    std::vector<token_id> ids;
                    token_id id;
                    while (ls >> id) ids.push_back(id);
                    expected.push_back(ids);
                }
                REQUIRE(inputs.size() == expected.size());
                CHECK(inputs.size() == 46);
                int n_inp_ok = 0;
                for (size_t i = 0; i < inputs.size(); ++i) {
                    const auto got = tok->encode(inputs[i], false, false);
                    INFO(vc.name << " input " << i << ": '" << inputs[i] << "'");
                    INFO("want " << show(expected[i]) << "\ngot  " << show(got));
                    CHECK(got == expected[i]);
                    if (got == expected[i]) ++n_inp_ok;
                    if (round_trips(*tok, inputs[i])) CHECK(tok->decode(got) == inputs[i]);
                }
                CHECK(n_inp_ok == static_cast<int>(inputs.size()));
            }
        }
    }
}

TEST_CASE("tokenizer matches the prompts of the forward-pass references", "[model][tokenizer]") {
    // logits-<model>.jsonl: the prompt tokenized with BOS when the model asks for it, specials parsed;
    // greedy_text: the greedy continuation's pieces.
    for (const char* model : {"stories260K-f32", "llama-spm-r-q8_0", "smollm-bpe-r-q4_k_m", "qwen2-bpe-r-q6_k"}) {
        SECTION(model) {
            const std::string dir = std::string(MNEMOS_SHARED_DIR);
            auto f = gguf_file::open(dir + "/models/" + model + ".gguf");
            REQUIRE(f.ok());
            auto t = tokenizer::from_gguf(**f);
            REQUIRE(t.ok());
            std::ifstream in(dir + "/reference/logits-" + model + ".jsonl");
            REQUIRE(in.good());
            std::string line;
            int n = 0;
            while (std::getline(in, line)) {
                const nlohmann::json j = nlohmann::json::parse(line);
                const std::string prompt = j.at("prompt").get<std::string>();
                const auto want = j.at("tokens").get<std::vector<token_id>>();
                const auto got = (*t)->encode(prompt, (*t)->add_bos_default(), true);
                INFO(model << ": '" << prompt << "'\nwant " << show(want) << "\ngot  " << show(got));
                CHECK(got == want);
                const auto greedy = j.at("greedy").get<std::vector<token_id>>();
                std::string pieces;
                for (token_id id : greedy) pieces += (*t)->token_to_piece(id, false);
                stream_decoder d(**t);
                std::string streamed;
                for (token_id id : greedy) streamed += d.push(id);
                streamed += d.flush();
                INFO("greedy_text '" << j.at("greedy_text").get<std::string>() << "'\npieces '" << pieces << "'");
                CHECK(pieces == j.at("greedy_text").get<std::string>());
                CHECK(streamed == pieces);
                ++n;
            }
            CHECK(n >= 3);
        }
    }
}

TEST_CASE("shared vocabularies: special ids, eog, pieces", "[model][tokenizer]") {
    SECTION("smollm2") {
        const auto t = load_vocab("smollm2");
        CHECK(t->n_vocab() == 49152);
        CHECK(t->bos() == 1);
        CHECK(t->eos() == 2);
        CHECK_FALSE(t->add_bos_default());
        CHECK(t->is_eog(2));  // <|im_end|>
        CHECK(t->is_eog(0));  // <|endoftext|>
        CHECK_FALSE(t->is_eog(1));
        CHECK(t->find_token("<|im_start|>") == std::optional<token_id>(1));
        CHECK(t->is_special(1));
        CHECK(t->token_to_piece(1, true) == "<|im_start|>");
        CHECK(t->token_to_piece(1, false).empty());
        CHECK(t->token_text(216) == "\xC4\xA0");  // "Ġ"
        CHECK(t->token_to_piece(216) == " ");
    }
    SECTION("llama-spm") {
        const auto t = load_vocab("llama-spm");
        CHECK(t->n_vocab() == 32000);
        CHECK(t->bos() == 1);
        CHECK(t->eos() == 2);
        CHECK(t->add_bos_default());
        CHECK(t->is_eog(2));
        CHECK(t->token_to_piece(13) == "\n");  // <0x0A>
        const auto ids = t->encode("Hello world", true, false);
        REQUIRE(ids.size() == 3);
        CHECK(ids[0] == 1);
        CHECK(t->decode(ids, false) == " Hello world");  // BOS takes the first-piece space strip
        CHECK(t->decode(ids, true) == "<s> Hello world");
        CHECK(t->decode(std::vector<token_id>(ids.begin() + 1, ids.end())) == "Hello world");
    }
    SECTION("phi-3") {
        const auto t = load_vocab("phi-3");
        CHECK(t->eos() == 32000);
        CHECK(t->is_eog(32000));                       // <|endoftext|>
        CHECK(t->is_eog(32007));                       // <|end|>
        CHECK(t->token_to_piece(2, false) == "</s>");  // user-defined: always rendered
    }
}

// ---------------------------------------------------------------------------------------------------------------
// tiny in-memory vocabularies

namespace {

using mnemos::test::bpe_writer;
using mnemos::test::byte_encode;
using mnemos::test::gguf_writer;
using mnemos::test::spm_writer;

std::unique_ptr<gguf_file> parse(const gguf_writer& w) {
    const std::vector<uint8_t> bytes = w.bytes();
    auto f = gguf_file::parse(bytes.data(), bytes.size());
    INFO((f ? "" : f.error().to_string()));
    REQUIRE(f.ok());
    return std::move(f).value();
}

constexpr token_id k_byte0 = 5;  // id of <0x00>
constexpr token_id k_space = 261, k_h = 262, k_i = 263, k_sp_h = 264, k_sp_hi = 265, k_a = 266, k_b = 267, k_ab = 268,
                   k_sp_a = 269;

std::string collect(stream_decoder& d, const std::vector<token_id>& ids, std::vector<std::string>* steps = nullptr) {
    std::string out;
    for (token_id id : ids) {
        const std::string s = d.push(id);
        if (steps) steps->push_back(s);
        out += s;
    }
    return out;
}

}  // namespace

TEST_CASE("spm: merges by score, byte fallback, special tokens", "[tokenizer]") {
    const auto f = parse(spm_writer());
    auto r = tokenizer::from_gguf(*f);
    REQUIRE(r.ok());
    const tokenizer& t = **r;
    CHECK(t.n_vocab() == 270);
    CHECK(t.bos() == 1);
    CHECK(t.add_bos_default());

    // "▁h" is the only bigram in the vocab; once merged, "▁hi" follows.
    CHECK(t.encode("hi", false, false) == std::vector<token_id>{k_sp_hi});
    CHECK(t.encode("hi", true, false) == std::vector<token_id>{1, k_sp_hi});
    // "ab" (-7) vs "▁a" (-8): "ab" first, then "▁" stays alone.
    CHECK(t.encode("ab", false, false) == std::vector<token_id>{k_space, k_ab});
    // Characters not in the vocab fall back to their UTF-8 bytes: "é" = C3 A9.
    CHECK(t.encode("\xC3\xA9", false, false) == std::vector<token_id>{k_space, k_byte0 + 0xC3, k_byte0 + 0xA9});
    CHECK(t.decode(t.encode("h\xC3\xA9 i", false, false)) == "h\xC3\xA9 i");
    // Invalid UTF-8 bytes are kept as bytes.
    const std::string bad = "a\xFF\xC3(";
    const auto bad_ids = t.encode(bad, false, false);
    CHECK(bad_ids == std::vector<token_id>{k_sp_a, k_byte0 + 0xFF, k_byte0 + 0xC3, k_byte0 + '('});
    CHECK(t.decode(bad_ids) == bad);

    // Control tokens only with parse_special; the text after one gets the space prefix again.
    CHECK(t.encode("<|im_start|>hi", false, true) == std::vector<token_id>{3, k_sp_hi});
    const auto plain = t.encode("<|im_start|>", false, false);
    CHECK(std::find(plain.begin(), plain.end(), 3) == plain.end());
    CHECK(plain.size() == 13);  // "▁" + 12 byte tokens
    // User-defined tokens are split out even without parse_special.
    CHECK(t.encode("hi[GO]hi", false, false) == std::vector<token_id>{k_sp_hi, 4, k_sp_hi});
    CHECK(t.token_to_piece(3, false).empty());
    CHECK(t.token_to_piece(3, true) == "<|im_start|>");
    CHECK(t.token_to_piece(4, false) == "[GO]");
    CHECK(t.token_to_piece(k_sp_hi) == " hi");
    CHECK(t.token_to_piece(-1).empty());
    CHECK(t.token_to_piece(100000).empty());
    CHECK(t.encode("", false, false).empty());
    CHECK(t.is_eog(2));
    CHECK_FALSE(t.is_eog(3));
}

TEST_CASE("stream_decoder holds back split characters", "[tokenizer]") {
    const auto f = parse(spm_writer());
    auto r = tokenizer::from_gguf(*f);
    REQUIRE(r.ok());
    const tokenizer& t = **r;

    SECTION("two-byte character across byte tokens") {
        stream_decoder d(t);
        std::vector<std::string> steps;
        const std::string out = collect(d, {k_sp_h, k_byte0 + 0xC3, k_byte0 + 0xA9, k_i}, &steps);
        REQUIRE(steps.size() == 4);
        CHECK(steps[0] == " h");  // a continuation: the piece's space is kept (unlike decode() of a whole text)
        CHECK(steps[1].empty());
        CHECK(steps[2] == "\xC3\xA9");
        CHECK(steps[3] == "i");
        CHECK(d.flush().empty());
    }
    SECTION("four-byte emoji") {
        stream_decoder d(t);
        std::vector<std::string> steps;
        collect(d, {k_byte0 + 0xF0, k_byte0 + 0x9F, k_byte0 + 0x98, k_byte0 + 0x80}, &steps);
        CHECK(steps == std::vector<std::string>{"", "", "", "\xF0\x9F\x98\x80"});
    }
    SECTION("invalid sequences become U+FFFD once certain") {
        stream_decoder d(t);
        CHECK(d.push(k_byte0 + 0xE2) == "");
        CHECK(d.push(k_byte0 + 'x') ==
              "\xEF\xBF\xBD"
              "x");                                       // E2 cannot be followed by 'x'
        CHECK(d.push(k_byte0 + 0xFF) == "\xEF\xBF\xBD");  // never valid
        CHECK(d.push(k_byte0 + 0xE2) == "");
        CHECK(d.push(k_byte0 + 0x82) == "");
        CHECK(d.flush() == "\xEF\xBF\xBD");  // incomplete at the end
        CHECK(d.flush().empty());
    }
    SECTION("special tokens rendered only when asked") {
        stream_decoder hidden(t, false);
        stream_decoder shown(t, true);
        CHECK(hidden.push(3).empty());
        CHECK(shown.push(3) == "<|im_start|>");
    }
    SECTION("stream output equals the pieces for valid text") {
        const std::string text = "hi h\xC3\xA9 ab \xF0\x9F\x98\x80!";
        const auto ids = t.encode(text, false, false);
        stream_decoder d(t);
        std::string out = collect(d, ids);
        out += d.flush();
        std::string pieces;
        for (token_id id : ids) pieces += t.token_to_piece(id, false);
        CHECK(out == pieces);
        CHECK(out == " " + text);  // the SPM space prefix; decode() drops it
        CHECK(t.decode(ids) == text);
    }
}

TEST_CASE("bpe: merges by rank, special tokens, invalid UTF-8", "[tokenizer]") {
    for (const char* pre : {"gpt-2", "llama3", "qwen2", "smollm", "deepseek-llm", "default"}) {
        SECTION(pre) {
            const auto f = parse(bpe_writer(pre));
            auto r = tokenizer::from_gguf(*f);
            INFO((r ? "" : r.error().to_string()));
            REQUIRE(r.ok());
            const tokenizer& t = **r;
            const token_id h_i = 257, sp_hi = 258, lo = 259, lo_w = 260, eot = 261, im_end = 262;
            CHECK_FALSE(t.add_bos_default());
            CHECK(t.is_eog(eot));
            CHECK(t.is_eog(im_end));

            // " hi": "Ġ h" (rank 0) first, then "Ġh i" (rank 2) -> one token
            CHECK(t.encode(" hi", false, false) == std::vector<token_id>{sp_hi});
            CHECK(t.encode("hi", false, false) == std::vector<token_id>{h_i});
            CHECK(t.encode("low", false, false) == std::vector<token_id>{lo_w});
            CHECK(t.encode("lo", false, false) == std::vector<token_id>{lo});
            CHECK(t.decode(std::vector<token_id>{sp_hi, lo_w}) == " hilow");

            // special tokens
            const auto with = t.encode("hi<|im_end|>hi", false, true);
            CHECK(with == std::vector<token_id>{h_i, im_end, h_i});
            const auto without = t.encode("hi<|im_end|>hi", false, false);
            CHECK(std::find(without.begin(), without.end(), im_end) == without.end());
            CHECK(t.decode(without) == "hi<|im_end|>hi");
            CHECK(t.decode(with, false) == "hihi");
            CHECK(t.encode("hi", true, false) == std::vector<token_id>{eot, h_i});

            // invalid UTF-8 is tokenized byte by byte and decodes back to the same bytes
            const std::string bad = "hi \xFF\xC3 lo\xE2\x82";
            const auto ids = t.encode(bad, false, false);
            CHECK(t.decode(ids) == bad);
            CHECK(std::find(ids.begin(), ids.end(), 0xFF) != ids.end());  // the byte-level "ÿ" (token 255 here)
            CHECK(std::find(ids.begin(), ids.end(), 0xC3) != ids.end());

            // every byte value round-trips
            std::string all;
            for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
            CHECK(t.decode(t.encode(all, false, false)) == all);
        }
    }
}

TEST_CASE("tokenizer: metadata errors name the key", "[tokenizer]") {
    auto error_of = [](const gguf_writer& w) {
        const auto f = parse(w);
        auto r = tokenizer::from_gguf(*f);
        return r.ok() ? std::string("ok") : r.error().to_string();
    };
    SECTION("unknown pre-tokenizer lists the supported ones") {
        const std::string e = error_of(bpe_writer("klingon"));
        CHECK(e.find("tokenizer.ggml.pre") != std::string::npos);
        CHECK(e.find("klingon") != std::string::npos);
        CHECK(e.find("llama3") != std::string::npos);
        CHECK(e.find("deepseek-llm") != std::string::npos);
        CHECK(e.rfind("unsupported", 0) == 0);
    }
    SECTION("unknown model") {
        gguf_writer w;
        w.add_string("tokenizer.ggml.model", "bert");
        w.add_string_array("tokenizer.ggml.tokens", {"a"});
        const std::string e = error_of(w);
        CHECK(e.find("tokenizer.ggml.model") != std::string::npos);
        CHECK(e.find("bert") != std::string::npos);
    }
    SECTION("missing tokens") {
        gguf_writer w;
        w.add_string("tokenizer.ggml.model", "llama");
        CHECK(error_of(w).find("tokenizer.ggml.tokens") != std::string::npos);
    }
    SECTION("scores of the wrong length") {
        gguf_writer w;
        w.add_string("tokenizer.ggml.model", "llama");
        w.add_string_array("tokenizer.ggml.tokens", {"a", "b", "c"});
        w.add_f32_array("tokenizer.ggml.scores", {0, 0});
        const std::string e = error_of(w);
        CHECK(e.find("tokenizer.ggml.scores") != std::string::npos);
        CHECK(e.rfind("corrupt", 0) == 0);
    }
    SECTION("token types of the wrong length") {
        gguf_writer w;
        w.add_string("tokenizer.ggml.model", "llama");
        w.add_string_array("tokenizer.ggml.tokens", {"a", "b", "c"});
        w.add_i32_array("tokenizer.ggml.token_type", {1, 1, 1, 1});
        CHECK(error_of(w).find("tokenizer.ggml.token_type") != std::string::npos);
    }
    SECTION("special id out of range") {
        gguf_writer w = spm_writer();
        w.add_u32("tokenizer.ggml.eot_token_id", 99999);
        const std::string e = error_of(w);
        CHECK(e.find("tokenizer.ggml.eot_token_id") != std::string::npos);
        CHECK(e.find("99999") != std::string::npos);
    }
    SECTION("malformed merges") {
        gguf_writer w;
        w.add_string("tokenizer.ggml.model", "gpt2");
        w.add_string("tokenizer.ggml.pre", "gpt-2");
        w.add_string_array("tokenizer.ggml.tokens", {"a", "b", "ab"});
        w.add_string_array("tokenizer.ggml.merges", {"a b", "ab"});
        const std::string e = error_of(w);
        CHECK(e.find("tokenizer.ggml.merges") != std::string::npos);
        CHECK(e.find("entry 1") != std::string::npos);
    }
    SECTION("missing merges") {
        gguf_writer w;
        w.add_string("tokenizer.ggml.model", "gpt2");
        w.add_string_array("tokenizer.ggml.tokens", {"a", "b", "ab"});
        CHECK(error_of(w).find("tokenizer.ggml.merges") != std::string::npos);
    }
}

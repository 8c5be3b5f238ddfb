// The whole tool path on a tiny random-weight model: the registry's call grammar constrains generation, the
// parser reads the output, the registry validates the arguments and runs the tool. With random weights the
// arguments are noise, but they must always parse and pass the schema.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <optional>

#include "engine/engine.h"
#include "tests/support/tiny_model.h"
#include "tools/builtins.h"
#include "tools/prompt.h"
#include "tools/tool.h"
#include "tools/tool_call_parser.h"

using namespace mnemos;
using namespace mnemos::tools;
using nlohmann::json;

TEST_CASE("tools: constrained tool calls from a tiny model always parse, validate and run", "[tools]") {
    test::tiny_model_options o;
    o.tokenizer = "gpt2";
    o.n_layer = 1;
    o.n_embd = 64;
    o.n_head = 2;
    o.n_head_kv = 1;
    o.n_ff = 128;
    const std::string path =
        (std::filesystem::temp_directory_path() / ("mnemos-tools-" + std::to_string(::getpid()) + ".gguf")).string();
    REQUIRE(test::write_tiny_model(path, o));
    auto m = engine::model::load(path);
    REQUIRE(m.ok());
    std::filesystem::remove(path);
    std::shared_ptr<const engine::model> mdl(std::move(m.value()));
    const engine::tokenizer& tk = mdl->tok();

    tool_registry reg;
    auto notes = std::make_shared<memory_notes_store>();
    REQUIRE(reg.add(make_roll_dice_tool(3)).ok());
    REQUIRE(reg.add(make_clock_tool()).ok());
    REQUIRE(reg.add(make_note_tool(notes, "s1")).ok());
    engine::grammar_options go;
    go.max_string_chars = 12;
    auto g = reg.call_grammar(go);
    REQUIRE(g.ok());

    engine::engine_options eo;
    eo.n_threads = 2;
    eo.n_ctx = 512;
    eo.max_seqs = 8;
    eo.kv_bytes = size_t(64) << 20;
    auto e = engine::engine::create(mdl, eo);
    REQUIRE(e.ok());
    const auto prompt = tk.encode(render_tools_prompt(reg).substr(0, 200) + "\nUser: roll 2d6", false, false);
    const int n_seeds = 20;
    std::vector<engine::finish_info> infos(n_seeds);
    for (int seed = 0; seed < n_seeds; ++seed) {
        engine::request r;
        r.prompt = prompt;
        r.max_tokens = 256;
        r.sampling.temperature = 1.0f;
        r.sampling.seed = static_cast<uint64_t>(seed);
        r.constraint = *g;
        r.on_finish = [&infos, seed](const engine::finish_info& f) { infos[static_cast<size_t>(seed)] = f; };
        (*e)->submit(std::move(r));
    }
    (*e)->run_until_idle();
    int n_ran = 0, n_tool_ok = 0;
    for (const auto& f : infos) {
        std::string text;
        for (auto t : f.tokens)
            if (!tk.is_eog(t)) text += tk.token_to_piece(t, false);
        INFO(text << " (" << engine::finish_reason_name(f.reason) << " " << f.error.to_string() << ")");
        CHECK(f.reason != engine::finish_reason::length);
        // As the agent sees it: wrapped in the Hermes tags.
        auto parsed = parse_tool_calls("<tool_call>\n" + text + "\n</tool_call>");
        REQUIRE(parsed.ok());
        REQUIRE(parsed->calls.size() == 1);
        std::optional<result<json>> out;
        reg.call(parsed->calls[0].name, parsed->calls[0].arguments, [&](result<json> r) { out.emplace(std::move(r)); });
        REQUIRE(out.has_value());
        // The arguments always pass the schema; roll_dice may still refuse noise as notation.
        if (!out->ok()) {
            INFO(out->error().message());
            CHECK(parsed->calls[0].name == "roll_dice");
            CHECK(out->error().message().find("dice notation") != std::string::npos);
        } else {
            n_tool_ok++;
        }
        n_ran++;
    }
    CHECK(n_ran == n_seeds);
    WARN("tool calls run: " << n_ran << ", tools succeeded: " << n_tool_ok
                            << ", notes pinned: " << notes->list("s1")->size());
}

// Tests for agent/cli/args.h (the one flag parser of every command) and the engine flags on it.
#include <catch2/catch.hpp>

#include "agent/cli/args.h"
#include "agent/cli/engine_flags.h"

using namespace mnemos;
using cli::arg_parser;

namespace {

struct example {
    std::string model, file;
    int32_t n = 7;
    uint64_t seed = 1;
    float temp = 0.5f;
    bool verbose = false;
    std::vector<std::string> stops;
    arg_parser p{"mnemos example FILE [options]", "An example command."};
    example() {
        p.positional("FILE", file, true, "the input");
        p.text("--model,-m", model, "FILE", "the model");
        p.integer("--n", n, 1, 100, "N", "a count");
        p.integer("--seed", seed, 0, UINT64_MAX, "S", "a seed");
        p.real("--temp", temp, 0, 2, "T", "a temperature");
        p.toggle("--verbose", verbose, "talk more");
        p.repeated("--stop", stops, "TEXT", "repeatable");
    }
    result<arg_parser::outcome> parse(std::vector<std::string> args) { return p.parse(args); }
};

}  // namespace

TEST_CASE("args: values land where declared", "[agent][cli]") {
    example e;
    auto r = e.parse({"in.json", "-m", "x.gguf", "--n", "42", "--seed", "18446744073709551615", "--temp", "1.25",
                      "--verbose", "--stop", "a", "--stop", "b"});
    REQUIRE(r.ok());
    CHECK(r.value() == arg_parser::outcome::run);
    CHECK(e.file == "in.json");
    CHECK(e.model == "x.gguf");
    CHECK(e.n == 42);
    CHECK(e.seed == UINT64_MAX);
    CHECK(e.temp == 1.25f);
    CHECK(e.verbose);
    CHECK(e.stops == std::vector<std::string>{"a", "b"});
}

TEST_CASE("args: every bad input is an error naming the flag, never an exit", "[agent][cli]") {
    auto error_of = [](std::vector<std::string> args) {
        example e;
        auto r = e.parse(std::move(args));
        REQUIRE(!r.ok());
        CHECK(r.error().code() == errc::invalid_argument);
        return r.error().message();
    };
    CHECK(error_of({"f", "--n", "0"}) == "--n expects an integer from 1 to 100, got '0'");
    CHECK(error_of({"f", "--n", "2.5"}).find("--n expects an integer") == 0);
    CHECK(error_of({"f", "--n", "12abc"}).find("--n expects an integer") == 0);
    CHECK(error_of({"f", "--n", ""}).find("--n expects an integer") == 0);
    CHECK(error_of({"f", "--seed", "-1"}).find("--seed expects an integer") == 0);
    CHECK(error_of({"f", "--temp", "nan"}).find("--temp expects a number from 0 to 2") == 0);
    CHECK(error_of({"f", "--temp", "3"}).find("--temp expects a number") == 0);
    CHECK(error_of({"f", "--n"}) == "--n needs a value (N)");
    CHECK(error_of({"f", "--bogus"}) == "unknown option '--bogus'");
    CHECK(error_of({"f", "g"}) == "unexpected argument 'g'");
    CHECK(error_of({"--verbose"}) == "FILE is required");
}

TEST_CASE("args: --help wins and the help lists every flag", "[agent][cli]") {
    example e;
    auto r = e.parse({"--n", "bad", "--help"});
    // The bad value comes first and is reported; --help alone asks for help.
    CHECK(!r.ok());
    auto h = e.parse({"--help"});
    REQUIRE(h.ok());
    CHECK(h.value() == arg_parser::outcome::help);
    const std::string text = e.p.help();
    for (const char* s : {"usage: mnemos example FILE", "--model, -m FILE", "--seed S", "--verbose", "FILE",
                          "-h, --help", "An example command."})
        CHECK(text.find(s) != std::string::npos);
}

TEST_CASE("args: the engine flags set engine options and refuse bad values", "[agent][cli]") {
    engine::engine_options eo;
    arg_parser p("mnemos x", "");
    cli::add_engine_flags(p, eo);
    REQUIRE(p.parse(std::vector<std::string>{"--attention", "sparse", "--sink-tokens", "0", "--window-tokens", "512",
                                             "--select-pages", "8", "--kv-mb", "64"})
                .ok());
    CHECK(eo.attention.mode == engine::attention_mode::sparse);
    CHECK(eo.attention.n_sink == 0);
    CHECK(eo.attention.n_window == 512);
    CHECK(eo.attention.n_pages == 8);
    CHECK(eo.kv_bytes == size_t(64) << 20);
    CHECK(!p.parse(std::vector<std::string>{"--attention", "dense"}).ok());
    CHECK(!p.parse(std::vector<std::string>{"--kv-mb", "0"}).ok());
    CHECK(!p.parse(std::vector<std::string>{"--window-tokens", "0"}).ok());
    CHECK(cli::engine_flags_help().find("--select-pages N") != std::string::npos);

    // The by-hand form used by commands that still parse argv themselves.
    std::vector<std::string> words{"play", "--window-tokens", "256", "--other"};
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    int i = 1;
    std::string err;
    engine::engine_options eo2;
    CHECK(cli::parse_engine_flag(4, argv.data(), i, eo2, err) == cli::flag_parse::ok);
    CHECK(i == 2);
    CHECK(eo2.attention.n_window == 256);
    i = 3;
    CHECK(cli::parse_engine_flag(4, argv.data(), i, eo2, err) == cli::flag_parse::not_mine);
}

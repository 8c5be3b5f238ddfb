#include "agent/cli/engine_flags.h"

namespace mnemos::cli {

namespace {

constexpr int64_t k_max_tokens_flag = int64_t(1) << 24;
constexpr int64_t k_max_kv_mb = int64_t(1) << 22;

// Only the engine flags, for engine_flags_help and parse_engine_flag.
struct engine_flag_parser {
    engine::engine_options eo;
    arg_parser p{"", ""};
    engine_flag_parser() { add_engine_flags(p, eo); }
};

}  // namespace

void add_engine_flags(arg_parser& p, engine::engine_options& eo) {
    p.section("attention beyond the window and the KV pool");
    p.custom("--attention", "MODE",
             "full | sparse | auto (default auto): with auto, a history longer than --ctx is not cut: each "
             "query attends to the first --sink-tokens, the last --window-tokens and the --select-pages older "
             "pages most relevant to it (per layer); sparse does so beyond that budget even inside --ctx; full "
             "refuses longer prompts",
             [&eo](const std::string& v) {
                 if (engine::parse_attention_mode(v.c_str(), &eo.attention.mode)) return status{};
                 return make_error(errc::invalid_argument, "expects full, sparse or auto, got '" + v + "'");
             });
    p.integer("--sink-tokens", eo.attention.n_sink, 0, k_max_tokens_flag, "N",
              "tokens at the start every query sees (default 64)");
    p.integer("--window-tokens", eo.attention.n_window, 1, k_max_tokens_flag, "N",
              "most recent tokens every query sees (default 1024)");
    p.integer("--select-pages", eo.attention.n_pages, 1, k_max_tokens_flag, "N",
              "older 16-token pages selected per query (default 32)");
    p.custom("--kv-mb", "N",
             "KV pool size in MiB: pages being attended stay there; a long history parks the others in the "
             "store (--store) or in host memory (default: 4 contexts of --ctx, at most 2048)",
             [&eo](const std::string& v) {
                 auto mb = parse_integer_value(v, 1, k_max_kv_mb);
                 if (!mb) return mb.error();
                 eo.kv_bytes = static_cast<size_t>(mb.value()) << 20;
                 return status{};
             });
}

std::string engine_flags_help() {
    engine_flag_parser e;
    const std::string h = e.p.help();
    const auto start = h.find("\nattention beyond");
    const auto end = h.find("  -h, --help");
    return h.substr(start + 1, end - start - 1);
}

flag_parse parse_engine_flag(int argc, char** argv, int& i, engine::engine_options& eo, std::string& err) {
    engine_flag_parser e;
    e.eo = eo;
    const std::string a = argv[i];
    if (!e.p.knows(a)) return flag_parse::not_mine;
    std::vector<std::string> args{a};
    if (i + 1 < argc) args.push_back(argv[i + 1]);
    auto r = e.p.parse(args);
    if (!r) {
        err = r.error().message();
        return flag_parse::error;
    }
    eo = e.eo;
    i += 1;
    return flag_parse::ok;
}

}  // namespace mnemos::cli

#include "agent/cli/engine_flags.h"

#include <charconv>
#include <cstring>

namespace mnemos::cli {

const char* const k_engine_flags_help =
    "attention beyond the window and the KV pool:\n"
    "  --attention MODE    full | sparse | auto (default auto): with auto, a history longer than --ctx is\n"
    "                      not cut: each query attends to the first --sink-tokens, the last --window-tokens\n"
    "                      and the --select-pages older pages most relevant to it (per layer);        \n"
    "                      sparse does so beyond that budget even inside --ctx; full refuses longer prompts\n"
    "  --sink-tokens N     tokens at the start every query sees (default 64)\n"
    "  --window-tokens N   most recent tokens every query sees (default 1024)\n"
    "  --select-pages N    older 16-token pages selected per query (default 32)\n"
    "  --kv-mb N           KV pool size in MiB: pages being attended stay there; a long history parks\n"
    "                      the others in the store (--store) or in host memory (default: 4 contexts\n"
    "                      of --ctx, at most 2048)\n";

namespace {

bool parse_int(const char* s, int64_t lo, int64_t hi, int64_t& out) {
    const char* end = s + std::strlen(s);
    const auto [p, ec] = std::from_chars(s, end, out);
    return *s && ec == std::errc{} && p == end && out >= lo && out <= hi;
}

}  // namespace

flag_parse parse_engine_flag(int argc, char** argv, int& i, engine::engine_options& eo, std::string& err) {
    const std::string a = argv[i];
    const bool mine =
        a == "--attention" || a == "--sink-tokens" || a == "--window-tokens" || a == "--select-pages" || a == "--kv-mb";
    if (!mine) return flag_parse::not_mine;
    if (i + 1 >= argc) {
        err = a + " needs a value";
        return flag_parse::error;
    }
    const char* v = argv[++i];
    if (a == "--attention") {
        if (engine::parse_attention_mode(v, &eo.attention.mode)) return flag_parse::ok;
        err = "--attention expects full, sparse or auto, got '" + std::string(v) + "'";
        return flag_parse::error;
    }
    int64_t n = 0;
    const int64_t hi = a == "--kv-mb" ? (int64_t(1) << 22) : (int64_t(1) << 24);
    if (!parse_int(v, a == "--sink-tokens" ? 0 : 1, hi, n)) {
        err = a + " expects an integer from " + std::string(a == "--sink-tokens" ? "0" : "1") + " to " +
              std::to_string(hi) + ", got '" + v + "'";
        return flag_parse::error;
    }
    if (a == "--sink-tokens")
        eo.attention.n_sink = static_cast<int32_t>(n);
    else if (a == "--window-tokens")
        eo.attention.n_window = static_cast<int32_t>(n);
    else if (a == "--select-pages")
        eo.attention.n_pages = static_cast<int32_t>(n);
    else
        eo.kv_bytes = static_cast<size_t>(n) << 20;
    return flag_parse::ok;
}

}  // namespace mnemos::cli

#pragma once
// Flags shared by every command that runs the engine (generate, chat, play): attention beyond the
// window and the KV pool budget. `mnemos serve` takes the same settings through
// agent/config/serve_config.h (flags and config file).
#include <string>

#include "agent/cli/args.h"
#include "engine/engine.h"

namespace mnemos::cli {

// Declares --attention MODE, --sink-tokens N, --window-tokens N, --select-pages N, --kv-mb N under a
// heading; their values go to eo.
void add_engine_flags(arg_parser& p, engine::engine_options& eo);

// The help lines of these flags (for commands whose help is written by hand).
std::string engine_flags_help();

enum class flag_parse { not_mine, ok, error };

// For commands that parse argv by hand: when argv[i] is one of the flags above, stores its value in eo,
// advances i past it and returns ok (error with err set when the value is missing or malformed).
// Returns not_mine for any other flag.
flag_parse parse_engine_flag(int argc, char** argv, int& i, engine::engine_options& eo, std::string& err);

}  // namespace mnemos::cli

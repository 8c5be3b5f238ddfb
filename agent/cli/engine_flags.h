#pragma once
// Flags shared by every command that runs the engine (generate, chat, play):
// attention beyond the window and the KV pool budget. `mnemos serve` takes the
// same settings through agent/serve_config.h (flags and config file).
#include <string>

#include "engine/engine.h"

namespace mnemos::cli {

// The help lines of these flags (for each command's --help).
extern const char* const k_engine_flags_help;

enum class flag_parse { not_mine, ok, error };

// When argv[i] is one of --attention MODE, --sink-tokens N, --window-tokens N, --select-pages N, --kv-mb N:
// stores its value in eo, advances i past it and returns ok (error with err set when the value is missing or
// malformed). Returns not_mine for any other flag.
flag_parse parse_engine_flag(int argc, char** argv, int& i, engine::engine_options& eo, std::string& err);

}  // namespace mnemos::cli

#pragma once
// Which model a command runs, and loading it with the command's error messages.
#include <memory>
#include <string>

#include "engine/model.h"

namespace mnemos::cli {

// --model, else $MNEMOS_MODEL, else the first of a list of known files under ../shared/models (relative to
// the working directory or the executable), saying so on stderr. Empty when none is found.
std::string resolve_model_path(const std::string& flag_value);

// The model of `mnemos <command>`: resolved as above and loaded. On failure prints
// "mnemos <command>: ..." to stderr and returns nullptr with *exit_code set (2: no model given or found,
// 1: the file cannot be loaded).
std::shared_ptr<const engine::model> load_command_model(const char* command, const std::string& flag_value,
                                                        int* exit_code);

}  // namespace mnemos::cli

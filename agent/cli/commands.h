#pragma once
// The `mnemos` subcommands. Each takes (argc, argv) with argv[0] the command
// name and returns the process exit code (0 ok, 1 failure, 2 usage error).
#include <cstdint>
#include <functional>
#include <string>

#include "agent/cli/model_path.h"

namespace mnemos::cli {

int cmd_generate(int argc, char** argv);
int cmd_info(int argc, char** argv);
// agent/cli/store_cmds.cpp: `sessions ls|show|rm` and `store stats|gc|check|repair` (--db PATH, else $MNEMOS_DB).
int cmd_sessions(int argc, char** argv);
int cmd_store(int argc, char** argv);
int cmd_serve(int argc, char** argv);
int cmd_chat(int argc, char** argv);
// agent/cli/play.cpp: `play FILE` runs a scenario (agent/play.h).
int cmd_play(int argc, char** argv);
// agent/cli/version.cpp: version, git commit, build type and the CPU kernels in use.
int cmd_version(int argc, char** argv);

// A progress callback for engine::request::on_prefill that draws a bar on
// stderr when it is a terminal and the prompt has at least min_tokens tokens
// (tokens reused from the cache count as done); an empty function otherwise.
std::function<void(int32_t n_done, int32_t n_prompt)> prefill_progress_bar(size_t n_prompt, size_t min_tokens = 256);

}  // namespace mnemos::cli

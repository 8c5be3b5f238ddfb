// mnemos: the command line. `mnemos <command> --help` describes each command.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "agent/cli/commands.h"

namespace {

void usage(FILE* out) {
    std::fprintf(out,
                 "mnemos - an agent runtime with long-term memory\n"
                 "\n"
                 "usage: mnemos <command> [options]\n"
                 "\n"
                 "commands:\n"
                 "  generate   run a GGUF model on a prompt and stream the continuation\n"
                 "  info       print a model's hyper-parameters, tensors and tokenizer\n"
                 "  serve      serve a model over HTTP (OpenAI-compatible API, sessions)\n"
                 "  chat       chat interactively with a local model (streaming; resumes a session with --store)\n"
                 "  play       play a scenario file (characters, probes, score; resumes with --store --resume)\n"
                 "  sessions   ls | show ID | rm ID: the sessions in the store (--db PATH)\n"
                 "  store      stats | gc | check | repair: counts and hit rates, garbage collection, verification,\n"
                 "             recovery of a damaged store into a copy (--db PATH)\n"
                 "  version    print the version, git commit, build type and CPU kernels (also --version)\n"
                 "  help       show this help\n"
                 "\n"
                 "`mnemos <command> --help` shows a command's options.\n"
                 "The model is --model FILE, else $MNEMOS_MODEL, else a model from ../shared/models.\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const std::string_view cmd = argv[1];
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
        usage(stdout);
        return 0;
    }
    if (cmd == "version" || cmd == "--version") return mnemos::cli::cmd_version(argc - 1, argv + 1);
    if (cmd == "generate") return mnemos::cli::cmd_generate(argc - 1, argv + 1);
    if (cmd == "info") return mnemos::cli::cmd_info(argc - 1, argv + 1);
    if (cmd == "sessions") return mnemos::cli::cmd_sessions(argc - 1, argv + 1);
    if (cmd == "store") return mnemos::cli::cmd_store(argc - 1, argv + 1);
    if (cmd == "serve") return mnemos::cli::cmd_serve(argc - 1, argv + 1);
    if (cmd == "chat") return mnemos::cli::cmd_chat(argc - 1, argv + 1);
    if (cmd == "play") return mnemos::cli::cmd_play(argc - 1, argv + 1);
    std::fprintf(stderr, "mnemos: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

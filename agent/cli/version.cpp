// mnemos version / --version: what this binary is and what it runs on.
#include <cstdio>

#include "agent/cli/commands.h"
#include "agent/core/build_info.h"

namespace mnemos::cli {

int cmd_version(int, char**) {
    const agent::build_info& b = agent::this_build();
    std::printf("mnemos %s (commit %s, %s build)\n", b.version.c_str(), b.commit.c_str(), b.build_type.c_str());
    std::printf("cpu kernels: %s\n", b.cpu.c_str());
    return 0;
}

}  // namespace mnemos::cli

// mnemos version / --version: what this binary is and what it runs on.
#include <cstdio>

#include "agent/cli/commands.h"
#include "kernels/cpu/kernels.h"

#ifndef MNEMOS_VERSION
#define MNEMOS_VERSION "unknown"
#endif
#ifndef MNEMOS_GIT_COMMIT
#define MNEMOS_GIT_COMMIT "unknown"
#endif
#ifndef MNEMOS_BUILD_TYPE
#define MNEMOS_BUILD_TYPE "unknown"
#endif

namespace mnemos::cli {

int cmd_version(int, char**) {
    const kernels::isa level = kernels::best_isa();
    std::printf("mnemos %s (commit %s, %s build)\n", MNEMOS_VERSION, MNEMOS_GIT_COMMIT, MNEMOS_BUILD_TYPE);
    std::printf("cpu kernels: %s%s%s\n", kernels::isa_name(level),
                level == kernels::isa::avx512 && kernels::isa_avx512_vnni() ? " +vnni" : "",
                level == kernels::isa::avx512 && kernels::isa_amx() ? " +amx" : "");
    return 0;
}

}  // namespace mnemos::cli

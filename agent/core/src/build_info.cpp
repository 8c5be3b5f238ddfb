// build_info (agent/core/build_info.h).
#include "agent/core/build_info.h"

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

namespace mnemos::agent {

namespace {

std::string cpu_kernels() {
    const kernels::isa level = kernels::best_isa();
    std::string s = kernels::isa_name(level);
    if (level == kernels::isa::avx512 && kernels::isa_avx512_vnni()) s += " +vnni";
    if (level == kernels::isa::avx512 && kernels::isa_amx()) s += " +amx";
    return s;
}

}  // namespace

const build_info& this_build() {
    static const build_info b{MNEMOS_VERSION, MNEMOS_GIT_COMMIT[0] ? MNEMOS_GIT_COMMIT : "unknown", MNEMOS_BUILD_TYPE,
                              cpu_kernels()};
    return b;
}

}  // namespace mnemos::agent

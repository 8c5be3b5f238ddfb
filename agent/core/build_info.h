#pragma once
// What this binary is: version, commit and build type (set by CMake when it configures), and the CPU kernels
// it runs. One copy for `mnemos version` and the server's mnemos_build_info metric.
#include <string>

namespace mnemos::agent {

struct build_info {
    std::string version;     // the project's version ("0.1.0"); "unknown" when not set at build time
    std::string commit;      // the short git commit configured from; "unknown" outside a checkout
    std::string build_type;  // CMAKE_BUILD_TYPE ("Release", ...)
    std::string cpu;         // the CPU kernels chosen at run time ("avx2", "avx512 +vnni", ...)
};

const build_info& this_build();

}  // namespace mnemos::agent

#!/usr/bin/env bash
# Configures and builds the one sanitizer build that scripts/asan.sh (the unit tests) and scripts/fuzz.sh (the
# libFuzzer targets) share, in build-checks/ (or $MNEMOS_CHECKS_DIR): Clang, AddressSanitizer +
# UndefinedBehaviorSanitizer (any report fails: -fno-sanitize-recover=all) and libFuzzer's coverage
# instrumentation (MNEMOS_FUZZ=ON: -fsanitize=fuzzer-no-link everywhere, the fuzz targets link libFuzzer).
# Asserts on (no -DNDEBUG), no CUDA, no benchmarks. To keep it within CI's time on 2 cores: everything at -O0
# except kernels, engine and their tests (-O1: their tests compute), and the unit tests tagged [long]
# (long-context prefills) left out of CTest (MNEMOS_UNIT_EXCLUDE). Arguments: the targets to build.
# Environment: MNEMOS_CHECKS_DIR, MNEMOS_JOBS (build parallelism).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${MNEMOS_CHECKS_DIR:-build-checks}"
jobs="${MNEMOS_JOBS:-$(nproc)}"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O0 -g1" \
  -DMNEMOS_COMPUTE_OPTIONS=-O1 -DMNEMOS_UNIT_EXCLUDE="[long]" -DMNEMOS_FUZZ=ON \
  -DMNEMOS_CUDA=OFF -DMNEMOS_BUILD_TESTS=ON -DMNEMOS_BUILD_BENCH=OFF >/dev/null
t0=$SECONDS
cmake --build "$dir" -j"$jobs" --target "$@"
echo "checks build ($*): $((SECONDS - t0)) s"

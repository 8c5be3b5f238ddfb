#!/usr/bin/env bash
# Builds the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ (or
# $MNEMOS_ASAN_DIR) and runs the CTest tests labelled "unit" (ctest -L unit). Any sanitizer report
# fails the run: UBSan errors are not recoverable (-fno-sanitize-recover=all), ASan and LeakSanitizer
# exit with an error. Compiler: $CC/$CXX when set (gcc or clang), else clang (at -O0 it compiles
# this code in 60% of gcc's time, a third of gcc -O1's).
# Asserts left on (no -DNDEBUG), no CUDA, no benchmarks. To keep it within CI's time on 2 cores:
# everything is built at -O0 (half the compile time of -O1) except kernels, engine and their tests
# (-O1: their tests compute), and the unit tests tagged [long] (long-context prefills) are left out
# (MNEMOS_UNIT_EXCLUDE; README "Continuous checks" lists them). Extra arguments go to ctest (e.g.
# -R engine_unit). Environment: MNEMOS_ASAN_DIR, MNEMOS_JOBS (build parallelism).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${MNEMOS_ASAN_DIR:-build-asan}"
jobs="${MNEMOS_JOBS:-$(nproc)}"
export CC="${CC:-clang}" CXX="${CXX:-clang++}"
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O0 -g1" \
  -DMNEMOS_COMPUTE_OPTIONS=-O1 -DMNEMOS_UNIT_EXCLUDE="[long]" \
  -DCMAKE_CXX_FLAGS="$san" -DCMAKE_C_FLAGS="$san" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DMNEMOS_CUDA=OFF -DMNEMOS_BUILD_TESTS=ON -DMNEMOS_BUILD_BENCH=OFF >/dev/null
# Only the test binaries (test_agent drives the mnemos binary, a dependency of it).
t0=$SECONDS
cmake --build "$dir" -j"$jobs" --target test_kernels test_engine test_memory test_tools test_agent
echo "asan: built in $((SECONDS - t0)) s"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:halt_on_error=1:detect_leaks=1:check_initialization_order=1:print_summary=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:report_error_type=1}"
t0=$SECONDS
ctest --test-dir "$dir" -L unit --output-on-failure "$@"
echo "asan: tests ran in $((SECONDS - t0)) s"

#!/usr/bin/env bash
# Builds the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ (or
# $MNEMOS_ASAN_DIR) and runs the CTest tests labelled "unit" (ctest -L unit). Any sanitizer report
# fails the run: UBSan errors are not recoverable (-fno-sanitize-recover=all), ASan and LeakSanitizer
# exit with an error. Compiler: $CC/$CXX when set (gcc or clang), else the default (gcc).
# RelWithDebInfo at -O1 with asserts left on (no -DNDEBUG), no CUDA, no benchmarks.
# Extra arguments go to ctest (e.g. -R engine_unit).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${MNEMOS_ASAN_DIR:-build-asan}"
jobs="${MNEMOS_JOBS:-$(nproc)}"
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DCMAKE_CXX_FLAGS="$san" -DCMAKE_C_FLAGS="$san" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DMNEMOS_CUDA=OFF -DMNEMOS_BUILD_TESTS=ON -DMNEMOS_BUILD_BENCH=OFF >/dev/null
# Only the test binaries (test_agent drives the mnemos binary, a dependency of it).
cmake --build "$dir" -j"$jobs" --target test_kernels test_engine test_memory test_tools test_agent

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:halt_on_error=1:detect_leaks=1:check_initialization_order=1:print_summary=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:report_error_type=1}"
ctest --test-dir "$dir" -L unit --output-on-failure "$@"

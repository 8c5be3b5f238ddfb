#!/usr/bin/env bash
# The unit tests (CTest label "unit") under AddressSanitizer + UndefinedBehaviorSanitizer, from the sanitizer
# build scripts/checks_build.sh makes (build-checks/, shared with scripts/fuzz.sh). Any sanitizer report fails the
# run: UBSan errors are not recoverable, ASan and LeakSanitizer exit with an error. The unit tests tagged [long]
# (long-context prefills) are left out (README "Continuous checks" lists them). Extra arguments go to ctest
# (e.g. -R engine_unit). Environment: MNEMOS_CHECKS_DIR, MNEMOS_JOBS (build parallelism).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${MNEMOS_CHECKS_DIR:-build-checks}"
# Only the test binaries (test_agent drives the mnemos binary, a dependency of it).
targets=(test_kernels test_engine test_memory test_tools test_agent)
[ -n "$(pkg-config --libs libnats 2>/dev/null || true)" ] && command -v nats-server >/dev/null && targets+=(test_cluster)
./scripts/checks_build.sh "${targets[@]}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:halt_on_error=1:detect_leaks=1:check_initialization_order=1:print_summary=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:report_error_type=1}"
t0=$SECONDS
ctest --test-dir "$dir" -L unit --output-on-failure -j"$(nproc)" "$@"
echo "asan: tests ran in $((SECONDS - t0)) s"

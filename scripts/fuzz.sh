#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (scripts/checks_build.sh: build-checks/, shared with scripts/asan.sh) and runs
# each for ${MNEMOS_FUZZ_SECONDS:-60} s on its seed corpus, generated into a temporary directory by
# make_corpus from the tests' inputs (seeds are never committed: some are GGUF model files).
# Arguments: target names to run (default: all), e.g. `scripts/fuzz.sh gguf`.
# Exits 1 on any finding (crash, sanitizer report, leak, timeout, out-of-memory) and prints the
# reproducer; rerun one with `build-checks/fuzz/fuzz_<target> <file>`.
# Environment: MNEMOS_FUZZ_SECONDS, MNEMOS_CHECKS_DIR, MNEMOS_JOBS (build parallelism),
# MNEMOS_FUZZ_PARALLEL (targets run at once; default: the number of cores),
# MNEMOS_FUZZ_ARTIFACTS (where reproducers are kept; default build-checks/artifacts).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${MNEMOS_CHECKS_DIR:-build-checks}"
secs="${MNEMOS_FUZZ_SECONDS:-60}"
artifacts="${MNEMOS_FUZZ_ARTIFACTS:-$dir/artifacts}"

./scripts/checks_build.sh fuzz

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do
    t="$(basename "$f" .cpp)"
    targets+=("${t#fuzz_}")
  done
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts"
"$dir/fuzz/make_corpus" "$work/seeds"

# Runs target $1 on a copy of its generated seeds; its exit status goes to $work/$1.rc, its output to $work/$1.log.
run_target() {
  local t="$1" bin="$dir/fuzz/fuzz_$1" rc=0
  mkdir -p "$work/$t"
  [ -d "$work/seeds/$t" ] && cp -r "$work/seeds/$t/." "$work/$t/"
  echo "fuzz: $t for $secs s ($(ls "$work/$t" | wc -l) seeds)"
  # -timeout: one input running longer is a finding; -rss_limit_mb also caps single allocations.
  "$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$t-" "$work/$t" >"$work/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$work/$t.rc"
}

# ${MNEMOS_FUZZ_PARALLEL:-$(nproc)} targets at a time (each libFuzzer process uses one core).
parallel="${MNEMOS_FUZZ_PARALLEL:-$(nproc)}"
fail=0
t0=$SECONDS
for t in "${targets[@]}"; do
  [ -x "$dir/fuzz/fuzz_$t" ] || { echo "fuzz: no target $dir/fuzz/fuzz_$t"; fail=1; continue; }
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  run_target "$t" &
done
wait
echo "fuzz: ran in $((SECONDS - t0)) s, $parallel at a time"

summary=()
for t in "${targets[@]}"; do
  [ -f "$work/$t.rc" ] || continue
  log="$work/$t.log"
  if [ "$(cat "$work/$t.rc")" = 0 ]; then
    stats="$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 || true)"
    execs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')"
    rate="$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')"
    cov="$(echo "$stats" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+' || echo '?')"
    ft="$(echo "$stats" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+' || echo '?')"
    corp="$(echo "$stats" | grep -oE 'corp: [0-9]+' | grep -oE '[0-9]+' || echo '?')"
    summary+=("$(printf '%-12s ok      %9s runs %7s exec/s  cov %5s  ft %6s  corpus %5s' "$t" "$execs" "$rate" "$cov" "$ft" "$corp")")
  else
    fail=1
    echo "fuzz: $t found something:"
    tail -n 60 "$log"
    repro="$(grep -oE "Test unit written to [^ ]+" "$log" | sed 's/Test unit written to //' | tail -1 || true)"
    summary+=("$(printf '%-12s FINDING reproducer: %s' "$t" "${repro:-none written (see the log above)}")")
    [ -n "$repro" ] && echo "fuzz: $t: reproducer $repro (rerun: $dir/fuzz/fuzz_$t $repro)"
  fi
done
echo
echo "fuzz summary ($secs s per target):"
printf '  %s\n' "${summary[@]}"
exit $fail

#!/usr/bin/env bash
# `mnemos play` on a real model from ../shared/models with small budgets:
# ci_smoke and the big scenarios (mystery_blackwood, companion_weeks,
# tool_agent_inventory; the Chinese mystery only for its first steps) run to
# completion and write a valid results JSON; then a game killed mid-way with
# SIGKILL and resumed with --resume ends with the same event logs (game log
# and every character's messages) as an uninterrupted run with the same seed.
# Usage: play_models.sh MNEMOS_BINARY MODEL.gguf SCENARIOS_DIR
set -euo pipefail
MNEMOS=${1:?mnemos binary}
MODEL=${2:?model file}
SCEN=${3:?scenarios dir}
THREADS=${PLAY_THREADS:-2}

WORK=$(mktemp -d)
PLAY_PID=""
cleanup() {
    if [ -n "$PLAY_PID" ]; then kill -9 "$PLAY_PID" 2>/dev/null || true; wait "$PLAY_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

check_results() {  # results.json scenario-file [complete]
    python3 - "$@" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
sc = json.load(open(sys.argv[2]))
complete = len(sys.argv) > 3
def need(cond, what):
    if not cond:
        print("FAIL: %s: %s" % (sys.argv[1], what)); sys.exit(1)
need(res["scenario"] == sc["id"], "scenario id")
for k in ("probes", "score", "characters", "prefix_cache", "turns", "tool_turns", "tool_score", "context"):
    need(k in res, "no '%s'" % k)
need(len(res["characters"]) == len(sc["characters"]), "one entry per character")
if complete:
    need(len(res["probes"]) == len(sc.get("probes", [])), "every probe scored")
    need(res["score"]["total"] == len(res["probes"]), "score total")
    need(res["score"]["passed"] == sum(p["passed"] for p in res["probes"]), "score passed")
    want_tool_turns = sum(1 for ph in sc["phases"] for t in ph.get("turns", []) if t.get("expect_tools"))
    need(res["tool_score"]["total"] == want_tool_turns, "every expect_tools turn scored")
print("%-24s steps %3d  probes %d/%d  tool turns %d/%d  windowed steps %d  %.1f s" % (
    res["scenario"], res["steps"], res["score"]["passed"], res["score"]["total"],
    res["tool_score"]["passed"], res["tool_score"]["total"], res["context"]["windowed_steps"], res["seconds"]))
PY
}

play() {  # name store extra-args...
    local name=$1 store=$2; shift 2
    "$MNEMOS" play "$SCEN/$name.json" --model "$MODEL" --threads "$THREADS" --store "$store" --quiet "$@"
}

T0=$(date +%s)
# 1. Every scenario to completion (the Chinese mystery: its first 30 steps).
for s in ci_smoke mystery_blackwood companion_weeks tool_agent_inventory; do
    budget=8
    [ "$s" = ci_smoke ] && budget=16
    play "$s" "$WORK/$s" --max-tokens "$budget" --results "$WORK/$s.json" >"$WORK/$s.log" 2>&1 ||
        { echo "FAIL: mnemos play $s"; tail -20 "$WORK/$s.log"; exit 1; }
    check_results "$WORK/$s.json" "$SCEN/$s.json" complete
done
play mystery_blackwood.zh "$WORK/zh" --max-tokens 8 --max-steps 30 --results "$WORK/zh.json" >"$WORK/zh.log" 2>&1 ||
    { echo "FAIL: mnemos play mystery_blackwood.zh"; tail -20 "$WORK/zh.log"; exit 1; }
check_results "$WORK/zh.json" "$SCEN/mystery_blackwood.zh.json"

# 2. Kill and resume: the tool agent with tool calls forced (they run and change the packs), killed by
#    SIGKILL at the road phase, resumed; then an uninterrupted run with the same seed.
S=tool_agent_inventory
ARGS=(--max-tokens 8 --seed 11 --tool-choice required)
"$MNEMOS" play "$SCEN/$S.json" --model "$MODEL" --threads "$THREADS" --store "$WORK/killed" --quiet "${ARGS[@]}" \
    >"$WORK/killed.out" 2>"$WORK/killed.err" &
PLAY_PID=$!
for _ in $(seq 1 600); do
    grep -q "phase 2/3" "$WORK/killed.err" 2>/dev/null && break
    kill -0 "$PLAY_PID" 2>/dev/null || break
    sleep 0.05
done
kill -9 "$PLAY_PID" 2>/dev/null || true
wait "$PLAY_PID" 2>/dev/null || true
PLAY_PID=""
grep -q "phase 2/3" "$WORK/killed.err" || { echo "FAIL: the game did not reach the road phase"; cat "$WORK/killed.err"; exit 1; }
play $S "$WORK/killed" "${ARGS[@]}" --resume --results "$WORK/resumed.json" >"$WORK/resumed.log" 2>&1 ||
    { echo "FAIL: --resume"; tail -20 "$WORK/resumed.log"; exit 1; }
play $S "$WORK/clean" "${ARGS[@]}" --results "$WORK/clean.json" >"$WORK/clean.log" 2>&1 ||
    { echo "FAIL: the uninterrupted run"; tail -20 "$WORK/clean.log"; exit 1; }
check_results "$WORK/resumed.json" "$SCEN/$S.json" complete

dump() {  # store session -> one JSON event per line, without wall-clock times
    "$MNEMOS" sessions show "$2" --store "$1" --events 1000000 | python3 -c '
import json, sys
for line in sys.stdin:
    i = line.find("{")
    if i < 0 or not line[:i].strip().isdigit(): continue
    e = json.loads(line[i:]); e.pop("ts", None)
    print(json.dumps(e if sys.argv[1] == "full" else [e.get("role"), e.get("content")], sort_keys=True))
' "$3"
}
n_resumed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["steps_resumed"])' "$WORK/resumed.json")
[ "$n_resumed" -gt 0 ] || { echo "FAIL: nothing was resumed"; exit 1; }
for pair in "$S.game full" "$S.quartermaster messages"; do
    set -- $pair
    dump "$WORK/killed" "$1" "$2" >"$WORK/a.txt"
    dump "$WORK/clean" "$1" "$2" >"$WORK/b.txt"
    [ -s "$WORK/b.txt" ] || { echo "FAIL: empty log $1"; exit 1; }
    cmp -s "$WORK/a.txt" "$WORK/b.txt" || { echo "FAIL: $1 differs after kill and resume"; diff "$WORK/a.txt" "$WORK/b.txt" | head -20; exit 1; }
done
echo "kill and resume: killed after $n_resumed steps; game log ($(wc -l <"$WORK/b.txt") messages of the game master) equal to the uninterrupted run"
echo "play on $(basename "$MODEL"): OK in $(( $(date +%s) - T0 )) s"

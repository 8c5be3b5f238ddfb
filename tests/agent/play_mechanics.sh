#!/usr/bin/env bash
# The table mechanics end to end on stories260K: scenarios/mystery_lighthouse.json (English and Chinese) plays
# to completion with small budgets and a results JSON that scores the clues found and the votes cast; then a
# game killed with SIGKILL mid-way and resumed with --resume ends with the same event logs (the game log, and
# every character's messages) as an uninterrupted run.
# The kill and resume part plays on RESUME_MODEL.gguf when given (stories260K's near ties make a resumed
# greedy run, whose partial pages are recomputed in other chunks, pick another token now and then).
# Usage: play_mechanics.sh MNEMOS_BINARY MODEL.gguf SCENARIOS_DIR [RESUME_MODEL.gguf]
set -euo pipefail
MNEMOS=${1:?mnemos binary}
MODEL=${2:?model file}
SCEN=${3:?scenarios dir}
RESUME_MODEL=${4:-$2}
THREADS=${PLAY_THREADS:-2}
S=mystery_lighthouse

WORK=$(mktemp -d)
PLAY_PID=""
cleanup() {
    if [ -n "$PLAY_PID" ]; then kill -9 "$PLAY_PID" 2>/dev/null || true; wait "$PLAY_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

play() {  # scenario store extra-args...
    local name=$1 store=$2; shift 2
    "$MNEMOS" play "$SCEN/$name.json" --model "$MODEL" --threads "$THREADS" --store "$store" --quiet \
        --max-tokens 8 --seed 5 "$@"
}

check_results() {  # results.json scenario-file
    python3 - "$@" <<'PY'
import json, sys
res = json.load(open(sys.argv[1])); sc = json.load(open(sys.argv[2]))
def need(cond, what):
    if not cond:
        print("FAIL: %s: %s" % (sys.argv[1], what)); sys.exit(1)
need(res["scenario"] == sc["id"], "scenario id")
c, a = res["clues"], res["accusation"]
to_find = [k for k in sc["clues"] if "target" in k or ("trigger" in k and "act" not in k["trigger"])]
need(c["available"] == len(to_find), "clues available")
need(c["found"] == len(c["list"]) and 3 <= c["found"] <= c["available"], "clues found (the scripted three at least)")
need(len(a["votes"]) == 4, "four votes cast")
need(sum(a["tally"].values()) == 4, "tally")
need([k["id"] for k in a["culprits"]] == [k["id"] for k in sc["culprits"]], "culprits")
print("%-24s steps %3d  clues %d/%d  votes %s  verdict %s  %.1f s" % (
    res["scenario"], res["steps"], c["found"], c["available"], a["tally"], a["verdict"], res["seconds"]))
PY
}

T0=$(date +%s)
for s in $S $S.zh; do
    play "$s" "$WORK/$s" --results "$WORK/$s.json" >"$WORK/$s.log" 2>&1 ||
        { echo "FAIL: mnemos play $s"; tail -20 "$WORK/$s.log"; exit 1; }
    check_results "$WORK/$s.json" "$SCEN/$s.json"
done

# Kill and resume: killed by SIGKILL once the cross-examination (phase 4/7) begins, resumed; compared with the
# uninterrupted run above (same seed).
# The binary itself in the background (a shell function would put a subshell between the kill and mnemos).
"$MNEMOS" play "$SCEN/$S.json" --model "$RESUME_MODEL" --threads "$THREADS" --store "$WORK/killed" --quiet --max-tokens 8 \
    --seed 5 >"$WORK/killed.out" 2>"$WORK/killed.err" &
PLAY_PID=$!
for _ in $(seq 1 1200); do
    grep -q "phase 4/7" "$WORK/killed.err" 2>/dev/null && break
    kill -0 "$PLAY_PID" 2>/dev/null || break
    sleep 0.05
done
kill -9 "$PLAY_PID" 2>/dev/null || true
wait "$PLAY_PID" 2>/dev/null || true
PLAY_PID=""
grep -q "phase 4/7" "$WORK/killed.err" || { echo "FAIL: the game did not reach phase 4"; cat "$WORK/killed.err"; exit 1; }
MODEL=$RESUME_MODEL play $S "$WORK/killed" --resume --results "$WORK/resumed.json" >"$WORK/resumed.log" 2>&1 ||
    { echo "FAIL: --resume"; tail -20 "$WORK/resumed.log"; exit 1; }
CLEAN="$WORK/$S"
if [ "$RESUME_MODEL" != "$MODEL" ]; then
    CLEAN="$WORK/clean"
    MODEL=$RESUME_MODEL play $S "$CLEAN" >"$WORK/clean.log" 2>&1 || { echo "FAIL: the uninterrupted run"; exit 1; }
fi
n_resumed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["steps_resumed"])' "$WORK/resumed.json")
[ "$n_resumed" -gt 0 ] || { echo "FAIL: nothing was resumed"; exit 1; }

# The game log whole (without wall-clock times); each character's messages as (role, content): a session cut
# mid-step is rebuilt from the game log, which keeps what the model saw, not the tool-call metadata of events.
dump() {  # store session full|messages -> one JSON line per event
    "$MNEMOS" sessions show "$2" --store "$1" --events 1000000 | python3 -c '
import json, sys
for line in sys.stdin:
    i = line.find("{")
    if i < 0 or not line[:i].strip().isdigit(): continue
    e = json.loads(line[i:]); e.pop("ts", None)
    print(json.dumps(e if sys.argv[1] == "full" else [e.get("role"), e.get("content")], sort_keys=True))
' "$3"
}
for sid in $S.game $S.gm $S.cook $S.fisher $S.painter $S.doctor $S.clerk; do
    mode=messages
    [ "$sid" = "$S.game" ] && mode=full
    dump "$WORK/killed" "$sid" $mode >"$WORK/a.txt"
    dump "$CLEAN" "$sid" $mode >"$WORK/b.txt"
    [ -s "$WORK/b.txt" ] || { echo "FAIL: empty log $sid"; exit 1; }
    cmp -s "$WORK/a.txt" "$WORK/b.txt" || { echo "FAIL: $sid differs after kill and resume"; diff "$WORK/a.txt" "$WORK/b.txt" | head -20; exit 1; }
done
echo "kill and resume: killed after $n_resumed steps; every log equal to the uninterrupted run"
echo "mechanics on $(basename "$MODEL") (resumed on $(basename "$RESUME_MODEL")): OK in $(( $(date +%s) - T0 )) s"

#!/usr/bin/env bash
# The spectator page (GET /) in headless Chromium against a real `mnemos serve`:
# after a session takes a turn, the dumped DOM must show the session id, its
# character, the user message and the reply.
# Then a game: `mnemos play scenarios/ci_smoke.json --serve PORT` serves its own
# runtime; the page must show the table (character names, the clue revealed,
# a generated turn, a probe verdict).
# Usage: spectator_test.sh MNEMOS_BINARY MODEL.gguf [SCENARIOS_DIR]
set -euo pipefail
MNEMOS=${1:?mnemos binary}
MODEL=${2:?model file}
SCEN=${3:-$(dirname "$0")/../../scenarios}
CHROMIUM=${CHROMIUM:-chromium}

WORK=$(mktemp -d)
SERVER_PID=""
PLAY_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$PLAY_PID" ]; then kill "$PLAY_PID" 2>/dev/null || true; wait "$PLAY_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# dump_dom URL OUT PROFILE: the page's DOM after 5 s of (virtual) time.
dump_dom() {
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --user-data-dir="$WORK/$3" --virtual-time-budget=5000 \
        --dump-dom "$1" >"$2" 2>"$WORK/$3.log"
}
# The checkers' common start: dom (sys.argv[1]) and need(what, text).
export NEED_PY='
import html, json, re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
ok = True
def need(what, text):
    global ok
    if text not in dom:
        print("FAIL: the DOM lacks %s: %r" % (what, text))
        ok = False
'

PORT=$(free_port)
"$MNEMOS" serve --model "$MODEL" --host 127.0.0.1 --port "$PORT" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "$BASE/healthz" >/dev/null || { echo "FAIL: server did not start"; cat "$WORK/serve.log"; exit 1; }

SID="spectre-lily"
curl -sf "$BASE/v1/sessions" -d '{"id":"'"$SID"'","character":{"name":"Lily","persona":"You are Lily, a girl who loves her red ball."}}' >/dev/null

# The turn, then the page: it must show the turn from the session's event log.
# (Posting the turn while the page loads raced with Chromium's virtual time,
# which can end the page before the turn arrives. Live token frames are
# checked by the WebSocket tests in tests/agent/test_ws.cpp and test_play.cpp.)
curl -sf "$BASE/v1/sessions/$SID/messages" -d '{"content":"Where is the red ball?","max_tokens":24,"temperature":0}' \
    >"$WORK/reply.json"
dump_dom "$BASE/" "$WORK/dom.html" profile || { echo "FAIL: chromium failed"; tail -20 "$WORK/profile.log"; exit 1; }

python3 - "$WORK/dom.html" "$WORK/reply.json" "$SID" <<'PY'
import os; exec(os.environ["NEED_PY"])
reply = json.load(open(sys.argv[2]))["choices"][0]["message"]["content"]
sid = sys.argv[3]
need("the session id", 'data-session="%s"' % sid)
need("the character", ">Lily<")
need("the user message", "Where is the red ball?")
piece = reply.strip()[:40]
if piece:
    need("the reply", html.escape(piece, quote=False))
need("memory statistics", 'data-metric="mnemos_sessions_resident"')
if not ok:
    print(dom[:4000])
    sys.exit(1)
print("spectator page OK: session %s, reply %r" % (sid, piece))
PY

kill "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

# A game on its own runtime, served while it plays and for a while after.
PORT=$(free_port)
"$MNEMOS" play "$SCEN/ci_smoke.json" --model "$MODEL" --serve "$PORT" --linger 30 --store "$WORK/game" \
    --transcript "$WORK/transcript.txt" --results "$WORK/results.json" >"$WORK/play.out" 2>"$WORK/play.err" &
PLAY_PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do
    [ -s "$WORK/results.json" ] && curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
[ -s "$WORK/results.json" ] || { echo "FAIL: the game did not finish"; cat "$WORK/play.err"; exit 1; }
dump_dom "$BASE/" "$WORK/game.html" profile2 || { echo "FAIL: chromium failed"; tail -20 "$WORK/profile2.log"; exit 1; }
kill "$PLAY_PID" 2>/dev/null || true
wait "$PLAY_PID" 2>/dev/null || true
PLAY_PID=""

python3 - "$WORK/game.html" "$WORK/results.json" "$WORK/transcript.txt" <<'PY'
import os; exec(os.environ["NEED_PY"])
res = json.load(open(sys.argv[2]))
transcript = open(sys.argv[3], encoding="utf-8").read()
for name in ("Host", "Cook", "Maid"):
    need("the character " + name, ">%s<" % name)
need("the game log row", 'data-session="ci_smoke.game"')
need("the clue revealed", "Clue revealed:")
need("the clue's text", "Paw prints under the window.")
need("a scripted line", "The dog by the window.")
need("a generated turn", 'data-kind="turn"')
# The maid's generated turn, as the transcript has it.
m = re.search(r"^Maid -> everyone: (.+)$", transcript, re.M)
if m and m.group(1).strip():
    need("the maid's generated words", html.escape(m.group(1).strip()[:30], quote=False))
need("a probe verdict", "Probe cook_heard_dog")
need("memory statistics", 'data-metric="mnemos_kv_pages_total"')
# The game's turns are counted on its runner (labelled endpoint="play"; the page sums the series).
turns = re.search(r'data-metric="mnemos_turns_total"><td>[^<]*</td><td>(\d+)</td>', dom)
if not turns or int(turns.group(1)) < 1:
    print("FAIL: the page does not count the game's turns: %r" % (turns.group(0) if turns else None))
    ok = False
if not ok:
    print(dom[:6000])
    sys.exit(1)
print("spectator page shows the game: %d steps, score %d/%d" % (res["steps"], res["score"]["passed"], res["score"]["total"]))
PY

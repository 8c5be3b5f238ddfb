#!/usr/bin/env bash
# The spectator page (GET /) in headless Chromium against a real `mnemos serve`:
# after a session takes a turn, the dumped DOM must show the session id, its
# character, the user message and the reply.
# With API keys (`serve --config`): a player's key sees only the sessions it may
# read, and never another character's private fields; an admin key sees them,
# collapsed (<details> not open).
# Then a game: `mnemos play scenarios/ci_smoke.json --serve PORT` serves its own
# runtime; the page must show the table (character names, the clue revealed,
# a generated turn, a probe verdict, step n/N and the score), at 1280x800 and
# at 390x844 with the table in the first screen and no horizontal overflow
# (the page writes its layout into <html data-*>), events and memory panels
# that are not empty. Last, a small inline game of the table's mechanics: an
# investigation with the clue it found, a question and its answer, a vote and the
# verdict, each shown as its own kind of step. Screenshots are kept in
# $SPECTATOR_SHOTS (default: ./spectator-shots, under ctest the build's tests
# directory).
# Usage: spectator_test.sh MNEMOS_BINARY MODEL.gguf [SCENARIOS_DIR]
set -euo pipefail
MNEMOS=${1:?mnemos binary}
MODEL=${2:?model file}
SCEN=${3:-$(dirname "$0")/../../scenarios}
CHROMIUM=${CHROMIUM:-chromium}
SHOTS=${SPECTATOR_SHOTS:-$PWD/spectator-shots}
mkdir -p "$SHOTS"

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
# chrome PROFILE SIZE ARGS...: headless Chromium with a window of SIZE (W,H) after 5 s of (virtual) time.
chrome() {
    local profile=$1 size=$2
    shift 2
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$WORK/$profile" \
        --window-size="$size" --virtual-time-budget=5000 "$@" 2>"$WORK/$profile.log"
}
# dump_dom URL OUT PROFILE [SIZE]: the page's DOM after its scripts ran.
dump_dom() { chrome "$3" "${4:-1280,800}" --dump-dom "$1" >"$2"; }

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

# Starts `mnemos serve` on a free port with the extra arguments, logging to $WORK/$1; sets SERVER_PID and BASE and
# waits until it answers.
start_server() {
    local log="$WORK/$1"
    shift
    PORT=$(free_port)
    "$MNEMOS" serve --model "$MODEL" --host 127.0.0.1 --port "$PORT" "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    BASE="http://127.0.0.1:$PORT"
    for _ in $(seq 1 100); do
        curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -sf "$BASE/healthz" >/dev/null || { echo "FAIL: server did not start"; cat "$log"; exit 1; }
}

start_server serve.log

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

# API keys: the player may read the lobby only; the cook's secrets are for the admin.
cat >"$WORK/keys.json" <<'JSON'
{"keys": [{"key": "spectre-admin-key", "name": "admin", "admin": true},
          {"key": "spectre-player-key", "name": "Detective", "read": ["villa-lobby"], "characters": ["Cook"]}]}
JSON
start_server serve2.log --config "$WORK/keys.json"
ADMIN=(-H "Authorization: Bearer spectre-admin-key")
curl -sf "${ADMIN[@]}" "$BASE/v1/sessions" -d '{"id":"villa-cook","character":{"name":"Cook","public_knowledge":"COOKPUBLIC works in the kitchen.","private_knowledge":"COOKPRIVATE was in the garden at noon.","secrets":["COOKSECRET ate a slice."],"persona":"COOKPERSONA is the cook."}}' >/dev/null \
    || { echo "FAIL: cannot create villa-cook"; cat "$WORK/serve2.log"; exit 1; }
curl -sf "${ADMIN[@]}" "$BASE/v1/sessions" -d '{"id":"villa-lobby","character":{"name":"Porter","public_knowledge":"LOBBYPUBLIC keeps the door."}}' >/dev/null \
    || { echo "FAIL: cannot create villa-lobby"; exit 1; }
# The API itself: the player's key may talk to the cook but gets no private field.
curl -sf -H "Authorization: Bearer spectre-player-key" "$BASE/v1/sessions/villa-cook" >"$WORK/cook_player.json" \
    || { echo "FAIL: the player's key cannot see villa-cook"; exit 1; }
dump_dom "$BASE/?key=spectre-player-key" "$WORK/player.html" profile_player || { echo "FAIL: chromium failed"; exit 1; }
dump_dom "$BASE/?key=spectre-admin-key" "$WORK/admin.html" profile_admin || { echo "FAIL: chromium failed"; exit 1; }
python3 - "$WORK/player.html" "$WORK/admin.html" "$WORK/cook_player.json" <<'PY'
import os; exec(os.environ["NEED_PY"])
cook = json.load(open(sys.argv[3]))
if "secrets" in cook["character"] or "private_knowledge" in cook["character"]:
    print("FAIL: the API gave the player's key private fields: %r" % cook)
    ok = False
need("the lobby (readable by the player)", 'data-session="villa-lobby"')
need("the lobby's public knowledge", "LOBBYPUBLIC keeps the door.")
for private in ("COOKSECRET", "COOKPRIVATE", "COOKPERSONA", 'data-session="villa-cook"'):
    if private in dom:
        print("FAIL: the player's page shows %r" % private)
        ok = False
player_ok = ok
dom = open(sys.argv[2], encoding="utf-8").read()
need("the cook (admin)", 'data-session="villa-cook"')
need("the cook's public knowledge", "COOKPUBLIC works in the kitchen.")
for private in ("COOKSECRET ate a slice.", "COOKPRIVATE was in the garden at noon.", "COOKPERSONA is the cook."):
    need("the cook's private field for the admin", private)
# Private fields are collapsed: inside a <details> that is not open.
for m in re.finditer(r"<details([^>]*)>", dom):
    if "data-private" in m.group(1) and "open" in m.group(1).split():
        print("FAIL: private fields are expanded: %r" % m.group(0))
        ok = False
if not any("COOKSECRET" in d.group(1) for d in re.finditer(r'<details[^>]*data-private="1"[^>]*>(.*?)</details>', dom, re.S)):
    print("FAIL: the cook's secret is not inside a collapsed <details data-private>")
    ok = False
if not ok:
    print(dom[:4000])
    sys.exit(1)
print("spectator page with keys OK: the player sees no private field, the admin sees them collapsed")
PY
kill "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

# A game on its own runtime, served while it plays and for a while after. The page is opened as soon as the
# server answers (while the game plays, as far as the machine's speed allows) at a laptop's and at a phone's
# viewport; once it shows the whole game (step N/N, events, turns counted) its DOM, its layout and a screenshot
# are taken (spectator_cdp.py: exact viewports through the DevTools protocol).
PORT=$(free_port)
"$MNEMOS" play "$SCEN/ci_smoke.json" --model "$MODEL" --serve "$PORT" --linger 60 --store "$WORK/game" \
    --transcript "$WORK/transcript.txt" --results "$WORK/results.json" >"$WORK/play.out" 2>"$WORK/play.err" &
PLAY_PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "$BASE/healthz" >/dev/null || { echo "FAIL: play --serve did not serve"; cat "$WORK/play.err"; exit 1; }
DONE_JS='(() => { const p = document.getElementById("progress"); return p && p.dataset.total && p.dataset.step === p.dataset.total && document.querySelector("#events .ev") && document.querySelector("[data-metric=mnemos_turns_total]"); })()'
CDP=$(dirname "$0")/spectator_cdp.py
python3 "$CDP" "$CHROMIUM" "$BASE/" 1280 800 "$WORK/game" "$DONE_JS" 90 &
CDP1=$!
python3 "$CDP" "$CHROMIUM" "$BASE/" 390 844 "$WORK/game_phone" "$DONE_JS" 90 &
CDP2=$!
rc=0
wait "$CDP1" || rc=1
wait "$CDP2" || rc=1
[ -s "$WORK/results.json" ] || { echo "FAIL: the game did not finish"; cat "$WORK/play.err"; exit 1; }
kill "$PLAY_PID" 2>/dev/null || true
wait "$PLAY_PID" 2>/dev/null || true
PLAY_PID=""
cp "$WORK/game.png" "$SHOTS/spectator-1280x800.png" 2>/dev/null || true
cp "$WORK/game_phone.png" "$SHOTS/spectator-390x844.png" 2>/dev/null || true
if [ "$rc" != 0 ]; then
    echo "FAIL: the page did not show the whole game (screenshots in $SHOTS)"
    tail -5 "$WORK/game.chromium.log" "$WORK/game_phone.chromium.log"
    exit 1
fi

for size in 1280x800 390x844; do
out="$WORK/game"; [ "$size" = 390x844 ] && out="$WORK/game_phone"
python3 - "$out.html" "$WORK/results.json" "$WORK/transcript.txt" "$out.json" "$size" <<'PY'
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
# The layout, measured at this viewport: the table in the first screen, nothing wider than the window; and
# what the page itself reported (data attributes of <html>).
lay = json.load(open(sys.argv[4]))
want_w, want_h = map(int, sys.argv[5].split("x"))
print("%s: table top %.0f, scroll width %d, widest element %.0f" % (sys.argv[5], lay["tableTop"], lay["scrollWidth"], lay["widest"]))
if (lay["innerWidth"], lay["innerHeight"]) != (want_w, want_h):
    print("FAIL: the viewport is %dx%d, not %s" % (lay["innerWidth"], lay["innerHeight"], sys.argv[5]))
    ok = False
if lay["tableTop"] is None or lay["tableTop"] >= want_h:
    print("FAIL: the game table is not in the first screen (top %r)" % lay["tableTop"])
    ok = False
if lay["scrollWidth"] > want_w or lay["widest"] > want_w + 0.5:
    print("FAIL: the page overflows sideways: %r" % lay)
    ok = False
html_tag = re.search(r"<html[^>]*>", dom).group(0)
for a, v in (("data-table-in-first-screen", "yes"), ("data-horizontal-overflow", "no"), ("data-viewport", sys.argv[5])):
    if '%s="%s"' % (a, v) not in html_tag:
        print("FAIL: the page reports %s != %s: %r" % (a, v, html_tag))
        ok = False
# Progress and score: step n/N of the finished game, the probes' verdicts counted.
prog = re.search(r'id="progress"[^>]*', dom)
step = re.search(r'data-step="(\d+)"', prog.group(0)) if prog else None
total = re.search(r'data-total="(\d+)"', prog.group(0)) if prog else None
if not step or int(step.group(1)) != res["steps"] or not total or int(total.group(1)) != res["steps"]:
    print("FAIL: the progress is not step %d/%d: %r" % (res["steps"], res["steps"], prog.group(0) if prog else None))
    ok = False
tag = re.search(r'<span id="score"[^>]*>', dom)
tag = tag.group(0) if tag else ""
passed, scored = re.search(r'data-passed="(\d+)"', tag), re.search(r'data-scored="(\d+)"', tag)
if not passed or not scored or (int(passed.group(1)), int(scored.group(1))) != (res["score"]["passed"], res["score"]["total"]):
    print("FAIL: the score is not %d/%d: %r" % (res["score"]["passed"], res["score"]["total"], tag))
    ok = False
# The events panel shows the game's step events; the memory panel its statistics.
events = re.search(r'<div id="events">(.*?)</div></section>', dom, re.S)
if not events or 'data-ev-type="step"' not in events.group(1):
    print("FAIL: the events panel shows no step event")
    ok = False
if not ok:
    print(dom[:6000])
    sys.exit(1)
print("spectator page at %s shows the game: %d steps, score %d/%d" % (sys.argv[5], res["steps"], res["score"]["passed"], res["score"]["total"]))
PY
done

# The table's mechanics, each shown as its own kind of step: a scripted investigation that finds a clue (shown to
# everyone), a question and its answer, a vote and the verdict (a small inline game: scripted actions, two short
# generations).
cat >"$WORK/table.json" <<'JSON'
{"id": "spectator_table", "title": "The Table", "language": "en", "kind": "mystery",
 "shared": {"public_script": "A pie went missing from the kitchen window.", "rules": "Answer in one short sentence."},
 "characters": [{"id": "gm", "name": "Host", "role": "game_master", "persona": "You are the host."},
                {"id": "cook", "name": "Cook", "role": "npc", "persona": "You are the cook."},
                {"id": "maid", "name": "Maid", "role": "npc", "persona": "You are the maid."}],
 "players": [{"id": "detective", "name": "Detective", "mode": "scripted"}],
 "locations": [{"id": "kitchen", "name": "the kitchen", "description": "Where the pie cooled."}],
 "culprit": "maid", "solution": "The maid took the pie.",
 "clues": [{"id": "crumbs", "title": "Crumbs", "text": "Crumbs on the apron hook.", "target": "kitchen",
            "reveal_to": "all"}],
 "phases": [
  {"id": "intro", "kind": "introduction", "title": "The empty window", "narration": "The pie is gone.",
   "turns": [{"speaker": "cook", "line": "I baked it at dawn."}]},
  {"id": "search", "kind": "investigation", "title": "Search", "round": 1, "turns": [
    {"speaker": "detective", "action": "investigate", "target": "kitchen"},
    {"speaker": "detective", "action": "ask", "to": "maid", "line": "Where were you at noon?"}]},
  {"id": "accuse", "kind": "accusation", "title": "Accusation",
   "turns": [{"speaker": "detective", "action": "vote", "target": "maid"}]},
  {"id": "reveal", "kind": "reveal", "title": "Reveal", "turns": [{"speaker": "cook", "line": "So it was her."}]}],
 "budgets": {"max_tokens_per_turn": 8, "max_tokens_per_probe": 8}}
JSON
PORT=$(free_port)
"$MNEMOS" play "$WORK/table.json" --model "$MODEL" --serve "$PORT" --linger 60 --results "$WORK/table_results.json" \
    >"$WORK/table.out" 2>"$WORK/table.err" &
PLAY_PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
python3 "$CDP" "$CHROMIUM" "$BASE/" 1280 800 "$WORK/table" "$DONE_JS" 90 \
    || { echo "FAIL: the page did not show the whole mechanics game"; cat "$WORK/table.err"; exit 1; }
kill "$PLAY_PID" 2>/dev/null || true
wait "$PLAY_PID" 2>/dev/null || true
PLAY_PID=""
cp "$WORK/table.png" "$SHOTS/spectator-mechanics-1280x800.png" 2>/dev/null || true
python3 - "$WORK/table.html" <<'PY'
import os; exec(os.environ["NEED_PY"])
for kind in ("narration", "investigate", "ask", "answer", "vote", "verdict"):
    need("a step of kind " + kind, 'data-kind="%s"' % kind)
need("the investigation, with the location's name", "investigates the kitchen")
need("the clue it found, shown to everyone", 'data-clue="crumbs"')
need("who was asked", "asks Maid")
need("the vote", "votes for Maid")
need("the verdict", "The maid took the pie.")
if not ok:
    print(dom[:6000])
    sys.exit(1)
print("spectator page shows the mechanics: investigate, ask, answer, vote, verdict and the clue found")
PY
echo "screenshots: $SHOTS/spectator-1280x800.png $SHOTS/spectator-390x844.png $SHOTS/spectator-mechanics-1280x800.png"

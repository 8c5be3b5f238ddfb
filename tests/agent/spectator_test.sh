#!/usr/bin/env bash
# The spectator page (GET /) in headless Chromium against a real `mnemos serve`:
# while the page is open, a session takes a turn; the dumped DOM must show the
# session id, its character and the streamed reply.
# Usage: spectator_test.sh MNEMOS_BINARY MODEL.gguf
set -euo pipefail
MNEMOS=${1:?mnemos binary}
MODEL=${2:?model file}
CHROMIUM=${CHROMIUM:-chromium}

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
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

# The page, with the turn posted while it is open.
"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$WORK/profile" --virtual-time-budget=5000 \
    --dump-dom "$BASE/" >"$WORK/dom.html" 2>"$WORK/chromium.log" &
CHROME_PID=$!
sleep 0.5
curl -sf "$BASE/v1/sessions/$SID/messages" -d '{"content":"Where is the red ball?","max_tokens":24,"temperature":0}' \
    >"$WORK/reply.json"
wait "$CHROME_PID" || { echo "FAIL: chromium failed"; tail -20 "$WORK/chromium.log"; exit 1; }

python3 - "$WORK/dom.html" "$WORK/reply.json" "$SID" <<'PY'
import html, json, sys
dom = open(sys.argv[1], encoding="utf-8").read()
reply = json.load(open(sys.argv[2]))["choices"][0]["message"]["content"]
sid = sys.argv[3]
ok = True
def need(what, text):
    global ok
    if text not in dom:
        print("FAIL: the DOM lacks %s: %r" % (what, text))
        ok = False
need("the session id", 'data-session="%s"' % sid)
need("the character", ">Lily<")
need("the user message", "Where is the red ball?")
piece = reply.strip()[:40]
if piece:
    need("the streamed reply", html.escape(piece, quote=False))
need("memory statistics", 'data-metric="mnemos_sessions_resident"')
if not ok:
    print(dom[:4000])
    sys.exit(1)
print("spectator page OK: session %s, reply %r" % (sid, piece))
PY

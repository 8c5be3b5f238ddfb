#!/usr/bin/env python3
"""Fencing of two live `mnemos serve --cluster` nodes (3 nats-servers, JetStream R=3) over HTTP.

usage: fencing_test.py MNEMOS_BINARY MODEL_GGUF

1. Race: two nodes get a turn for the same new session at the same moment. Exactly one turn succeeds; the other
   request is redirected (307) to the winner or refused with an error that says why; the log holds the winner's
   turn only.
2. A stale owner: node A owns a session and is frozen (SIGSTOP) past the lease TTL; node B takes the session and
   appends a turn; A is thawed (SIGCONT) and at once gets a turn for the session. A must not append: the request
   is redirected to B (A noticed its lease was lost) or refused as fenced (A still believed it owned the session,
   and its append, expecting the sequence it last saw, was rejected by JetStream). The log holds B's turn and
   not A's; the next turn through A reaches B.
Exits 0 when every check passed, 77 when nats-server is not installed (skipped), 1 otherwise.
"""
import os
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import test_setup, Nats, Node, call, events_of, fail, request  # noqa: E402

LEASE_TTL_MS = 1000
RACES = 4
STALE_ROUNDS = 1


def turn_body(text):
    return {"content": text, "max_tokens": 4, "temperature": 0}


def user_texts(node, sid):
    return [e["content"] for e in events_of(node.url, sid) if e.get("role") == "user"]


def error_message(body):
    return body.get("error", {}).get("message", "") if isinstance(body, dict) else ""


def race(a, b, sid):
    """Both nodes get a turn for sid at once; returns {node name: (status, headers, body)}."""
    call(a.url, "POST", "/v1/sessions", {"id": sid, "character": {"name": "Ann", "persona": "You answer briefly."}})
    results, barrier = {}, threading.Barrier(2)

    def go(node):
        barrier.wait()
        results[node.name] = request(node.url, "POST", f"/v1/sessions/{sid}/messages", turn_body(f"from {node.name}"))

    threads = [threading.Thread(target=go, args=(n,)) for n in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def check_race(a, b, sid):
    results = race(a, b, sid)
    winners = [n for n in (a, b) if results[n.name][0] == 200]
    if len(winners) != 1:
        fail(f"{sid}: {len(winners)} nodes served the racing turns: {results}")
    winner = winners[0]
    loser = b if winner is a else a
    status, headers, body = results[loser.name]
    if status == 307:
        if not headers.get("Location", "").startswith(winner.url + f"/v1/sessions/{sid}/messages"):
            fail(f"{sid}: the loser {loser.name} redirected elsewhere than to {winner.name}: {headers}")
        outcome = "redirect"
    elif status in (409, 503) and error_message(body):
        outcome = f"{status} {error_message(body)}"
    else:
        fail(f"{sid}: the loser {loser.name} answered {status} {body}")
    if user_texts(a, sid) != [f"from {winner.name}"]:
        fail(f"{sid}: the log holds {user_texts(a, sid)}, expected only the winner's turn")
    return outcome


def take_over(b, sid, text):
    """B serves a turn for sid once A's lease has expired (a 307 to A means it has not yet)."""
    deadline = time.time() + 30
    while time.time() < deadline:
        status, headers, body = request(b.url, "POST", f"/v1/sessions/{sid}/messages", turn_body(text))
        if status == 200:
            return
        if status not in (307, 503):
            fail(f"{sid}: B's takeover turn: {status} {body}")
        time.sleep(0.2)
    fail(f"{sid}: B did not take the session over after A's lease expired")


def check_stale_owner(a, b, sid):
    call(a.url, "POST", "/v1/sessions", {"id": sid, "character": {"name": "Ann", "persona": "You answer briefly."}})
    status, _, body = request(a.url, "POST", f"/v1/sessions/{sid}/messages", turn_body("first, on A"))
    if status != 200:
        fail(f"{sid}: first turn on A: {status} {body}")
    a.signal(signal.SIGSTOP)
    try:
        time.sleep(LEASE_TTL_MS / 1000 * 1.5)
        take_over(b, sid, "second, on B")
    finally:
        a.signal(signal.SIGCONT)
    status, headers, body = request(a.url, "POST", f"/v1/sessions/{sid}/messages", turn_body("stale, on A"))
    if status == 200:
        fail(f"{sid}: the stale owner A appended a turn after B took the session: {body}")
    if status == 307:
        if not headers.get("Location", "").startswith(b.url):
            fail(f"{sid}: A redirected elsewhere than to B: {headers}")
        outcome = "redirect to B"
    elif status == 409 and "fenced" in error_message(body):
        outcome = "409 " + error_message(body)
    elif status == 503 and error_message(body):  # its reload from the stream failed while it resumed
        outcome = "503 " + error_message(body)
    else:
        fail(f"{sid}: the stale owner A answered {status} {body} (expected 307 to B, 409 fenced or 503)")
    if user_texts(b, sid) != ["first, on A", "second, on B"]:
        fail(f"{sid}: the log holds {user_texts(b, sid)}")
    # A client retrying through A reaches B (A has dropped the session, or its lease renewal has).
    deadline = time.time() + 10
    while True:
        hops = []
        status, body = call(a.url, "POST", f"/v1/sessions/{sid}/messages", turn_body("third, through A"), hops)
        if status == 200:
            break
        if time.time() > deadline:
            fail(f"{sid}: a turn through A after the refusal: {status} {body}")
        time.sleep(0.2)
    if hops[-1][0] != b.url:
        fail(f"{sid}: the turn through A was served by {hops[-1][0]}, not by the owner B")
    if user_texts(b, sid) != ["first, on A", "second, on B", "third, through A"]:
        fail(f"{sid}: the log holds {user_texts(b, sid)}")
    return outcome


def main():
    setup = test_setup(__doc__, "mnemos-fencing-")
    if isinstance(setup, int):
        return setup
    binary, model, _, root = setup
    nats, nodes = Nats(root), []
    try:
        nodes = [Node(binary, model, root, name, nats.urls(), LEASE_TTL_MS) for name in ("a", "b")]
        a, b = nodes
        for k in range(RACES):
            print(f"race{k}: the loser got {check_race(a, b, f'race{k}')}", flush=True)
        for k in range(STALE_ROUNDS):
            print(f"stale{k}: the stale owner got {check_stale_owner(a, b, f'stale{k}')}", flush=True)
        print("PASS: never two writers; every loser redirected or refused", flush=True)
        return 0
    except SystemExit:
        for n in nodes:
            print(f"--- {n.name} log ---\n" + open(n.log_path).read()[-3000:])
        raise
    finally:
        for n in nodes:
            if n.alive():
                n.signal(signal.SIGCONT)
                n.kill(signal.SIGKILL)
        nats.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

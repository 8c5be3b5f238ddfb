#!/usr/bin/env python3
"""API-key grants shared through the cluster's keys bucket (3 nats-servers, 2 `mnemos serve --cluster` nodes).

usage: key_grants_test.py MNEMOS_BINARY MODEL_GGUF

Node B is configured with its own keys only and started first; node A, started next, publishes its keys.
1. Before A runs, A's admin key gets 401 on B; once B has polled the bucket, it is accepted there.
2. A wrong secret is still 401 on B.
3. Grants hold on B: A's admin key creates a session (and owns it by name); A's talk-only key may post a user
   message to it but not a system message (403), and may not create sessions (403).
4. Conflict: both nodes configure a key named "shared" with different secrets; each node keeps its own (A's
   secret is 401 on B, B's works) and B logs the conflict.
Exits 0 when every check passed, 77 when nats-server is not installed (skipped), 1 otherwise.
"""
import json
import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import test_setup, Nats, Node, call, fail, request  # noqa: E402

LEASE_TTL_MS = 1500  # the keys bucket is polled every third of it

A_KEYS = [{"key": "secret-a-boss", "name": "boss", "admin": True},
          {"key": "secret-a-player", "name": "player", "sessions": ["game-*"]},
          {"key": "secret-a-shared", "name": "shared", "admin": True}]
B_KEYS = [{"key": "secret-b-own", "name": "own", "admin": True},
          {"key": "secret-b-shared", "name": "shared", "sessions": ["game-*"]}]


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def config(root, name, keys):
    path = os.path.join(root, f"{name}.json")
    with open(path, "w") as f:
        json.dump({"keys": keys}, f)
    return path


def expect(what, status, body, want):
    if status != want:
        fail(f"{what}: expected {want}, got {status} {body}")


def wait_accepted(node, secret):
    """Polls node until it accepts secret (its poll of the keys bucket); returns the number of 401s seen."""
    refused, deadline = 0, time.time() + 30
    while time.time() < deadline:
        status, _, body = request(node.url, "GET", "/v1/prefixes", headers=bearer(secret))
        if status == 200:
            return refused
        expect("a key published by another node", status, body, 401)
        refused += 1
        time.sleep(0.1)
    fail(f"{node.name} never accepted a key published by another node")


def check_grants(b):
    status, _, body = request(b.url, "GET", "/v1/prefixes", headers=bearer("secret-a-wrong"))
    expect("a wrong secret on B", status, body, 401)
    status, body = call(b.url, "POST", "/v1/sessions",
                        {"id": "game-1", "character": {"name": "Ann", "persona": "You answer briefly."}},
                        headers=bearer("secret-a-boss"))
    expect("A's admin key creating a session on B", status, body, 201)
    status, _, body = request(b.url, "GET", "/v1/sessions", headers=bearer("secret-a-boss"))
    expect("A's admin key listing sessions on B", status, body, 200)
    owners = [s.get("owner") for s in body["data"] if s["id"] == "game-1"]
    if owners != ["boss"]:
        fail(f"game-1 is owned by {owners}, not by the key's name 'boss'")
    player = bearer("secret-a-player")
    status, body = call(b.url, "POST", "/v1/sessions/game-1/messages",
                        {"messages": [{"role": "system", "content": "You obey me."}], "max_tokens": 4}, headers=player)
    expect("A's talk-only key posting a system message on B", status, body, 403)
    status, body = call(b.url, "POST", "/v1/sessions/game-1/messages",
                        {"content": "hello", "max_tokens": 4, "temperature": 0}, headers=player)
    expect("A's talk-only key posting a user message on B", status, body, 200)
    status, body = call(b.url, "POST", "/v1/sessions", {"id": "game-2", "character": {"name": "Bo"}}, headers=player)
    expect("A's talk-only key creating a session on B", status, body, 403)


def check_conflict(b):
    status, _, body = request(b.url, "GET", "/v1/prefixes", headers=bearer("secret-a-shared"))
    expect("A's secret of a name B configures itself, on B", status, body, 401)
    status, body = call(b.url, "POST", "/v1/sessions/game-1/messages",
                        {"content": "hi", "max_tokens": 4, "temperature": 0}, headers=bearer("secret-b-shared"))
    expect("B's own 'shared' key on B", status, body, 200)
    status, _, body = request(b.url, "GET", "/v1/prefixes", headers=bearer("secret-b-own"))
    expect("B's own admin key on B", status, body, 200)
    if "published with another secret or grants" not in open(b.log_path).read():
        fail("B did not log the conflicting grant of 'shared'")


def main():
    setup = test_setup(__doc__, "mnemos-keys-")
    if isinstance(setup, int):
        return setup
    binary, model, _, root = setup
    nats, nodes = Nats(root), []
    try:
        b = Node(binary, model, root, "b", nats.urls(), LEASE_TTL_MS, ["--config", config(root, "b", B_KEYS)])
        nodes.append(b)
        status, _, body = request(b.url, "GET", "/v1/prefixes", headers=bearer("secret-a-boss"))
        expect("A's key on B before A published it", status, body, 401)
        a = Node(binary, model, root, "a", nats.urls(), LEASE_TTL_MS, ["--config", config(root, "a", A_KEYS)])
        nodes.append(a)
        refused = wait_accepted(b, "secret-a-boss")
        print(f"B accepted A's key after {refused} refusals", flush=True)
        check_grants(b)
        check_conflict(b)
        print("PASS: keys published by one node are accepted by another with their grants", flush=True)
        return 0
    except SystemExit:
        for n in nodes:
            print(f"--- {n.name} log ---\n" + open(n.log_path).read()[-3000:])
        raise
    finally:
        for n in nodes:
            if n.alive():
                n.kill(signal.SIGKILL)
        nats.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

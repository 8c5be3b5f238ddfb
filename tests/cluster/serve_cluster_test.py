#!/usr/bin/env python3
"""mnemos serve --cluster end to end: 3 nats-servers (JetStream, R=3) and 3 mnemos nodes on loopback.

usage: serve_cluster_test.py MNEMOS_BINARY MODEL_GGUF

Checks: a session created on one node is served by whichever node leases it; requests to another node
get 307 to the owner; GET /v1/cluster; SIGKILL of the owner mid-conversation: after the lease TTL the
session continues on another node with every acknowledged event present exactly once and in order, and
that node reads KV blocks from the shared tier; SIGKILL of one nats-server: turns continue; SIGTERM of
an owner hands its sessions over at once (leases released); everything restarted (every nats-server, a new
node with an empty store): the session is intact. Exits 0 when every check passed, 77 when
nats-server is not installed (skipped), 1 otherwise.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import (test_setup, DEADLINE_S, Nats, Node, call, fail, reply_text, request, wait_for_port,  # noqa: E402
                             ws_exchange)

LEASE_TTL_MS = 2000


def turn(nodes, sid, text, entry):
    """One turn through `entry`, retried through live nodes while the owner is dead and its lease not yet expired.
    Returns (reply JSON, node URL that served it)."""
    deadline = time.time() + DEADLINE_S
    order = [entry] + [n for n in nodes if n is not entry]
    while time.time() < deadline:
        for n in order:
            if not n.alive():
                continue
            hops = []
            try:
                status, reply = call(n.url, "POST", f"/v1/sessions/{sid}/messages", {"content": text, "max_tokens": 6,
                                                                                     "temperature": 0}, hops)
            except (ConnectionError, OSError):
                continue  # redirected to the dead owner: its lease has not expired yet
            if status == 200:
                return reply, hops[-1][0]
            if status not in (503, 409):
                fail(f"turn {text!r} via {n.name}: {status} {reply}")
        time.sleep(0.2)
    fail(f"turn {text!r} not served within {DEADLINE_S} s")


def owner_of(nodes, sid):
    for n in nodes:
        if n.alive():
            status, c = call(n.url, "GET", "/v1/cluster")
            if status == 200 and sid in c["sessions_owned"]:
                return n
    return None


def check_events(node, sid, sent):
    """Every acknowledged user message once, in order, each followed by its assistant reply."""
    status, evs = call(node.url, "GET", f"/v1/sessions/{sid}/events")
    if status != 200:
        fail(f"events: {status} {evs}")
    users = [e["content"] for e in evs["data"] if e.get("role") == "user"]
    if users != [u for u, _ in sent]:
        fail(f"user events {users} != acknowledged {[u for u, _ in sent]}")
    replies = [e["content"] for e in evs["data"] if e.get("role") == "assistant"]
    if replies != [a for _, a in sent]:
        fail(f"assistant events {replies} != acknowledged {[a for _, a in sent]}")


def metric_value(text, name, node):
    """The value of name{node="node"} in Prometheus text, None when absent."""
    m = re.search(rf'^{name}\{{node="{node}"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


def check_other_routes(nodes, owner, owner_name):
    """What else follows a session to its owner: a chat completion with "session_id", a Responses continuation,
    a WebSocket turn; a prefix put on one node is usable on another; /metrics has this node's cluster series."""
    a, b, c = nodes
    other = a if owner is not a else c
    # Chat completions with session_id: the first request's node takes the session; another node redirects.
    body = {"messages": [{"role": "user", "content": "Hello there"}], "session_id": "chat", "max_tokens": 4}
    status, reply = call(owner.url, "POST", "/v1/chat/completions", body)
    if status != 200:
        fail(f"chat completion with session_id on {owner.name}: {status} {reply}")
    body["messages"] += [{"role": "assistant", "content": reply_text(reply)}, {"role": "user", "content": "More"}]
    status, headers, reply = request(other.url, "POST", "/v1/chat/completions", body)
    if status != 307 or headers.get("Location") != owner.url + "/v1/chat/completions":
        fail(f"chat completion with session_id via {other.name}: expected 307 to {owner.url}: {status} {headers}")
    hops = []
    status, reply = call(other.url, "POST", "/v1/chat/completions", body, hops)
    if status != 200 or hops[-1][0] != owner.url:
        fail(f"chat completion with session_id, redirected: {status} {reply} {hops}")
    # Responses: a continuation (previous_response_id) goes to the node that owns the chain's session.
    first = {"input": "Tell me a story", "store": True, "max_output_tokens": 4}
    status, r1 = call(a.url, "POST", "/v1/responses", first)
    if status != 200:
        fail(f"POST /v1/responses: {status} {r1}")
    status, r2 = call(c.url, "POST", "/v1/responses", dict(first, previous_response_id=r1["id"]))
    if status != 200:
        fail(f"a continuation on {c.name}: {status} {r2}")
    status, headers, r3 = request(b.url, "POST", "/v1/responses", dict(first, previous_response_id=r2["id"]))
    if status != 307 or headers.get("Location") != c.url + "/v1/responses":
        fail(f"a continuation via {b.name} of a chain {c.name} owns: expected 307 to {c.url}: {status} {headers}")
    # WebSocket: a "message" frame for a session owned elsewhere gets an error frame naming the owner's /v1/ws.
    frame = ws_exchange(other.url, {"type": "message", "session_id": "tale", "content": "hi", "max_tokens": 2})
    if frame.get("type") != "error" or frame.get("redirect") != owner.url + "/v1/ws":
        fail(f"a WebSocket turn via {other.name} for a session {owner.name} owns: {frame}")
    # A shared prefix put on one node reaches the others without a restart (within a third of the lease TTL).
    status, reply = call(a.url, "PUT", "/v1/prefixes/rules", {"text": "The rules: every cat wears a hat."})
    if status not in (200, 201):
        fail(f"PUT /v1/prefixes/rules: {status} {reply}")
    deadline = time.time() + DEADLINE_S
    while call(c.url, "GET", "/v1/prefixes/rules")[0] != 200:
        if time.time() > deadline:
            fail("a prefix put on node0 never reached node2")
        time.sleep(0.1)
    status, reply = call(c.url, "POST", "/v1/sessions",
                         {"id": "ruled", "character": {"name": "Cat", "persona": "A cat.", "shared_prefix": "rules"}})
    if status != 201:
        fail(f"a session on node2 with node0's prefix: {status} {reply}")
    # /metrics: the owner's cluster series, labelled with its node id.
    status, text = request(owner.url, "GET", "/metrics")[0::2]
    owned = metric_value(text, "mnemos_cluster_sessions_owned", owner_name)
    appends = metric_value(text, "mnemos_cluster_appends_total", owner_name)
    if status != 200 or owned is None or owned < 1 or appends is None or appends < 2:
        fail(f"/metrics of {owner.name}: sessions owned {owned}, appends {appends}")


def check_refusals(binary, model, root):
    """Bad cluster settings get a clear error, not a crash; a single node has no cluster (GET /v1/cluster: 404)."""
    cases = [(["--cluster", "http://x:1", "--store", f"{root}/r1"], "must start with nats://"),
             (["--cluster", "nats://127.0.0.1:1"], "needs --store"),
             (["--cluster", "nats://127.0.0.1:1", "--lease-ttl-ms", "10"], "--lease-ttl-ms"),
             (["--cluster", "nats://127.0.0.1:1", "--store", f"{root}/r2"], "connecting to the NATS cluster")]
    for args, words in cases:
        r = subprocess.run([binary, "serve", "--model", model, "--port", "0"] + args, capture_output=True, text=True,
                           timeout=DEADLINE_S)
        if r.returncode not in (1, 2) or words not in r.stderr:
            fail(f"serve {args}: exit {r.returncode}, stderr {r.stderr!r} (expected {words!r})")
    log_path = f"{root}/single.log"
    with open(log_path, "w") as log:
        p = subprocess.Popen([binary, "serve", "--model", model, "--port", "0"], stdout=log, stderr=log)
    try:
        deadline, port = time.time() + DEADLINE_S, None
        while port is None and time.time() < deadline and p.poll() is None:
            m = re.search(r"on http://127\.0\.0\.1:(\d+)", open(log_path).read())
            port = int(m.group(1)) if m else None
            time.sleep(0.1)
        if port is None:
            fail("single-node serve did not start: " + open(log_path).read())
        status, reply = call(f"http://127.0.0.1:{port}", "GET", "/v1/cluster")
        if status != 404 or "not in cluster mode" not in json.dumps(reply):
            fail(f"single node GET /v1/cluster: {status} {reply}")
    finally:
        p.kill()
        p.wait()


def main():
    setup = test_setup(__doc__, "mnemos-serve-cluster-")
    if isinstance(setup, int):
        return setup
    binary, model, _, root = setup
    check_refusals(binary, model, root)
    nats, nodes = Nats(root), []
    try:
        nodes = [Node(binary, model, root, f"node{i}", nats.urls()) for i in range(3)]
        a, b, c = nodes
        status, created = call(a.url, "POST", "/v1/sessions",
                               {"id": "tale", "character": {"name": "Teller", "persona": "You tell short stories."}})
        if status != 201:
            fail(f"create: {status} {created}")
        sent = []
        # The first turn through b: nobody holds the lease yet, so b takes it.
        reply, served = turn(nodes, "tale", "Once upon a time there was a cat", b)
        sent.append(("Once upon a time there was a cat", reply_text(reply)))
        if served != b.url:
            fail(f"first turn served by {served}, expected {b.url}")
        # Through c: 307 to b, the owner.
        status, headers, body = request(c.url, "POST", "/v1/sessions/tale/messages", {"content": "x"})
        if status != 307 or not headers.get("Location", "").startswith(b.url + "/v1/sessions/tale/messages"):
            fail(f"expected 307 to {b.url}: {status} {headers} {body}")
        for i in range(4):
            text = f"The cat found a hat number {i}"
            reply, served = turn(nodes, "tale", text, c if i % 2 else a)
            sent.append((text, reply_text(reply)))
            if served != b.url:
                fail(f"turn {i} served by {served}, not by the owner {b.url}")
        check_events(a, "tale", sent)
        check_other_routes(nodes, b, "node1")
        status, info = call(b.url, "GET", "/v1/cluster")
        if status != 200 or info["node"] != "node1" or "tale" not in info["sessions_owned"]:
            fail(f"GET /v1/cluster on the owner: {status} {info}")
        if sorted(n["node"] for n in info["nodes"]) != ["node0", "node1", "node2"]:
            fail(f"GET /v1/cluster nodes: {info['nodes']}")
        # The owner's blocks reach the shared tier (write-behind) before it dies.
        deadline = time.time() + DEADLINE_S
        while call(b.url, "GET", "/v1/cluster")[1]["blocks"]["uploads"] == 0:
            if time.time() > deadline:
                fail("the owner uploaded no KV block to the shared tier")
            time.sleep(0.2)
        print("owner node1 holds the session; killing it", flush=True)
        b.kill()
        t0 = time.time()
        reply, served = turn(nodes, "tale", "Then the cat slept", a)
        sent.append(("Then the cat slept", reply_text(reply)))
        print(f"continued on {served} after {time.time() - t0:.1f} s (lease TTL {LEASE_TTL_MS} ms)", flush=True)
        new_owner = owner_of(nodes, "tale")
        if new_owner is None or new_owner.url != served:
            fail("no live node owns the session after the failover")
        blocks = call(new_owner.url, "GET", "/v1/cluster")[1]["blocks"]
        if blocks["shared_hits"] == 0:
            fail(f"the new owner read no KV block from the shared tier: {blocks}")
        usage = reply.get("usage", {})
        print("failover turn usage:", usage, "blocks:", blocks, flush=True)
        if not usage.get("prompt_tokens_details", {}).get("cached_tokens", 0) > 0:
            fail(f"the failover turn prefilled everything: {usage}")
        check_events(new_owner, "tale", sent)

        print("killing one nats-server", flush=True)
        nats.kill(0)
        for i in range(3):
            text = f"And dreamed of fish {i}"
            reply, _ = turn(nodes, "tale", text, a)
            sent.append((text, reply_text(reply)))
        check_events(new_owner, "tale", sent)

        # SIGTERM of the owner: a graceful drain releases its lease, the other node serves without a TTL wait.
        other = c if new_owner is a else a
        new_owner.kill(signal.SIGTERM)
        status, headers, reply = request(other.url, "POST", "/v1/sessions/tale/messages",
                                         {"content": "The end", "max_tokens": 6, "temperature": 0})
        if status != 200:
            fail(f"after the owner's SIGTERM (drain), {other.name} did not serve at once: {status} {headers} {reply}")
        sent.append(("The end", reply_text(reply)))
        check_events(other, "tale", sent)

        # Restart everything: every nats-server and a fresh node with an empty local store.
        for n in nodes:
            if n.alive():
                n.kill(signal.SIGTERM)
        nats.stop()
        for i in range(len(nats.procs)):
            nats.start(i)
        for client, _ in nats.ports:
            wait_for_port(client)
        fresh = Node(binary, model, root, "node3", nats.urls())
        nodes.append(fresh)
        check_events(fresh, "tale", sent)
        reply, served = turn([fresh], "tale", "Once more", fresh)
        sent.append(("Once more", reply_text(reply)))
        check_events(fresh, "tale", sent)
        print(f"PASS: {len(sent)} turns, every acknowledged event present once and in order", flush=True)
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

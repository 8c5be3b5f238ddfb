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
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

LEASE_TTL_MS = 2000
DEADLINE_S = 60  # bound on any wait (a stuck cluster fails the test, it does not hang it)


def fail(msg):
    print("FAIL:", msg, flush=True)
    raise SystemExit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Nats:
    def __init__(self, root, n=3):
        self.root, self.procs = root, []
        self.ports = [(free_port(), free_port()) for _ in range(n)]
        for i, (client, route) in enumerate(self.ports):
            d = os.path.join(root, f"nats{i}")
            os.makedirs(os.path.join(d, "js"))
            routes = "\n".join(f"    nats-route://127.0.0.1:{r}" for j, (_, r) in enumerate(self.ports) if j != i)
            with open(os.path.join(d, "server.conf"), "w") as f:
                f.write(f"server_name: n{i}\nlisten: 127.0.0.1:{client}\nmax_payload: 65536\n"
                        f'jetstream {{ store_dir: "{d}/js" }}\n'
                        f"cluster {{\n  name: c\n  listen: 127.0.0.1:{route}\n  routes: [\n{routes}\n  ]\n}}\n")
            self.procs.append(None)
            self.start(i)

    def start(self, i):
        d = os.path.join(self.root, f"nats{i}")
        self.procs[i] = subprocess.Popen(["nats-server", "-c", f"{d}/server.conf", "-l", f"{d}/server.log"])

    def kill(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def urls(self):
        return ",".join(f"nats://127.0.0.1:{c}" for c, _ in self.ports)

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.terminate()
                p.wait()


class Node:
    def __init__(self, binary, model, root, name, nats_urls):
        self.name, self.store = name, os.path.join(root, f"store-{name}")
        self.log_path = os.path.join(root, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--model", model, "--store", self.store, "--port", "0", "--threads", "1",
             "--max-tokens", "8", "--cluster", nats_urls, "--node-id", name, "--lease-ttl-ms", str(LEASE_TTL_MS)],
            stdout=self.log, stderr=self.log)
        self.port = None
        deadline = time.time() + DEADLINE_S
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                fail(f"{name} exited: {open(self.log_path).read()}")
            m = re.search(r"on http://127\.0\.0\.1:(\d+)", open(self.log_path).read())
            if m and "cluster node" in open(self.log_path).read():
                self.port = int(m.group(1))
            time.sleep(0.1)
        if self.port is None:
            fail(f"{name} did not start: {open(self.log_path).read()}")
        self.url = f"http://127.0.0.1:{self.port}"

    def alive(self):
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=DEADLINE_S)


def wait_for_port(port):
    deadline = time.time() + DEADLINE_S
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    fail(f"nothing listens on port {port}")


def request(url, method, path, body=None):
    """One HTTP request without following redirects: (status, headers, parsed JSON body or text)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=DEADLINE_S)
    data = json.dumps(body) if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    try:
        return r.status, dict(r.getheaders()), json.loads(text)
    except ValueError:
        return r.status, dict(r.getheaders()), text


def call(url, method, path, body=None, hops=None):
    """Follows 307s (same method and body), as a client of the cluster does. hops collects the URLs visited."""
    for _ in range(4):
        status, headers, reply = request(url, method, path, body)
        if hops is not None:
            hops.append((url, status))
        if status != 307:
            return status, reply
        loc = urllib.parse.urlparse(headers["Location"])
        url, path = f"{loc.scheme}://{loc.netloc}", loc.path + (("?" + loc.query) if loc.query else "")
    fail(f"redirect loop for {method} {path}")


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


def reply_text(reply):
    """The assistant text of a session turn's reply (chat.completion shape)."""
    if "choices" in reply:
        return reply["choices"][0]["message"]["content"]
    return reply["content"]


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
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    binary, model = sys.argv[1], sys.argv[2]
    if not shutil.which("nats-server"):
        print("SKIPPED: nats-server is not installed")
        return 77
    root = tempfile.mkdtemp(prefix="mnemos-serve-cluster-")
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

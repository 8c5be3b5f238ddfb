"""Shared by the cluster tests (serve_cluster_test.py, fencing_test.py, soak_test.py): a nats-server cluster
with JetStream on loopback and `mnemos serve --cluster` nodes as processes, and an HTTP client that follows
307 redirects as a cluster's client does."""
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

DEADLINE_S = 60  # bound on any wait (a stuck cluster fails the test, it does not hang it)


def fail(msg):
    print("FAIL:", msg, flush=True)
    raise SystemExit(1)


def test_setup(doc, prefix, extra_args=0):
    """A cluster test's start: (binary, model, extra arguments, a fresh temporary root), or the exit code to
    return instead: 2 with the usage (doc) for wrong arguments, 77 (CTest's skip) without nats-server."""
    if not 3 <= len(sys.argv) <= 3 + extra_args:
        print(doc)
        return 2
    if not shutil.which("nats-server"):
        print("SKIPPED: nats-server is not installed")
        return 77
    return sys.argv[1], sys.argv[2], sys.argv[3:], tempfile.mkdtemp(prefix=prefix)


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
        for client, _ in self.ports:
            wait_for_port(client)

    def start(self, i):
        d = os.path.join(self.root, f"nats{i}")
        self.procs[i] = subprocess.Popen(["nats-server", "-c", f"{d}/server.conf", "-l", f"{d}/server.log"])

    def alive(self, i):
        return self.procs[i] is not None and self.procs[i].poll() is None

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
    """One `mnemos serve --cluster` process; waits until it serves. extra: more serve flags."""

    def __init__(self, binary, model, root, name, nats_urls, lease_ttl_ms=2000, extra=(), store=None):
        self.name, self.store = name, store or os.path.join(root, f"store-{name}")
        self.log_path = os.path.join(root, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--model", model, "--store", self.store, "--port", "0", "--threads", "1",
             "--max-tokens", "8", "--cluster", nats_urls, "--node-id", name, "--lease-ttl-ms", str(lease_ttl_ms)] +
            list(extra),
            stdout=self.log, stderr=self.log)
        self.port = None
        deadline = time.time() + DEADLINE_S
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                fail(f"{name} exited: {open(self.log_path).read()}")
            text = open(self.log_path).read()
            m = re.search(r"on http://127\.0\.0\.1:(\d+)", text)
            if m and "cluster node" in text:
                self.port = int(m.group(1))
            time.sleep(0.05)
        if self.port is None:
            fail(f"{name} did not start: {open(self.log_path).read()}")
        self.url = f"http://127.0.0.1:{self.port}"

    def alive(self):
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=DEADLINE_S)

    def signal(self, sig):
        self.proc.send_signal(sig)


def wait_for_port(port):
    deadline = time.time() + DEADLINE_S
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    fail(f"nothing listens on port {port}")


def request(url, method, path, body=None, headers=None, timeout=DEADLINE_S):
    """One HTTP request without following redirects: (status, headers, parsed JSON body or text)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    data = json.dumps(body) if body is not None else None
    h = dict(headers or {})
    if data:
        h["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    try:
        return r.status, dict(r.getheaders()), json.loads(text)
    except ValueError:
        return r.status, dict(r.getheaders()), text


def call(url, method, path, body=None, hops=None, headers=None, timeout=DEADLINE_S):
    """Follows 307s (same method and body), as a client of the cluster does. hops collects the URLs visited."""
    for _ in range(4):
        status, h, reply = request(url, method, path, body, headers, timeout)
        if hops is not None:
            hops.append((url, status))
        if status != 307:
            return status, reply
        loc = urllib.parse.urlparse(h["Location"])
        url, path = f"{loc.scheme}://{loc.netloc}", loc.path + (("?" + loc.query) if loc.query else "")
    fail(f"redirect loop for {method} {path}")


def reply_text(reply):
    """The assistant text of a session turn's reply (chat.completion shape)."""
    if "choices" in reply:
        return reply["choices"][0]["message"]["content"]
    return reply["content"]


def events_of(url, sid):
    """The session's event log (following a redirect to its owner)."""
    status, evs = call(url, "GET", f"/v1/sessions/{sid}/events")
    if status != 200:
        fail(f"events of {sid}: {status} {evs}")
    return evs["data"]


def check_acknowledged(events, sent, sid=""):
    """Every acknowledged turn (user text, assistant reply) present exactly once, in order, its reply right after
    it. Unacknowledged attempts (unique texts) may be present or not."""
    users = [e.get("content") for e in events if e.get("role") == "user"]
    last = -1
    for user, answer in sent:
        if users.count(user) != 1:
            fail(f"{sid}: acknowledged user event {user!r} present {users.count(user)} times")
        i = next(k for k, e in enumerate(events) if e.get("role") == "user" and e.get("content") == user)
        if i <= last:
            fail(f"{sid}: acknowledged user event {user!r} out of order")
        if i + 1 >= len(events) or events[i + 1].get("role") != "assistant" or events[i + 1].get("content") != answer:
            fail(f"{sid}: the reply to {user!r} is not {answer!r} right after it: {events[i + 1:i + 2]}")
        last = i + 1


def ws_exchange(url, frame):
    """Opens a WebSocket to url's /v1/ws, sends one JSON text frame and returns the first frame received (parsed)."""
    import base64
    import struct
    u = urllib.parse.urlparse(url)
    s = socket.create_connection((u.hostname, u.port), timeout=DEADLINE_S)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET /v1/ws HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                fail(f"WebSocket upgrade to {url}: connection closed")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            fail(f"WebSocket upgrade to {url}: {head[:200]!r}")
        rest = head.split(b"\r\n\r\n", 1)[1]
        payload = json.dumps(frame).encode()
        mask = os.urandom(4)
        n = len(payload)
        header = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, n)
        s.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

        def read(k):
            nonlocal rest
            while len(rest) < k:
                chunk = s.recv(4096)
                if not chunk:
                    fail(f"WebSocket to {url}: connection closed")
                rest += chunk
            out, rest = rest[:k], rest[k:]
            return out

        b0, b1 = read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", read(8))[0]
        return json.loads(read(n).decode())
    finally:
        s.close()

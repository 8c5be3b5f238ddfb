#!/usr/bin/env python3
"""The SIGKILL soak against a cluster: 3 nats-servers (JetStream, R=3) and 3 `mnemos serve --cluster` nodes on
loopback, clients taking turns in several sessions through random nodes without pause, while random processes
are SIGKILLed at random moments and restarted: mostly mnemos nodes (a new node id on the same local store),
every fifth kill on average a nats-server (one at a time: the quorum holds). At the end, every acknowledged turn
(a 200 reply) is in its session's log exactly once, in order, its reply right after it.

usage: soak_test.py MNEMOS_BINARY MODEL_GGUF [KILLS]
KILLS: the number of kills; default $MNEMOS_CRASH_KILLS, else 3 (CI runs 2). The full soak: 50 or more
(ctest -L soak with -DMNEMOS_SOAK=ON). Exits 0 when every check passed, 77 when nats-server is not
installed (skipped), 1 otherwise.
"""
import os
import random
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_harness import test_setup, Nats, Node, call, check_acknowledged, events_of, fail, reply_text, wait_for_port  # noqa

LEASE_TTL_MS = 1000
SESSIONS = 6
CLIENTS = 3


class Cluster:
    def __init__(self, binary, model, root):
        self.binary, self.model, self.root = binary, model, root
        self.nats = Nats(root)
        self.nodes, self.generation, self.lock = [], 0, threading.Lock()
        try:
            for i in range(3):
                self.nodes.append(self.start_node(i))
        except BaseException:
            self.stop()
            raise

    def start_node(self, slot):
        self.generation += 1
        return Node(self.binary, self.model, self.root, f"n{slot}g{self.generation}", self.nats.urls(), LEASE_TTL_MS,
                    store=os.path.join(self.root, f"store-{slot}"))

    def live_urls(self):
        with self.lock:
            return [n.url for n in self.nodes if n.alive()]

    def kill_node(self, slot):
        self.nodes[slot].kill(signal.SIGKILL)
        fresh = self.start_node(slot)
        with self.lock:
            self.nodes[slot] = fresh

    def kill_nats(self, i):
        self.nats.kill(i)
        time.sleep(random.uniform(0.2, 1.0))
        self.nats.start(i)
        wait_for_port(self.nats.ports[i][0])

    def stop(self):
        for n in self.nodes:
            if n.alive():
                n.kill(signal.SIGKILL)
        self.nats.stop()


def client(cluster, sids, acked, stop, counts):
    """Turns in sids, one at a time, each through a random live node, each attempt with a text of its own."""
    rng = random.Random(hash(tuple(sids)))
    n = 0
    while not stop.is_set():
        sid = rng.choice(sids)
        n += 1
        text = f"{sid} says {n}"
        urls = cluster.live_urls()
        if not urls:
            time.sleep(0.05)
            continue
        try:
            status, reply = call(rng.choice(urls), "POST", f"/v1/sessions/{sid}/messages",
                                 {"content": text, "max_tokens": 4, "temperature": 0}, timeout=15)
        except (ConnectionError, OSError):
            counts["failed"] += 1
            time.sleep(0.05)  # the node (or the owner redirected to) died: try again
            continue
        if status == 200:
            acked[sid].append((text, reply_text(reply)))
        else:
            counts["refused"] += 1
            if status not in (409, 503):
                counts["other"].append((status, reply))
            time.sleep(0.05)


def main():
    setup = test_setup(__doc__, "mnemos-cluster-soak-", extra_args=1)
    if isinstance(setup, int):
        return setup
    binary, model, extra, root = setup
    kills = int(extra[0]) if extra else int(os.environ.get("MNEMOS_CRASH_KILLS", "3"))
    t0 = time.time()
    stop, threads, cluster = threading.Event(), [], None
    try:
        cluster = Cluster(binary, model, root)
        sids = [f"soak{i}" for i in range(SESSIONS)]
        for sid in sids:
            status, body = call(cluster.nodes[0].url, "POST", "/v1/sessions",
                                {"id": sid, "character": {"name": "Kit", "persona": "You answer briefly."}})
            if status != 201:
                fail(f"create {sid}: {status} {body}")
        acked = {sid: [] for sid in sids}
        counts = {"failed": 0, "refused": 0, "other": []}
        for c in range(CLIENTS):
            t = threading.Thread(target=client, args=(cluster, sids[c::CLIENTS], acked, stop, counts), daemon=True)
            t.start()
            threads.append(t)
        node_kills = nats_kills = 0
        for k in range(kills):
            time.sleep(random.uniform(0.2, 0.8))
            if random.random() < 0.2:
                cluster.kill_nats(random.randrange(3))
                nats_kills += 1
            else:
                cluster.kill_node(random.randrange(3))
                node_kills += 1
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        if counts["other"]:
            fail(f"turns refused with an unexpected status: {counts['other'][:3]}")
        n_acked = sum(len(v) for v in acked.values())
        if n_acked < kills:
            fail(f"only {n_acked} turns acknowledged during {kills} kills: the cluster made no progress")
        url = cluster.live_urls()[0]
        for sid in sids:
            check_acknowledged(events_of(url, sid), acked[sid], sid)
        print(f"PASS: {kills} kills ({node_kills} mnemos nodes, {nats_kills} nats-servers) in {time.time() - t0:.1f} s;"
              f" {n_acked} acknowledged turns ({2 * n_acked} events) in {SESSIONS} sessions, every one present once"
              f" and in order; {counts['failed']} attempts cut by a kill, {counts['refused']} refused (409/503)",
              flush=True)
        return 0
    except SystemExit:
        for n in cluster.nodes if cluster else []:
            print(f"--- {n.name} log ---\n" + open(n.log_path).read()[-3000:])
        raise
    finally:
        stop.set()
        if cluster:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

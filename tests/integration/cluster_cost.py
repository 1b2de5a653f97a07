"""What the cluster costs (docs/scaling.md, "Measured"): one room, its
members on one node, then the same room split over two nodes through a
real Redis; senders say RATE lines a second in all for SECONDS. Prints
deliveries per server CPU-second (every node's CPU plus Redis's), Redis's
CPU per line, and the latency from said to received (p50, p99) as the
clients see it. Not a test: run it by hand, on an idle machine:

    PERCORED=build/percored python3 tests/integration/cluster_cost.py
"""

import os
import select
import sys
import time

from cluster import Redis
from percored import Percored

MEMBERS = int(os.environ.get("MEMBERS", "20"))
SENDERS = int(os.environ.get("SENDERS", "10"))
RATE = int(os.environ.get("RATE", "1000"))
SECONDS = float(os.environ.get("SECONDS", "5"))


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(redis, name):
    config = "[listener chat]\nprotocol = chat\nlisten = 127.0.0.1:%d\n" \
             "flood_rate = 0\nsendq = 64M\n"
    from percored import free_port
    port = free_port()
    if redis:
        config += f"[cluster]\nredis = {redis.address}\nnode = {name}\n"
    n = Percored(listeners=(), workers=2, config=config % port)
    n.ports["chat"] = port
    return n.__enter__()


def run(nodes, procs):
    socks = []
    for i in range(MEMBERS):
        s = nodes[i % len(nodes)].connect("chat")
        s.sendall(f"/nick m{i}\n/join bench\n".encode())
        socks.append(s)
    buf = {s: b"" for s in socks}
    joined = set()
    deadline = time.time() + 20
    while len(joined) < MEMBERS and time.time() < deadline:
        for s in select.select(socks, [], [], 0.1)[0]:
            buf[s] += s.recv(1 << 16)
            if b"OK join bench" in buf[s]:
                joined.add(s)
    time.sleep(0.5)
    for s in socks:
        s.setblocking(False)
        buf[s] = b""
    c0 = sum(cpu(p) for p in procs)
    lat, delivered, sent = [], 0, 0
    t0 = time.time()
    interval = 1.0 / RATE
    nxt = t0
    while time.time() - t0 < SECONDS or (delivered < sent * MEMBERS and
                                         time.time() - t0 < SECONDS + 5):
        now = time.time()
        while now >= nxt and now - t0 < SECONDS:
            s = socks[sent % SENDERS]
            s.setblocking(True)
            s.sendall(f"L {sent} {time.time():.6f}\n".encode())
            s.setblocking(False)
            sent += 1
            nxt += interval
        for s in select.select(socks, [], [], 0.001)[0]:
            try:
                buf[s] += s.recv(1 << 20)
            except BlockingIOError:
                continue
            *lines, buf[s] = buf[s].split(b"\n")
            t = time.time()
            for l in lines:
                if b": L " in l:
                    delivered += 1
                    lat.append(t - float(l.rsplit(b" ", 1)[1]))
    c1 = sum(cpu(p) for p in procs)
    for s in socks:
        s.close()
    lat.sort()
    q = lambda f: lat[int(f * (len(lat) - 1))] * 1000 if lat else 0
    return sent, delivered, c1 - c0, q(0.5), q(0.99)


def main():
    one = start(None, "solo")
    r = run([one], [one.proc.pid])
    one.stop()
    print(f"one node:       sent {r[0]}, delivered {r[1]}, server CPU "
          f"{r[2]:.2f} s, {r[1] / max(r[2], 1e-9):,.0f} deliveries/CPU-s, "
          f"p50 {r[3]:.2f} ms, p99 {r[4]:.2f} ms")
    redis = Redis().start()
    a, b = start(redis, "a"), start(redis, "b")
    r0 = cpu(redis.proc.pid)
    s = run([a, b], [a.proc.pid, b.proc.pid, redis.proc.pid])
    rc = cpu(redis.proc.pid) - r0
    a.stop()
    b.stop()
    redis.stop()
    print(f"split, 2 nodes: sent {s[0]}, delivered {s[1]}, server CPU "
          f"{s[2]:.2f} s (Redis {rc:.2f} s), "
          f"{s[1] / max(s[2], 1e-9):,.0f} deliveries/CPU-s, "
          f"p50 {s[3]:.2f} ms, p99 {s[4]:.2f} ms, Redis "
          f"{rc / max(s[0], 1) * 1e6:.1f} us a line")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""bench/run's cluster case: one chat room on one percored node, then the
same room split over two nodes that share one real redis-server ([cluster],
docs/scaling.md), members and senders on both (percore-bench gives its
members the nodes' addresses in turn). Reports deliveries per server
CPU-second (every node's CPU plus Redis's), Redis's CPU per line and the
latency at a fixed offered load. Called by bench/run; the page section is
bench/page_cluster.py's.

Pinning on a 2-CPU machine: the nodes on the server CPUs, Redis with
percore-bench on the client CPUs (Redis is the cluster's shared service,
not part of a node)."""

import time

SENDERS = 4
SIZES = (1000, 20)          # members: the chat case's room, and a small one
RATES = {1000: (100, 1000), 20: (1000,)}
BATCH_DELAYS = ("0.5ms", "1ms", "2ms")  # tried on the split room, 1000/s


def redis_argv(port):
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--protected-mode", "no",
            # Measure the cluster, not Redis dropping a slow subscriber.
            "--client-output-buffer-limit", "pubsub 0 0 0"]


def node_argv(suite, port, redis_port, name, batch_delay=None):
    extra = list(suite.chat_args)
    if redis_port:
        extra += ["--set", f"cluster.redis=127.0.0.1:{redis_port}",
                  "--set", f"cluster.node={name}"]
    if batch_delay:
        extra += ["--set", f"cluster.batch_delay={batch_delay}"]
    return suite.percored_argv(port, *extra, proto="chat")


def measure(suite, nodes, redis, args):
    """percore-bench chat over every node's port; server CPU summed over
    the nodes and Redis (Redis last in cpu_s_each)."""
    import json
    import subprocess
    argv = ["taskset", "-c", suite.client_cpus, suite.bench, "chat",
            "--json", "--quiet", "-t", str(suite.threads), "--cpus",
            suite.client_cpus]
    for n in nodes:
        argv += ["-a", f"127.0.0.1:{n.port}"]
    for p in nodes + ([redis] if redis else []):
        argv += ["--server-pid", str(p.pid)]
    argv += [str(a) for a in args]
    if suite.o.verbose:
        print("   ", " ".join(argv[3:]), flush=True)
    try:
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=suite.d * 3 + 120)
        res = json.loads(p.stdout)
        res["exit"] = p.returncode
    except subprocess.TimeoutExpired:
        return {"error": "percore-bench timed out"}
    except ValueError:
        return {"error": (p.stderr or p.stdout).strip()[-500:] or
                f"percore-bench exited {p.returncode}"}
    for s in nodes + ([redis] if redis else []):
        if not s.alive():
            res["error"] = f"{s.name} died: " + s.output()[-300:]
    return res


def one_run(suite, setup, members, args, batch_delay=None):
    """setup: "one node" (no cluster), "one node, Redis" (a cluster of
    one) or "split" (two nodes). Returns the result record."""
    started = []
    try:
        redis = None
        if setup != "one node":
            redis = suite.start("redis-server", redis_argv,
                                cpus=suite.client_cpus)
            started.append(redis)
        nodes = []
        for i in range(2 if setup == "split" else 1):
            nodes.append(suite.start(f"node {i}", lambda p, i=i: node_argv(
                suite, p, redis and redis.port, f"n{i}", batch_delay)))
            started.append(nodes[-1])
        time.sleep(0.3)  # the Redis links come up
        return measure(suite, nodes, redis,
                       ["--members", members, "--senders", SENDERS, *args,
                        *suite.timed()])
    except RuntimeError as e:
        return {"error": str(e)[-300:]}
    finally:
        for s in reversed(started):
            s.stop()


def case_cluster(suite):
    if not suite.need("redis-server", "redis-server"):
        return {"rows": [], "error": "redis-server is not installed"}
    rows = []

    def run(setup, members, kind, args, **extra):
        label = (f"closed loop, {SENDERS} senders x {suite.o.chat_pipeline} "
                 "in flight" if kind == "saturation"
                 else f"open loop, {extra['rate']} lines/s")
        bd = extra.get("batch_delay")
        suite.say(f"cluster {members} members, {label}: {setup}"
                  + (f", batch_delay {bd}" if bd else ""))
        rows.append({"setup": setup, "members": members, "kind": kind,
                     "workload": label, **extra,
                     "result": one_run(suite, setup, members, args, bd)})

    setups = ("one node", "one node, Redis", "split")
    for members in SIZES:
        for setup in setups:
            run(setup, members, "saturation", ["-p", suite.o.chat_pipeline])
        for rate in RATES[members]:
            for setup in setups:
                run(setup, members, "load", ["-r", rate], rate=rate)
    for delay in BATCH_DELAYS:
        for members in SIZES:
            run("split", members, "load", ["-r", 1000], rate=1000,
                batch_delay=delay)
    return {"rows": rows, "senders": SENDERS, "workers": suite.workers,
            "server_cpus": suite.server_cpus,
            "client_cpus": suite.client_cpus}

"""The cluster section of docs/benchmarks.md and its lines of the Targets
table, from bench/run's cluster case (bench/clusterbench.py). Called by
bench/page.py; kept apart so that page.py stays one job per file."""

import page

TARGET_SPLIT_RATIO = 0.8     # split room's deliveries per CPU-s / one node's
TARGET_ADDED_P99_US = 2000   # at 1,000 lines/s
TARGET_REDIS_US_PER_LINE = 10.0
RATE = 1000


def lines_measured(r):
    per = r.get("chat", {}).get("per_line") or 1
    return r["messages"] / per


def redis_cpu(x):
    """Redis's CPU-seconds in the window (its pid is the last), or None."""
    r = x["result"]
    if x["setup"] == "one node" or not page.ok(r):
        return None
    each = r.get("server", {}).get("cpu_s_each") or []
    return each[-1] if len(each) >= 2 else None


def redis_us_per_line(x):
    cpu, r = redis_cpu(x), x["result"]
    if cpu is None or not r["messages"]:
        return None
    return cpu * 1e6 / lines_measured(r)


def good(x):
    r = x["result"]
    return page.ok(r) and not r["errors"]["total"] and not r.get("exit")


def find(rows, setup, members, kind, rate=None, batch_delay=None):
    return next((x for x in rows if x["setup"] == setup and
                 x["members"] == members and x["kind"] == kind and
                 x.get("rate") == rate and
                 x.get("batch_delay") == batch_delay and good(x)), None)


def p99(x):
    return x["result"]["latency_us"]["p99"]


def targets(case):
    rows, lines = case["rows"], []
    for members in sorted({x["members"] for x in rows}, reverse=True):
        one = find(rows, "one node", members, "saturation")
        split = find(rows, "split", members, "saturation")
        if one and split:
            a, b = (page.per_cpu_s(split["result"]),
                    page.per_cpu_s(one["result"]))
            lines.append([
                f"cluster: {members}-member room split over 2 nodes + Redis, "
                "deliveries per server CPU-second (nodes + Redis), "
                "saturation", f"≥ {TARGET_SPLIT_RATIO:.1f}× one node",
                f"{a / b:.2f}× ({page.num(a)} vs {page.num(b)})",
                page.verdict(a / b >= TARGET_SPLIT_RATIO)])
        one = find(rows, "one node", members, "load", RATE)
        split = find(rows, "split", members, "load", RATE)
        if one and split:
            added = p99(split) - p99(one)
            lines.append([
                f"cluster: {members}-member room split, added p99 at "
                f"{RATE:,} lines/s", f"≤ {page.us(TARGET_ADDED_P99_US)}",
                f"{page.us(added) if added >= 0 else '-' + page.us(-added)} "
                f"({page.us(p99(split))} vs {page.us(p99(one))})",
                page.verdict(added <= TARGET_ADDED_P99_US)])
        per = [(x["workload"], redis_us_per_line(x)) for x in rows
               if x["setup"] == "split" and x["members"] == members and
               not x.get("batch_delay") and good(x)]
        per = [(w, v) for w, v in per if v is not None]
        if per:
            worst = max(per, key=lambda p: p[1])
            lines.append([
                f"cluster: Redis CPU per line, {members}-member room split",
                f"≤ {TARGET_REDIS_US_PER_LINE:.0f} µs",
                "; ".join(f"{page.us(v)} ({w})" for w, v in per),
                page.verdict(worst[1] <= TARGET_REDIS_US_PER_LINE)])
    return lines


HEAD = ["members", "setup", "workload", "deliveries/s", "p50", "p99",
        "p99.9", "server CPU", "deliveries per CPU-second", "nodes CPU",
        "Redis CPU", "Redis per line", "bench CPU", "errors"]


def row(x):
    r = x["result"]
    setup = x["setup"] + (f", batch_delay {x['batch_delay']}"
                          if x.get("batch_delay") else "")
    if not page.ok(r):
        return [x["members"], setup, x["workload"]] + ["-"] * 10 + \
            [page.errors(r)]
    cpu = page.server(r, "cpu_s") or 0
    rc = redis_cpu(x)
    w = r["elapsed_s"] or 1
    nodes = cpu - (rc or 0)
    return [x["members"], setup, x["workload"],
            page.num(r["messages_per_s"]), page.lat(r, "p50"),
            page.lat(r, "p99"), page.lat(r, "p99_9"),
            f"{100 * cpu / w:.0f} %", page.num(page.per_cpu_s(r)),
            f"{100 * nodes / w:.0f} %",
            "-" if rc is None else f"{100 * rc / w:.0f} %",
            page.us(redis_us_per_line(x)), page.bench_cpu(r), page.errors(r)]


def section(case):
    rows = case.get("rows", [])
    if not rows:
        return ("## Cluster: one room over two nodes and Redis\n\n"
                f"Not run: {case.get('error', 'no rows')}.\n")
    main = [x for x in rows if not x.get("batch_delay")]
    delays = [x for x in rows if x.get("batch_delay") or
              (x["setup"] == "split" and x["kind"] == "load" and
               x.get("rate") == RATE)]
    order = {"one node": 0, "one node, Redis": 1, "split": 2}
    key = (lambda x: (-x["members"], x["kind"] != "saturation",
                      x.get("rate", 0), order[x["setup"]],
                      x.get("batch_delay") or ""))
    return (
        "## Cluster: one room over two nodes and Redis\n\n"
        "percore-bench's chat workload (64-byte lines, "
        f"{case['senders']} senders, every line checked for order at every "
        "member) against one room: on **one node** (no `[cluster]`), on "
        "**one node, Redis** (a cluster of one node: every line goes "
        "through Redis and back), and **split** over two nodes sharing one "
        "redis-server (memory only: `--save '' --appendonly no`), the "
        "members alternating between the nodes, two senders on each. Each "
        f"node has {case['workers']} worker; the nodes run on CPU "
        f"{case['server_cpus']}, redis-server and percore-bench on CPU "
        f"{case['client_cpus']}. Server CPU is every node's plus Redis's "
        "(from /proc, at the edges of the measured window), so deliveries "
        "per CPU-second is what the whole cluster spends; Redis per line "
        "is Redis's CPU divided by the lines said in the window.\n\n" +
        page.table(HEAD, [row(x) for x in sorted(main, key=key)]) +
        "\n### Batching delay\n\n"
        "`[cluster] batch_delay` lets a room's lines wait that long at their "
        "home so that more of them share one call to Redis (one script, "
        "one published message); 0 (the default) batches only the lines of "
        f"one loop pass. The split room at {RATE:,} lines/s:\n\n" +
        page.table(HEAD, [row(x) for x in sorted(delays, key=key)]))

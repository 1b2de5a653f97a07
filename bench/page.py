"""Turns bench/run's results into docs/benchmarks.md and docs/img/*.png.

Every number on the page comes from the results JSON; nothing is typed in
by hand, so the page can always be regenerated (bench/run --from-json)."""

import os
import shutil
import statistics
import subprocess
import tempfile

TARGET_CPU_RATIO = 1.05
TARGET_IDLE_BYTES = 256


# ---- formatting --------------------------------------------------------------

def num(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M"
    if v >= 1e4:
        return f"{v / 1e3:.0f} k"
    if v >= 1e3:
        return f"{v / 1e3:.1f} k"
    return f"{v:.0f}"


def us(v):
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v / 1000:.2f} ms"
    return f"{v:.0f} µs" if v >= 100 else f"{v:.1f} µs"


def size(v):
    if v is None:
        return "-"
    if v >= 10 << 20:
        return f"{v / 1048576:.0f} MiB"
    if v >= 1 << 20:
        return f"{v / 1048576:.1f} MiB"
    if v >= 10240:
        return f"{v / 1024:.1f} KiB"
    return f"{v:.0f} B"


def ok(r):
    return r and "error" not in r and "messages" in r


def errors(r):
    """The errors cell: 0, the counts by kind, or what went wrong."""
    if not r:
        return "not run"
    if "error" in r and "errors" not in r:
        return "failed: " + r["error"].replace("\n", " ").replace("|", "/")[:120]
    e = r.get("errors", {})
    parts = [f"{k} {v}" for k, v in e.items() if k != "total" and v]
    text = ", ".join(parts) if parts else "0"
    if "error" in r:
        text += "; " + r["error"].replace("\n", " ").replace("|", "/")[:100]
    return text


def lat(r, key):
    return us(r["latency_us"][key]) if ok(r) and r["latency_us"]["count"] else "-"


def server(r, key):
    return r.get("server", {}).get(key) if ok(r) else None


def cpu_pct(r):
    v = server(r, "cpu_util")
    return "-" if v is None else f"{100 * v:.0f} %"


def bench_cpu(r):
    v = r.get("client", {}).get("cpu_util") if ok(r) else None
    if v is None:
        return "-"
    return f"{100 * v / r['config']['threads']:.0f} %"


def cpu_per(r):
    v = server(r, "cpu_us_per_message")
    return "-" if v is None else f"{v:.2f} µs"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def verdict(met):
    return "met" if met else "**missed**"


# ---- plots -------------------------------------------------------------------

def gnuplot(script, data, out):
    """Runs a gnuplot script with its data files; False if gnuplot is
    missing or fails (the page then says so)."""
    if shutil.which("gnuplot") is None:
        return False
    with tempfile.TemporaryDirectory() as d:
        for name, rows in data.items():
            with open(os.path.join(d, name), "w") as f:
                for row in rows:
                    f.write("\t".join(f'"{c}"' if isinstance(c, str) else
                                      str(c) for c in row) + "\n")
        head = ('set terminal pngcairo size 1000,480 font "sans,10" '
                'noenhanced\n'
                f'set output "{out}"\nset datafile separator "\\t"\n'
                'set grid ytics\nset key top right\n')
        r = subprocess.run(["gnuplot"], input=head + script, text=True,
                           cwd=d, capture_output=True)
        if r.returncode != 0:
            print("page: gnuplot failed:", r.stderr[-500:])
        return r.returncode == 0


def plot_echo(rows, img):
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    servers = list(dict.fromkeys(r["server"] for r in rows))
    data = []
    for s in servers:
        line = [s]
        for w in workloads:
            r = next((x["result"] for x in rows
                      if x["server"] == s and x["workload"] == w), None)
            line.append(r["messages_per_s"] / 1000 if ok(r) else 0)
        data.append(line)
    cols = " ".join(f"'echo.dat' using {i + 2}:xtic(1) title \"{w}\","
                    for i, w in enumerate(workloads)).rstrip(",")
    script = ('set style data histogram\nset style histogram cluster gap 1\n'
              'set style fill solid 0.8 border -1\nset boxwidth 0.9\n'
              'set ylabel "thousand messages per second"\n'
              'set title "echo, closed loop, 100 connections"\n'
              'set yrange [0:*]\nset xtics nomirror\n'
              f'plot {cols}\n')
    return gnuplot(script, {"echo.dat": data},
                   os.path.join(img, "echo-throughput.png"))


def plot_idle(rows, img):
    data = [[r["server"], max(server(r["result"], "rss_bytes_per_connection")
                              or 0, 1)]
            for r in rows if ok(r["result"])]
    if not data:
        return False
    script = ('set style data histogram\nset style fill solid 0.8 border -1\n'
              'set boxwidth 0.7\nset logscale y\nset yrange [1:*]\n'
              'set ylabel "bytes of server memory per connection (log)"\n'
              'set title "idle connections: resident memory growth per '
              'connection"\nunset key\n'
              f'set arrow from graph 0, first {TARGET_IDLE_BYTES} to graph 1, '
              f'first {TARGET_IDLE_BYTES} nohead dt 2 lc rgb "red"\n'
              "plot 'idle.dat' using 2:xtic(1)\n")
    return gnuplot(script, {"idle.dat": data},
                   os.path.join(img, "idle-memory.png"))


def plot_backends(rows, img):
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    files, plots = {}, []
    for b in backends:
        pts = [[r["idle"], r["result"]["messages_per_s"] / 1000]
               for r in rows if r["backend"] == b and ok(r["result"])
               and not r["result"]["errors"]["total"]]
        if pts:
            files[f"{b}.dat"] = pts
            plots.append(f"'{b}.dat' using 1:2 with linespoints lw 2 "
                         f"title \"{b}\"")
    if not plots:
        return False
    script = ('set xlabel "idle connections (besides 1,000 active)"\n'
              'set ylabel "thousand messages per second"\n'
              'set title "percored backends: echo throughput of 1,000 active '
              'connections"\nset yrange [0:*]\n'
              "plot " + ", ".join(plots) + "\n")
    return gnuplot(script, files, os.path.join(img, "backends.png"))


# ---- sections ----------------------------------------------------------------

def per_cpu_s(r):
    """Deliveries per server CPU-second, or None."""
    cpu = server(r, "cpu_s")
    return r["messages"] / cpu if ok(r) and cpu else None


def efficiency_summary(rows):
    """{workload: {server: (median cpu/msg, median rate, median p99)}}."""
    out = {}
    for w in dict.fromkeys(r["workload"] for r in rows):
        out[w] = {}
        for s in dict.fromkeys(r["server"] for r in rows):
            rs = [r["result"] for r in rows if r["workload"] == w and
                  r["server"] == s and ok(r["result"]) and
                  server(r["result"], "cpu_us_per_message")]
            if rs:
                out[w][s] = (
                    statistics.median(server(x, "cpu_us_per_message")
                                      for x in rs),
                    statistics.median(x["messages_per_s"] for x in rs),
                    statistics.median(x["latency_us"]["p99"] for x in rs),
                    [server(x, "cpu_us_per_message") for x in rs],
                    sum(x["errors"]["total"] for x in rs))
    return out


def targets(res):
    lines = []
    c = res["cases"]
    if "efficiency" in c:
        eff = efficiency_summary(c["efficiency"])
        for w, by in eff.items():
            a, b = by.get("percored"), by.get("epoll (C)")
            if a and b:
                ratio = a[0] / b[0]
                lines.append([
                    f"echo server CPU per message, {w}, at {num(res['rate'])} "
                    f"msg/s offered", f"≤ {TARGET_CPU_RATIO:.2f}× plain epoll",
                    f"{ratio:.2f}× ({a[0]:.2f} vs {b[0]:.2f} µs, median of "
                    f"{len(a[3])})", verdict(ratio <= TARGET_CPU_RATIO)])
    if "idle" in c:
        r = next((x["result"] for x in c["idle"]
                  if x["server"] == "percored"), None)
        if ok(r):
            v = server(r, "rss_bytes_per_connection")
            lines.append([f"user memory per idle echo connection "
                          f"({num(r['connections']['open_at_end'])} held)",
                          f"≤ {TARGET_IDLE_BYTES} B", f"{v:.0f} B",
                          verdict(v <= TARGET_IDLE_BYTES)])
    if "chat" in c:
        import page_chat
        lines += page_chat.chat_targets(c["chat"])
    if "irc" in c:
        import ircbench
        lines += ircbench.targets(c["irc"])
    if "tls" in c:
        import page_tls
        lines += page_tls.targets(c["tls"])
    if "web" in c:
        import page_web
        lines += page_web.targets(c["web"])
    if not lines:
        return ""
    return ("## Targets\n\nReported, not asserted. Each line is computed "
            "from the tables below.\n\n" +
            table(["target", "goal", "measured", ""], lines))


def section_echo(rows, plotted):
    out = ["## Echo: throughput and latency (closed loop)\n",
           "100 connections, each with its pipeline full all the time: the "
           "fastest each server goes on one CPU. Latency is from sending a "
           "message to the last byte of its echo. On a machine this small a "
           "closed loop also measures how fast the load generator keeps up, "
           "and it flatters slow servers' CPU per message (they do more work "
           "per wake-up); the efficiency table below compares CPU at the "
           "same offered load instead. \"bench CPU\" is the load "
           "generator's own use of its CPU: near 100 % it, not the server, "
           "was the limit.\n"]
    if plotted:
        out.append("![echo throughput](img/echo-throughput.png)\n")
    for w in dict.fromkeys(r["workload"] for r in rows):
        out.append(f"### {w}\n")
        out.append(table(
            ["server", "msg/s", "MB/s", "p50", "p99", "p99.9", "max",
             "server CPU", "CPU / msg", "bench CPU", "errors"],
            [[r["server"],
              num(r["result"]["messages_per_s"]) if ok(r["result"]) else "-",
              f"{r['result']['mb_per_s']:.1f}" if ok(r["result"]) else "-",
              lat(r["result"], "p50"), lat(r["result"], "p99"),
              lat(r["result"], "p99_9"), lat(r["result"], "max"),
              cpu_pct(r["result"]), cpu_per(r["result"]),
              bench_cpu(r["result"]), errors(r["result"])]
             for r in rows if r["workload"] == w]))
    return "\n".join(out)


def section_efficiency(res):
    rows = res["cases"]["efficiency"]
    eff = efficiency_summary(rows)
    out = [f"## Echo efficiency: server CPU per message at a fixed load\n",
           f"Open loop: {num(res['rate'])} messages/s offered over 100 "
           "connections whatever the server does, latency measured from "
           "each message's intended send time (no coordinated omission). "
           f"percored and the plain epoll server alternate, {res['rounds']} "
           f"round{'s' if res['rounds'] > 1 else ''} each (A B A B ...), a "
           "fresh server every round; the "
           "median is compared. The server's CPU time comes from "
           "/proc/PID/stat at the window's edges.\n"]
    for w, by in eff.items():
        out.append(f"### {w}\n")
        out.append(table(
            ["server", "CPU / msg (median)", "rounds", "achieved msg/s",
             "p99 (median)", "errors"],
            [[s, f"{v[0]:.3f} µs", ", ".join(f"{x:.3f}" for x in v[3]),
              num(v[1]), us(v[2]), v[4]] for s, v in by.items()]))
        a, b = by.get("percored"), by.get("epoll (C)")
        if a and b:
            out.append(f"percored / epoll: **{a[0] / b[0]:.2f}×**.\n")
    return "\n".join(out)


def section_churn(rows):
    return ("## Connection churn\n\n16 connections at a time, each: connect, "
            "one 64-byte echo, close (the client closes first). Latency is "
            "from connect() to the last byte of the echo.\n\n" +
            table(["server", "connections/s", "p50", "p99", "p99.9",
                   "server CPU", "CPU / connection", "errors"],
                  [[r["server"],
                    num(r["result"]["messages_per_s"]) if ok(r["result"])
                    else "-",
                    lat(r["result"], "p50"), lat(r["result"], "p99"),
                    lat(r["result"], "p99_9"), cpu_pct(r["result"]),
                    cpu_per(r["result"]), errors(r["result"])]
                   for r in rows]))


def section_idle(rows, plotted):
    out = ["## Idle connections: memory per connection\n",
           "A fresh server; percore-bench opens the connections, exchanges "
           "one 64-byte message on each, and the server's resident memory "
           "growth (VmRSS after minus before) is divided by the connections "
           "held. Kernel socket buffers are not in RSS: this is the "
           "server's own (user) memory. RSS moves in 4 KiB pages, so small "
           "values are ± a few bytes per connection.\n"]
    if plotted:
        out.append("![idle memory](img/idle-memory.png)\n")
    out.append(table(
        ["server", "connections held", "RSS before", "RSS with them",
         "per connection", "set-up time", "errors"],
        [[r["server"],
          num(r["result"]["connections"]["open_at_end"]) if ok(r["result"])
          else "-",
          size((server(r["result"], "rss_kib_before") or 0) * 1024)
          if ok(r["result"]) else "-",
          size((server(r["result"], "rss_kib_start") or 0) * 1024)
          if ok(r["result"]) else "-",
          size(server(r["result"], "rss_bytes_per_connection")),
          f"{r['result']['setup_s']:.1f} s" if ok(r["result"]) else "-",
          errors(r["result"])] for r in rows]))
    return "\n".join(out)


def section_backends(rows, plotted):
    out = ["## Event backends under idle load\n",
           "percored with each libev backend: 1,000 connections run the "
           "64-byte echo (closed loop) while another percore-bench holds "
           "0 to 15,000 idle connections open (each process stays under "
           "this machine's 20,000 open-file limit). select() and poll() "
           "scan every connection on every wake-up; epoll and io_uring "
           "only the active ones. select() cannot watch a file descriptor "
           "of 1024 or more: where that fails, the table says how.\n"]
    if plotted:
        out.append("![backends](img/backends.png)\n")
    levels = sorted(dict.fromkeys(r["idle"] for r in rows))
    body = []
    for b in dict.fromkeys(r["backend"] for r in rows):
        line = [b]
        for n in levels:
            r = next((x for x in rows if x["backend"] == b and x["idle"] == n),
                     None)
            if r is None:
                line.append("-")
                continue
            res, idle = r["result"], r.get("idle_result")
            cell = ""
            if ok(res) and not res["errors"]["total"]:
                cell = f"{num(res['messages_per_s'])} msg/s, " + \
                    f"{server(res, 'cpu_us_per_message') or 0:.2f} µs/msg"
            else:
                cell = errors(res)
            if idle and idle.get("errors", {}).get("total"):
                cell += f" (idle: {errors(idle)})"
            line.append(cell)
        body.append(line)
    out.append(table(["backend"] + [f"{num(n)} idle" for n in levels], body))
    sel = [r for r in rows if r["backend"] == "select" and r["idle"] >= 1000]
    if sel and all(ok(r["result"]) and not r["result"]["errors"]["total"]
                   for r in sel):
        out.append(
            "select() worked here past descriptor 1023: with glibc, libev's "
            "select backend keeps its own descriptor bit arrays, grown as "
            "needed, instead of the fixed 1024-bit `fd_set`, and Linux's "
            "select() takes any count up to the open-file limit. A program "
            "that uses `FD_SET` directly could not watch them; what "
            "select() still costs is the scan of every descriptor on every "
            "wake-up, which the throughput above shows.\n")
    elif sel:
        out.append("select() failed beyond 1024 descriptors, as the table "
                   "shows.\n")
    return "\n".join(out)


def section_distribution(rows):
    return ("## Distribution: reuseport or acceptor\n\n`reuseport`: each "
            "worker accepts on its own SO_REUSEPORT socket. `acceptor`: one "
            "thread accepts and hands each connection to a worker through "
            "its mailbox.\n\n" +
            table(["distribution", "workload", "per second", "p50", "p99",
                   "server CPU", "CPU per unit", "errors"],
                  [[r["distribution"], r["workload"],
                    num(r["result"]["messages_per_s"]) if ok(r["result"])
                    else "-",
                    lat(r["result"], "p50"), lat(r["result"], "p99"),
                    cpu_pct(r["result"]), cpu_per(r["result"]),
                    errors(r["result"])] for r in rows]))


def header(res):
    m = res["machine"]
    noisy = []
    try:
        if float(m["loadavg"][0]) > 0.5:
            noisy.append(f"the load average was {m['loadavg'][0]} when the "
                         "suite started")
        if float(m.get("loadavg_end", ["0"])[0]) > 2.5:
            noisy.append(f"{m['loadavg_end'][0]} when it ended (the suite "
                         "itself keeps about two CPUs busy)")
    except (ValueError, IndexError, KeyError):
        pass
    warn = ""
    if res.get("quick"):
        warn += ("> **Quick run**: short measurements to check the "
                 "machinery, not numbers to quote. Run `bench/run` (without "
                 "`--quick`) on a quiet machine for those.\n>\n")
    if noisy:
        warn += ("> **Noisy machine**: " + "; ".join(noisy) + ". Other "
                 "work shared these CPUs, so the numbers below are "
                 "pessimistic and uneven; regenerate this page on a quiet "
                 "machine.\n>\n")
    if warn:
        warn = warn[:-3] + "\n\n"
    return (
        "# Benchmarks\n\n"
        "<!-- Generated by bench/run from bench/results/latest.json: edit "
        "bench/page.py, not this file. -->\n\n"
        f"Generated by `{res['command'].strip()}` on {res['generated']}, "
        f"commit {m['commit']}.\n\n" + merged(res) + warn +
        f"- Machine: {m['cpus']} × {m['cpu']}, {m['memory_gib']} GiB, Linux "
        f"{m['kernel']}, Python {m['python']}.\n"
        f"- The server runs on CPU {res['server_cpus']} (percored: "
        f"{res['workers']} worker{'s' if res['workers'] > 1 else ''}), "
        f"percore-bench on CPU {res['client_cpus']} (`taskset`), over "
        "loopback.\n"
        f"- Each run: {res['warmup_s']:g} s warm-up, then {res['duration_s']:g} "
        "s measured; a fresh server for every run.\n"
        "- Every echoed byte is checked; \"errors\" counts failed connects, "
        "early closes, wrong bytes, answers still missing after the run, "
        "and (chat) lines out of order.\n"
        "- Latency percentiles come from percore-bench's log-linear "
        "histogram (under 1% error).\n\n"
        "Reproduce: build (`cmake -S . -B build && cmake --build build -j`), "
        "then `bench/run` (about 30 minutes; `bench/run --quick` checks the "
        "machinery in a few). `bench/run --help` lists the options; "
        "`build/bench/percore-bench --help` the load generator's.\n\n")


def merged(res):
    """bench/run --merge: which sections come from later runs."""
    out = ""
    for m in res.get("merged", []):
        out += (f"The section{'s' if len(m['cases']) > 1 else ''} "
                f"{', '.join(m['cases'])}: from `{m['command'].strip()}` on "
                f"{m['generated']}, commit {m['commit']}, {m['warmup_s']:g} s "
                f"warm-up and {m['duration_s']:g} s measured per run, load "
                f"average {m['loadavg'][0]} at the start" +
                ("; a **quick run**, not numbers to quote" if m["quick"]
                 else "") + ".\n\n")
    return out


def write(res, docs, img):
    os.makedirs(img, exist_ok=True)
    c = res["cases"]
    parts = [header(res), targets(res)]
    if "echo" in c:
        parts.append(section_echo(c["echo"], plot_echo(c["echo"], img)))
    if "efficiency" in c:
        parts.append(section_efficiency(res))
    if "churn" in c:
        parts.append(section_churn(c["churn"]))
    if "idle" in c:
        parts.append(section_idle(c["idle"], plot_idle(c["idle"], img)))
    if "backends" in c:
        parts.append(section_backends(c["backends"],
                                      plot_backends(c["backends"], img)))
    if "distribution" in c:
        parts.append(section_distribution(c["distribution"]))
    if "chat" in c:
        import page_chat
        parts.append(page_chat.section_chat(c["chat"],
                                            page_chat.plot_chat(c["chat"], img)))
    if "irc" in c:
        import ircbench
        parts.append(ircbench.section(c["irc"]))
    if "tls" in c:
        import page_tls
        parts.append(page_tls.section(c["tls"]))
    if "web" in c:
        import page_web
        parts.append(page_web.section(c["web"]))
    parts.append(
        "## The servers\n\n"
        "- **percored**: this project, `--workers` = the server CPUs.\n"
        "- **epoll (C)**: `bench/baselines/epoll_echo.c`, one thread, "
        "level-triggered epoll, no framework: the floor.\n"
        "- **threads (C)**: `bench/baselines/threaded_echo.c`, one blocking "
        "thread per connection (128 KiB stacks).\n"
        "- **threads / selectors / asyncio (Python)**: "
        "`bench/baselines/py_*.py`: blocking sockets with a thread each, "
        "one thread with `selectors`, and asyncio streams.\n"
        "- **redis-server**, **nats-server**, **ngircd**, **nginx** "
        "(with libnginx-mod-stream), **wrk**: Debian's packages, default "
        "settings except as noted.\n"
        "- **Node.js ws**: `bench/baselines/ws_broadcast.js`, npm's `ws` "
        "(pinned by bench/baselines/package-lock.json) broadcasting every "
        "text message to every client.\n")
    parts.append(
        "## Running percore-bench yourself\n\n"
        "```sh\n"
        "./build/percored --listen echo@127.0.0.1:7007 &\n"
        "P=$(pidof percored)\n"
        "# closed loop: 100 connections, 64-byte messages, 16 in flight each\n"
        "./build/bench/percore-bench echo -c 100 -s 64 -p 16 -d 10 "
        "--server-pid $P\n"
        "# open loop at 60,000 msg/s, as JSON\n"
        "./build/bench/percore-bench echo -c 100 -r 60k -d 10 --json\n"
        "./build/bench/percore-bench churn -c 16 -d 10\n"
        "./build/bench/percore-bench idle -c 10000 -s 64 -d 30 "
        "--server-pid $P\n"
        "# chat: one room of 1,000 members, 4 of them sending\n"
        "./build/percored --listen chat@127.0.0.1:7008 "
        "--set chat.flood_rate=0 --set chat.default_room= &\n"
        "./build/bench/percore-bench chat --members 1000 --senders 4 -p 32 "
        "-d 10   # saturation\n"
        "./build/bench/percore-bench chat --members 1000 --senders 4 -r 100 "
        "-d 10   # 100 lines/s\n"
        "./build/bench/percore-bench chat --members 1000 --senders 4 -p 32 "
        "--stalled 10 -d 10   # 10 members stop reading\n"
        "./build/bench/bench-write-floor 1000 100 1   # one bare write per "
        "line\n"
        "redis-server --port 6379 & "
        "./build/bench/percore-bench chat --target redis --members 1000\n"
        "```\n\n"
        "Pin the load generator away from the server (`taskset -c 1 ... "
        "--cpus 1`); otherwise the two share CPUs and both numbers suffer. "
        "It raises its own open-file limit to the hard limit; "
        "`--threads N` spreads the connections over N loops. The exit "
        "status is 1 whenever the report counts errors. Echo verifies every "
        "byte against a fixed pseudo-random pattern (all 256 byte values, "
        "different per connection); chat verifies each sender's order at "
        "every member, and counts what is missing after `--drain`.\n")
    with open(docs, "w") as f:
        f.write("\n".join(p for p in parts if p))

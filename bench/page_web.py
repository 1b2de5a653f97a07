"""The web section of docs/benchmarks.md and its lines of the Targets
table, from bench/run's web case (bench/webbench.py). Called by
bench/page.py; kept apart so that page.py stays one job per file."""

import page

TARGET_WS_VS_NODE = 5.0       # deliveries per server CPU-second
TARGET_STATIC_VS_NGINX = 0.9  # requests per server CPU-second


def ws_failure(r):
    if not page.ok(r):
        return page.errors(r)
    if r["errors"]["total"] or r.get("exit"):
        return "failed: " + page.errors(r)
    if not page.per_cpu_s(r):
        return "failed: no server CPU time measured"
    return None


def static_failure(r):
    if not r or "error" in r:
        return "failed: " + (r or {}).get("error", "not run")[:120]
    if r.get("socket_errors") or r.get("non_2xx"):
        return (f"failed: {r.get('socket_errors', 0)} socket errors, "
                f"{r.get('non_2xx', 0)} non-2xx")
    if not r.get("per_cpu_s"):
        return "failed: no server CPU time measured"
    return None


def median_row(rows, value, failure):
    """The row whose value is the median of the good ones (the lower of
    the middle two), or the first row if none is good."""
    good = [x for x in rows if not failure(x["result"])]
    if not good:
        return rows[0] if rows else None, []
    good.sort(key=lambda x: value(x["result"]))
    return good[(len(good) - 1) // 2], [value(x["result"]) for x in good]


def groups(case, part, key):
    out = {}
    for x in case["rows"]:
        if x["part"] == part:
            out.setdefault(key(x), []).append(x)
    return out


def ws_summary(case):
    """{(kind, server): (median row, [per CPU-second of each good round])}"""
    return {k: median_row(rs, page.per_cpu_s, ws_failure)
            for k, rs in groups(case, "ws",
                                lambda x: (x["kind"], x["server"])).items()}


def static_summary(case):
    return {k: median_row(rs, lambda r: r["per_cpu_s"], static_failure)
            for k, rs in groups(case, "static",
                                lambda x: x["server"]).items()}


def ws_table(case):
    cells = []
    for (kind, name), (x, each) in ws_summary(case).items():
        r, why = x["result"], ws_failure(x["result"])
        if why and page.ok(r) and page.per_cpu_s(r):
            why = None  # a server that fell behind: its numbers, its errors
        what = (f"closed loop, {senders_text(case)}" if kind == "saturation"
                else f"open loop, {x.get('rate')} lines/s")
        cells.append([
            what, name, why or page.num(r["messages_per_s"]),
            "-" if why else page.num(page.per_cpu_s(r)),
            "-" if why else page.cpu_per(r), page.lat(r, "p50"),
            page.lat(r, "p99"), page.cpu_pct(r), page.bench_cpu(r),
            ", ".join(page.num(v) for v in each) or "-", page.errors(r)])
    return page.table(
        ["workload", "server", "deliveries/s", "per server CPU-second",
         "server CPU / delivery", "p50", "p99", "server CPU", "bench CPU",
         "rounds (per CPU-s)", "errors"], cells)


def senders_text(case):
    return (f"{case['senders']} senders x {case['pipeline']} lines in "
            "flight")


def static_table(case):
    cells = []
    for name, (x, each) in static_summary(case).items():
        r, why = x["result"], static_failure(x["result"])
        lat = r.get("latency_us", {}) if not why else {}
        cells.append([
            name, why or page.num(r["requests_per_s"]),
            "-" if why else page.num(r["per_cpu_s"]),
            "-" if why else f"{1e6 / r['per_cpu_s']:.1f} µs",
            page.us(lat.get("p50")), page.us(lat.get("p99")),
            "-" if why else f"{100 * r['server_cpu_util']:.0f} %",
            ", ".join(page.num(v) for v in each) or "-"])
    return page.table(
        ["server", "requests/s", "per server CPU-second",
         "server CPU / request", "p50", "p99", "server CPU",
         "rounds (per CPU-s)"], cells)


def ratios(case):
    """(ws percored, ws node, static percored, static nginx): per server
    CPU-second medians, None where failed."""
    ws, st = ws_summary(case), static_summary(case)

    def v(summary, key, failure, value):
        x = summary.get(key, (None, []))[0]
        return None if x is None or failure(x["result"]) else \
            value(x["result"])
    return (v(ws, ("saturation", "percored"), ws_failure, page.per_cpu_s),
            v(ws, ("saturation", "node ws"), ws_failure, page.per_cpu_s),
            v(st, "percored", static_failure, lambda r: r["per_cpu_s"]),
            v(st, "nginx", static_failure, lambda r: r["per_cpu_s"]))


def profile_text(what, prof):
    if isinstance(prof, str) or not prof:
        return f"- {what}: no profile ({prof or 'not run'}).\n"
    objs = ", ".join(f"`{name}` {pct:.0f} %" for pct, name in
                     prof.get("objects", []))
    top = ", ".join(f"`{sym}` {pct:.1f} %" for pct, sym in prof["symbols"])
    return f"- {what}: by object {objs}; by symbol {top}.\n"


def section(case):
    load = case.get("loadavg", ["?"])
    end = case.get("loadavg_end", ["?"])
    out = ["## Web: WebSocket fan-out and static files\n",
           "percored's `web` listener (one worker, docs/protocols/web.md) "
           "against the usual peers, each server on the server CPU, the "
           "load generator on the other (taskset). The load average was "
           f"{load[0]} when this case started and {end[0]} when it ended"
           + (" (a shared machine: the numbers are noisy and pessimistic)"
              if _float(load[0]) > 1.0 else "") + ".\n",
           "### WebSocket fan-out\n\n"
           f"One room of {case['members']:,} WebSocket members, "
           f"{case['senders']} of them sending (`percore-bench ws`: a "
           "random Sec-WebSocket-Key per connection and its accept "
           "checked, every frame masked, each line carrying its sender, "
           "sequence number and send time, checked and timed at every "
           "member). percored: each member claims a unique nick and joins "
           "the room with the JSON messages of docs/protocols/web.md; a "
           "line is a `say` and arrives as a `say` event (about 120 bytes "
           "of JSON around the 64-byte line). Node.js "
           f"({case.get('node', '?')}): `bench/baselines/ws_broadcast.js` "
           "on npm's `ws` (permessage-deflate off), the room every client, "
           "each text message sent to all of them as it came (64 bytes). "
           "Both send a sender its own line. Saturation is a closed loop "
           f"({senders_text(case)} until they come back); per server "
           "CPU-second is deliveries over the server's CPU time, from "
           "/proc/PID/stat at the edges of the measured window: the number "
           "to compare when one client CPU cannot saturate the server "
           "(see the server CPU column). The light row offers "
           f"{case['light_rate']} lines/s in all (that is "
           f"{page.num(case['light_rate'] * case['members'])} deliveries/s); "
           "percored's line chat face (`percore-bench chat`, the same room "
           "and load) runs beside it as a control: where other work on the "
           "machine swells the latencies, it swells that row's too. "
           f"Median of {case['rounds']} alternating rounds.\n"]
    out.append(ws_table(case))
    a, b, c, d = ratios(case)
    light = {name: x["result"] for (kind, name), (x, _) in
             ws_summary(case).items() if kind == "light"}
    out.append("Per server CPU-second at saturation: percored "
               f"{page.num(a)}, Node ws {page.num(b)}"
               + (f": **{a / b:.1f}×**" if a and b else "") + ". p99 at "
               f"{case['light_rate']} lines/s: percored "
               f"{page.lat(light.get('percored'), 'p99')}, Node ws "
               f"{page.lat(light.get('node ws'), 'p99')}, the chat face at the "
               "same load "
               f"{page.lat(light.get('percored chat face'), 'p99')}" +
               "".join(f"; {n} fell behind ({page.errors(r)}: deliveries "
                       "still missing after the drain)"
                       for n, r in light.items()
                       if page.ok(r) and r["errors"]["total"]) + ".\n")
    st = next((x for x in case["rows"] if x["part"] == "static"), {})
    out.append(
        "### Static files\n\n"
        f"`GET` of one file of {page.size(st.get('file_bytes'))} with "
        f"Debian's `wrk` ({st.get('connections', '?')} "
        "keep-alive connections, one thread per client CPU, pinned there "
        "with `taskset` as percore-bench is), after a warm-up run. "
        "percored: a `web` listener with `root` set to a directory "
        "holding the file. nginx (Debian's): `worker_processes 1`, "
        "`access_log off`, `listen 127.0.0.1:PORT reuseport`, `sendfile "
        "on` and `tcp_nopush on` as in Debian's nginx.conf, otherwise "
        "defaults (so `keepalive_requests 1000`: wrk reconnects after "
        "every thousandth request there). Its worker's CPU time is "
        "measured (the master's is recorded too). Per server CPU-second is "
        "requests over the server's CPU time across the measured wrk "
        "run.\n")
    out.append(static_table(case))
    out.append("Per server CPU-second: percored "
               f"{page.num(c)}, nginx {page.num(d)}"
               + (f": **{c / d:.2f}×**" if c and d else "") + ".\n")
    prof = case.get("profiles", {})
    out.append(
        "### Where percored's CPU goes\n\n"
        "From one more run of each workload (not a measured one) under "
        "`perf record -e cpu-clock -g -p PID`, `perf report --no-children "
        "--sort dso` and `--sort sym`: the objects and symbols over 0.8 % of "
        "the samples, kernel ones included. Over loopback a server's "
        "write also runs the receiving socket's TCP input and wakes its "
        "reader, all charged to the server: much of the kernel's share "
        "(`_copy_from_iter` copies each frame into each member's socket) "
        "is the price of a delivery on any server, Node's and nginx's "
        "too.\n\n" +
        profile_text("WebSocket fan-out, saturation", prof.get("ws")) +
        profile_text("static file", prof.get("static")))
    out.append(
        "Run it yourself (the server on CPU 0, the load on CPU 1):\n\n"
        "```sh\n"
        "taskset -c 0 ./build/percored --workers 1 --listen "
        "web@127.0.0.1:8080 --set web.flood_rate=0 &\n"
        "P=$(pidof percored)\n"
        "taskset -c 1 ./build/bench/percore-bench ws --members 1000 "
        "--senders 4 -p 32 -d 10 -w 1 --server-pid $P\n"
        "taskset -c 1 ./build/bench/percore-bench ws --members 1000 "
        "--senders 4 -r 100 -d 10 -w 1 --server-pid $P\n"
        "(cd bench/baselines && npm ci) && taskset -c 0 node "
        "bench/baselines/ws_broadcast.js 8081 &\n"
        "taskset -c 1 ./build/bench/percore-bench ws --target broadcast "
        "--members 1000 --senders 4 -p 32 -d 10 -w 1 --server-pid "
        "$(pgrep -n node)\n"
        "taskset -c 0 ./build/percored --workers 1 --listen "
        "web@127.0.0.1:8082 --set web.root=/srv/www &\n"
        "taskset -c 1 wrk -t1 -c64 -d10s --latency "
        "http://127.0.0.1:8082/small.html\n"
        "```\n")
    return "\n".join(out)


def _float(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return 0.0


def targets(case):
    a, b, c, d = ratios(case)
    lines = []
    what = (f"WebSocket fan-out per server CPU-second, "
            f"{case['members']:,}-member room, saturation")
    goal = f"≥ {TARGET_WS_VS_NODE:g}× Node.js ws"
    if a and b:
        lines.append([what, goal, f"{a / b:.1f}× ({page.num(a)} vs "
                      f"{page.num(b)})", page.verdict(a >= TARGET_WS_VS_NODE
                                                      * b)])
    else:
        lines.append([what, goal, f"percored: {'ok' if a else 'failed'}, "
                      f"Node ws: {'ok' if b else 'failed'}",
                      "**not measured**"])
    what = "static file requests per server CPU-second (wrk)"
    goal = f"≥ {TARGET_STATIC_VS_NGINX:g}× nginx"
    if c and d:
        lines.append([what, goal, f"{c / d:.2f}× ({page.num(c)} vs "
                      f"{page.num(d)})",
                      page.verdict(c >= TARGET_STATIC_VS_NGINX * d)])
    else:
        lines.append([what, goal, f"percored: {'ok' if c else 'failed'}, "
                      f"nginx: {'ok' if d else 'failed'}",
                      "**not measured**"])
    return lines

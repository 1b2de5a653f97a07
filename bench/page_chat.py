"""The chat fan-out section of docs/benchmarks.md and its lines of the
Targets table, from bench/run's chat case. Called by bench/page.py (and
its table rows by bench/ircbench.py); kept apart so that page.py stays
one job per file."""

import os

from page import (bench_cpu, cpu_pct, errors, gnuplot, lat, num, ok,
                  per_cpu_s, server, table, us, verdict)

TARGET_CHAT_PER_CORE = 1_000_000
TARGET_CHAT_SATURATION = 6_000_000   # deliveries per core-second, one worker
TARGET_CHAT_SATURATION_P99_US = 50_000
TARGET_CHAT_LIGHT_US = 3.0           # server CPU per delivery at 100 lines/s
TARGET_CHAT_LIGHT_P99_US = 10_000
TARGET_CHAT_SPREAD = 0.10            # 2 workers vs 1, per core-second


def chat_kind(row):
    """Rows written before the load sweep existed had no "kind"."""
    if "kind" in row:
        return row["kind"]
    return "saturation" if row["workload"].startswith("closed") else "load"


def chat_light(rows, rate):
    """{server: result} of the open-loop runs at `rate` lines/s."""
    return {x["server"]: x["result"] for x in rows
            if chat_kind(x) in ("load", "coalescing") and
            x.get("rate") == rate and ok(x["result"])}


def plot_chat(rows, img):
    """Deliveries/s against p99 as the offered load rises, per server."""
    series = {}
    for x in rows:
        if chat_kind(x) != "load" or not ok(x["result"]):
            continue
        r = x["result"]
        if r["latency_us"]["count"]:
            series.setdefault(x["server"], []).append(
                [r["messages_per_s"] / 1e6, r["latency_us"]["p99"] / 1000])
    if not series:
        return False
    data, plots = {}, []
    for i, (name, pts) in enumerate(series.items()):
        data[f"s{i}.dat"] = sorted(pts)
        plots.append(f"'s{i}.dat' using 1:2 with linespoints lw 2 pt 7 "
                     f"title \"{name}\"")
    script = ('set logscale xy\nset xrange [0.05:20]\nset xlabel "deliveries per second '
              '(millions), offered load rising"\n'
              'set ylabel "p99 delivery latency (ms)"\n'
              'set title "chat fan-out, one 1,000-member room, server on '
              'one CPU"\nset key top left\n'
              f'plot {", ".join(plots)}\n')
    return gnuplot(script, data, os.path.join(img, "chat-load.png"))


def chat_saturation(rows):
    """{server: its saturation row}; with several rounds, the round with
    the median deliveries per CPU-second, marked with how many there were."""
    by = {}
    for x in rows:
        if chat_kind(x) == "saturation":
            by.setdefault(x["server"], []).append(x)
    out = {}
    for name, xs in by.items():
        good = sorted((x for x in xs if per_cpu_s(x["result"])),
                      key=lambda x: per_cpu_s(x["result"]))
        pick = good[(len(good) - 1) // 2] if good else xs[0]
        if len(xs) > 1:
            pick = dict(pick, workload=pick["workload"] +
                        f" (median of {len(xs)} rounds: " + ", ".join(
                            num(per_cpu_s(x["result"])) for x in good) +
                        " per CPU-second)")
        out[name] = pick
    return out


def chat_targets(rows):
    lines = []
    sat = chat_saturation(rows)
    one = sat.get("percored")
    if one:
        r = one["result"]
        v = per_cpu_s(r)
        p99 = r["latency_us"]["p99"] if ok(r) else None
        lines.append([
            f"chat deliveries per server CPU-second, {one['members']}-member "
            f"room, one worker", f"≥ {num(TARGET_CHAT_PER_CORE)} "
            f"(benchmark suite); ≥ {num(TARGET_CHAT_SATURATION)} with p99 ≤ "
            f"{us(TARGET_CHAT_SATURATION_P99_US)} (fan-out)",
            f"{num(v)} per CPU-second, {num(r['messages_per_s'])}/s, p99 "
            f"{us(p99)} ({one['workload']})" if v else errors(r),
            verdict(bool(v) and v >= TARGET_CHAT_SATURATION and
                    p99 <= TARGET_CHAT_SATURATION_P99_US)])
    two = sat.get("percored, 2 workers on 1 CPU")
    if one and two and per_cpu_s(one["result"]) and per_cpu_s(two["result"]):
        a, b = per_cpu_s(one["result"]), per_cpu_s(two["result"])
        lines.append([
            "chat deliveries per CPU-second, 2 workers (members on both) "
            "vs 1", f"within {TARGET_CHAT_SPREAD:.0%}",
            f"{b / a:.2f}× ({num(b)} vs {num(a)})",
            verdict(b >= a * (1 - TARGET_CHAT_SPREAD))])
    light = [(x, x["result"]) for x in rows
             if x.get("rate") == 100 and x["server"].startswith("percored")
             and ok(x["result"]) and server(x["result"], "cpu_s")]
    if light:
        def cost(r):
            return 1e6 * server(r, "cpu_s") / r["messages"]
        fit = [(cost(r), x) for x, r in light
               if r["latency_us"]["p99"] <= TARGET_CHAT_LIGHT_P99_US]
        best = min(fit or [(cost(r), x) for x, r in light],
                   key=lambda t: t[0])
        r = best[1]["result"]
        floor = next((x["result"]["us_per_write"] for x in rows
                      if chat_kind(x) == "floor" and x.get("lines") == 1 and
                      "us_per_write" in x["result"]), None)
        lines.append([
            "chat server CPU per delivery at 100 lines/s (best percored "
            "setting with p99 ≤ 10 ms)",
            f"≤ {TARGET_CHAT_LIGHT_US:.0f} µs, p99 ≤ "
            f"{us(TARGET_CHAT_LIGHT_P99_US)}",
            f"{best[0]:.2f} µs, p99 {us(r['latency_us']['p99'])} "
            f"({best[1]['server']})" + (
                f"; a bare one-line loopback write costs {floor:.2f} µs"
                if floor else ""),
            verdict(best[0] <= TARGET_CHAT_LIGHT_US and
                    r["latency_us"]["p99"] <= TARGET_CHAT_LIGHT_P99_US)])
    return lines


def chat_row(x):
    r = x["result"]
    return [x["server"], x["workload"],
            num(r["messages_per_s"]) if ok(r) else "-",
            lat(r, "p50"), lat(r, "p99"), lat(r, "p99_9"), cpu_pct(r),
            num(per_cpu_s(r)), f"{1e6 / per_cpu_s(r):.2f} µs"
            if per_cpu_s(r) else "-", bench_cpu(r), errors(r)]


CHAT_HEAD = ["server", "workload", "deliveries/s", "p50", "p99", "p99.9",
             "server CPU", "deliveries per CPU-second", "CPU / delivery",
             "bench CPU", "errors"]


def section_chat(rows, plotted):
    out = ["## Chat fan-out\n",
           "One room of 1,000 members, 64-byte lines; every member is a "
           "connection of percore-bench, spread by the kernel over the "
           "server's workers. Four members also send; each line carries its "
           "sender, a sequence number and its send time, so every member "
           "checks each sender's order and times every delivery (send to "
           "receipt at that member). Deliveries per CPU-second is deliveries "
           "divided by the server's CPU time: the per-core rate. The same "
           "workload drives Redis pub/sub (SUBSCRIBE/PUBLISH, output limit "
           "for pub/sub raised so slow members are measured, not dropped) "
           "and NATS (SUB/PUB). Where \"bench CPU\" is near 100 %, the "
           "load generator, not the server, was the limit.\n",
           "### Saturation\n",
           "Closed loop: each sender keeps its lines in flight until it "
           "hears them back itself, so the room is never idle.\n"]
    out.append(table(CHAT_HEAD, [chat_row(x) for x in
                                 chat_saturation(rows).values()]))
    for x in rows:
        r = x["result"]
        if x.get("stalled") and ok(r) and "stalled_cut" in r.get("chat", {}):
            out.append(
                f"Slow consumers at full speed ({x['server']}): "
                f"{r['chat']['stalled']} members stop reading when "
                f"measuring starts (a 4 KiB receive window, so the server "
                f"holds what they miss); the server cut off "
                f"{r['chat']['stalled_cut']} of them (chat's `sendq`, "
                f"1 MiB) while the other {x['members'] - x['stalled']} "
                f"received {num(r['messages_per_s'])} deliveries/s, "
                f"p99 {us(r['latency_us']['p99'])}. Lines to the stalled "
                f"members are not counted.\n")
    load = [x for x in rows if chat_kind(x) == "load"]
    if load:
        out.append("### Offered load\n")
        out.append("Open loop: the four senders share the offered lines/s, "
                   "evenly spaced, whatever the server does; every line is "
                   "1,000 deliveries. Latency is what a member sees at that "
                   "load.\n")
        if plotted:
            out.append("![chat deliveries against p99 latency]"
                       "(img/chat-load.png)\n")
        out.append(table(CHAT_HEAD, [chat_row(x) for x in sorted(
            load, key=lambda x: (x.get("rate", 0), x["server"]))]))
        rates = sorted({x["rate"] for x in load if "rate" in x})
        names = list(dict.fromkeys(x["server"] for x in load))
        cells = []
        for rate in rates:
            by = chat_light(load, rate)
            line = [f"{rate} lines/s ({num(rate * (load[0]['members']))} "
                    f"deliveries/s)"]
            for n in names:
                r = by.get(n)
                c = server(r, "cpu_s") if r else None
                line.append(f"{1e6 * c / r['messages']:.2f} µs (p99 "
                            f"{us(r['latency_us']['p99'])})" if c else "-")
            cells.append(line)
        out.append("Server CPU per delivery at fixed loads, side by side:\n")
        out.append(table(["offered"] + names, cells))
        floor = {x["lines"]: x["result"] for x in rows
                 if chat_kind(x) == "floor" and "us_per_line" in x["result"]}
        if 1 in floor:
            text = (f"The price under every row at light load: "
                    f"`bench-write-floor` (`bench/baselines/write_floor.c`), "
                    f"with no server at all, writes one 64-byte line to each "
                    f"of {load[0]['members']} loopback connections 100 times "
                    f"a second while a reader on the other CPU reads them: "
                    f"**{floor[1]['us_per_write']:.2f} µs of CPU per "
                    f"write**. The kernel's TCP path costs that whatever the "
                    f"size (on loopback it includes the receiver's side, run "
                    f"in the sender's context, and the reader's wake-ups), so "
                    f"a server that writes each line to each member on its "
                    f"own pays about that per delivery, give or take how "
                    f"its readers behave.")
            if 2 in floor:
                text += (f" Two lines per write cost "
                         f"{floor[2]['us_per_write']:.2f} µs, "
                         f"{floor[2]['us_per_line']:.2f} µs per line: "
                         f"deliveries that share a write are what makes fan-out "
                         f"cheap.")
            out.append(text + "\n")
        busy = sorted({x["rate"] for x in load if ok(x["result"]) and
                       (server(x["result"], "cpu_util") or 0) >= 0.95})
        if busy:
            out.append(
                f"Where a server's CPU is 95 % busy or more (here from "
                f"{busy[0]} lines/s), it is never idle: it writes as it "
                f"can and each write carries whatever has queued since, so "
                f"its CPU per delivery is simply one CPU-second divided by "
                f"the deliveries offered, the same for every such server. "
                f"Latency is what separates them there.\n")
    co = [x for x in rows if chat_kind(x) == "coalescing"]
    if co:
        out.append("### Coalescing delay\n")
        out.append(
            "`flush_delay` (a listener key, default 0) lets a connection's "
            "output wait up to that long so that the lines arriving "
            "meanwhile share one write. At a steady 100 lines/s the lines "
            "are 10 ms apart, so a delay below 10 ms buys nothing and a "
            "delay above it adds its whole length to every delivery; at "
            "1,000 lines/s each millisecond of delay lets about one more "
            "line share the write. Same room and load as the open-loop "
            "rows above with flush_delay 0.\n")
        out.append(table(CHAT_HEAD, [chat_row(x) for x in sorted(
            co, key=lambda x: (x.get("rate", 0), x["server"]))]))
    return "\n".join(out)

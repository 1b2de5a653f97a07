"""The TLS section of docs/benchmarks.md and its lines of the Targets
table, from bench/run's tls case (bench/tlsbench.py). Called by
bench/page.py; kept apart so that page.py stays one job per file."""

import statistics

import page

TARGET_HANDSHAKES_VS_NGINX = 1.0   # handshakes per server CPU-second
TARGET_TLS_ECHO_RATIO = 1.3        # CPU per 4 KiB message, TLS / cleartext
MIN_RESUMED = 0.99                 # below: the resumed row failed


def per_cpu_s(r):
    """Handshakes per server CPU-second, or None."""
    return page.per_cpu_s(r)


def resumed_fraction(r):
    return r.get("tls", {}).get("resumed_fraction") if page.ok(r) else None


def failure(x):
    """Why a handshake row has no number to show, or None."""
    r = x["result"]
    if not page.ok(r):
        return page.errors(r)
    if r["errors"]["total"] or r.get("exit"):
        return "failed: " + page.errors(r)
    if not per_cpu_s(r):
        return "failed: no server CPU time measured"
    f = resumed_fraction(r)
    if x["resume"] and (f is None or f < MIN_RESUMED):
        return (f"**failed**: only {100 * (f or 0):.1f} % of handshakes "
                "resumed")
    return None


def handshake_rows(case):
    return [x for x in case["rows"] if x["kind"] == "handshake"]


def handshake_table(case):
    cells = []
    for x in handshake_rows(case):
        r, why = x["result"], failure(x)
        tls = r.get("tls", {}) if page.ok(r) else {}
        cells.append([
            x["workload"], x["server"],
            why or page.num(r["messages_per_s"]),
            "-" if why else page.num(per_cpu_s(r)),
            "-" if why else f"{1e6 / per_cpu_s(r):.0f} µs",
            page.lat(r, "p50"), page.lat(r, "p99"), page.cpu_pct(r),
            page.bench_cpu(r),
            f"{100 * resumed_fraction(r):.1f} %"
            if resumed_fraction(r) is not None else "-",
            f"{tls.get('cipher', '-')} {tls.get('group', '')}".strip(),
            page.errors(r)])
    return page.table(
        ["handshake", "server", "handshakes/s", "per server CPU-second",
         "server CPU / handshake", "p50", "p99", "server CPU", "bench CPU",
         "resumed", "negotiated", "errors"], cells)


def handshake_ratios(case):
    """[(workload, percored value, nginx value)] per handshake workload;
    a value is None where its row failed."""
    out = {}
    for x in handshake_rows(case):
        v = None if failure(x) else per_cpu_s(x["result"])
        out.setdefault(x["workload"], {})[x["server"]] = v
    return [(w, by.get("percored"), by.get("nginx")) for w, by in out.items()]


def echo_summary(case):
    """{(server, size): {tls: (median CPU/msg µs, [each], median msg/s,
    median p99 µs, errors)}}."""
    groups = {}
    for x in case["rows"]:
        if x["kind"] == "echo":
            groups.setdefault((x["server"], x["size"]), {}).setdefault(
                x["tls"], []).append(x["result"])
    out = {}
    for key, by in groups.items():
        out[key] = {}
        for tls, rs in by.items():
            good = [r for r in rs if page.ok(r) and
                    page.server(r, "cpu_us_per_message") and
                    not r["errors"]["total"]]
            if not good:
                out[key][tls] = (None, [], None, None,
                                 page.errors(rs[0]) if rs else "not run")
                continue
            costs = [page.server(r, "cpu_us_per_message") for r in good]
            out[key][tls] = (
                statistics.median(costs), costs,
                statistics.median(r["messages_per_s"] for r in good),
                statistics.median(r["latency_us"]["p99"] for r in good),
                sum(r["errors"]["total"] for r in rs))
    return out


def echo_table(case):
    cells = []
    for (name, size), by in echo_summary(case).items():
        clear, tls = by.get(False), by.get(True)
        a, b = clear[0] if clear else None, tls[0] if tls else None
        cells.append([
            name, page.size(size),
            f"{a:.2f} µs" if a else (clear[4] if clear else "-"),
            f"{b:.2f} µs" if b else (tls[4] if tls else "-"),
            f"{b / a:.2f}×" if a and b else "-",
            f"{b - a:+.2f} µs" if a and b else "-",
            page.num(tls[2]) if b else "-", page.us(tls[3]) if b else "-",
            ", ".join(f"{c:.2f}" for c in tls[1]) if b else "-"])
    return page.table(
        ["server", "message", "cleartext CPU / msg", "TLS CPU / msg",
         "TLS / cleartext", "TLS adds", "TLS msg/s", "TLS p99",
         "TLS rounds"], cells)


def section(case):
    rows = case["rows"]
    master = [x["result"].get("nginx_master_cpu_s") for x in rows
              if x["server"].startswith("nginx") and page.ok(x["result"])]
    master = [m for m in master if m is not None]
    out = ["## TLS: handshakes and echo over TLS\n",
           "percored's TLS listeners against Debian's nginx (its `stream` "
           "module), both on the system's OpenSSL 3 (libssl3), one worker "
           "each on the server CPU. bench/run makes the certificates at "
           "run time (self-signed for localhost, ECDSA P-256 and "
           "RSA-2048); percore-bench sends SNI, checks no certificate, "
           "and offers exactly one TLS version per row.\n"]
    if not case.get("percored_tls"):
        why = (case.get("percored_tls_error") or "").replace("|", "/")
        out.append("> **percored had no TLS when this ran**, so its TLS "
                   "rows are empty" + (f" ({why})" if why else "") +
                   ". Rerun `bench/run --cases tls --merge` with a "
                   "percored that has it.\n")
    out.append(
        "### Handshakes\n\n"
        f"{case['concurrency']} handshakes in progress at once "
        "(`percore-bench handshake`): connect, handshake, close with "
        "close_notify, again. No application data: a handshake counts "
        "once the client has checked the server's Finished and, for a "
        "full TLS 1.3 handshake, once the server's first session ticket "
        "has come too (the server sends it after checking the client's "
        "Finished). Latency is from connect() to that moment. Resumed "
        "rows offer the newest session the slot has had (a ticket; both "
        "servers issue them, percored's `tls_session_cache = on`, "
        "nginx's `ssl_session_tickets on`; after a TLS 1.3 resumption "
        "nginx sends a new ticket and percored none, so there the same "
        "ticket is offered again); a handshake that offered one and was "
        "not resumed is an error, and a row where fewer than "
        f"{MIN_RESUMED:.0%} of the handshakes resumed is shown as failed, "
        "not as a rate. Per server CPU-second is handshakes divided by "
        "the server's CPU time: the load generator, on its own CPU, "
        "spends more per handshake than the server on ECDSA, so there "
        "the server is not saturated and this is the number to "
        "compare. The client offers OpenSSL's default suites and groups; "
        "percored picks by its own order (`SSL_OP_CIPHER_SERVER_PREFERENCE`"
        ", AES-128-GCM first), nginx by the client's (AES-256-GCM): the "
        "\"negotiated\" column. For a handshake that is a SHA-256 key "
        "schedule against a SHA-384 one, a few µs of its hundreds.\n")
    out.append(
        "Why nginx's `stream` module and `return \"\"`: nginx finishes "
        "the handshake, sends its tickets and closes; percored's echo "
        "listener does the same work and closes at the client's "
        "close_notify. HTTP would add request parsing and response "
        "headers to nginx's side alone, and proxying to an echo server "
        "a second connection per handshake. nginx runs a master and one "
        "worker; the worker's CPU time is measured"
        + (f" (the master used {max(master):.2f} CPU-s at most over a "
           "whole run)" if master else "") + ".\n")
    out.append(handshake_table(case))
    cells = []
    for w, a, b in handshake_ratios(case):
        cells.append([w, page.num(a) if a else "-", page.num(b) if b else "-",
                      f"{a / b:.2f}×" if a and b else "-"])
    out.append("Per server CPU-second, side by side:\n")
    out.append(page.table(["handshake", "percored", "nginx",
                           "percored / nginx"], cells))
    out.append(
        "### Echo over TLS at a fixed load\n\n"
        f"{case['connections']} connections, open loop at "
        f"{page.num(case['rate'])} messages/s offered (below the "
        "efficiency case's load: percore-bench encrypts and decrypts "
        "every message on its one CPU too), TLS 1.3 with the ECDSA "
        "certificate; the handshakes happen while connecting, outside "
        "the measured window. percored's cleartext and TLS runs "
        "alternate, a fresh server each; medians are compared. nginx "
        "cannot echo by itself: its rows terminate TLS (or not) and "
        "proxy to bench-epoll-echo on the same CPU, and count only the "
        "nginx worker, so they relay every message twice; they show what "
        "TLS adds to nginx (the \"TLS adds\" column), not an echo server "
        "to compare with.\n")
    out.append(echo_table(case))
    out.append(
        "Run it yourself (percore-bench on CPU 1, the server on CPU 0):\n\n"
        "```sh\n"
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
        "-nodes -subj /CN=localhost -keyout key.pem -out cert.pem\n"
        "taskset -c 0 ./build/percored --workers 1 --listen "
        "echo@127.0.0.1:7443 --set echo.tls_certificate=cert.pem "
        "--set echo.tls_key=key.pem &\n"
        "P=$(pidof percored)\n"
        "taskset -c 1 ./build/bench/percore-bench handshake -a :7443 -c 32 "
        "-d 5 --server-pid $P            # full, TLS 1.3\n"
        "taskset -c 1 ./build/bench/percore-bench handshake -a :7443 -c 32 "
        "-d 5 -w 1 --resume --tls-version 1.2 --server-pid $P\n"
        "taskset -c 1 ./build/bench/percore-bench echo --tls -a :7443 "
        "-c 100 -s 4K -r 30k -d 5 --server-pid $P\n"
        "```\n")
    return "\n".join(out)


def targets(case):
    """Rows for the page's Targets table."""
    lines = []
    missing = None if case.get("percored_tls") else \
        "percored had no TLS in this run"
    for w, a, b in handshake_ratios(case):
        goal = f"≥ {TARGET_HANDSHAKES_VS_NGINX:.2f}× nginx (same OpenSSL)"
        if a and b:
            lines.append([f"TLS handshakes per server CPU-second, {w}", goal,
                          f"{a / b:.2f}× ({page.num(a)} vs {page.num(b)})",
                          page.verdict(a >= TARGET_HANDSHAKES_VS_NGINX * b)])
        else:
            lines.append([f"TLS handshakes per server CPU-second, {w}", goal,
                          missing or "percored: " +
                          ("failed" if not a else "ok") + ", nginx: " +
                          ("failed" if not b else "ok"), "**not measured**"])
    ours = echo_summary(case).get(("percored", 4096), {})
    clear, tls = ours.get(False), ours.get(True)
    a, b = clear[0] if clear else None, tls[0] if tls else None
    what = (f"TLS echo server CPU per 4 KiB message at "
            f"{page.num(case['rate'])} msg/s offered, vs cleartext")
    goal = f"≤ {TARGET_TLS_ECHO_RATIO:.2f}× cleartext"
    if a and b:
        lines.append([what, goal, f"{b / a:.2f}× ({b:.2f} vs {a:.2f} µs, "
                      f"median of {len(tls[1])})",
                      page.verdict(b <= TARGET_TLS_ECHO_RATIO * a)])
    else:
        lines.append([what, goal, missing or "failed", "**not measured**"])
    return lines

"""bench/run's irc case and the ngircd it runs: one 1,000-member channel
on ngircd (Debian's IRC server), percored's irc face and percored's chat
face, one worker each. Also used by bench/tests/test_bench_chat.py.

ngircd is configured not to slow the benchmark down: no DNS or IDENT
look-ups per connection, no connection or channel limits, no flood penalty
(MaxPenaltyTime = 0, and every user gets mode +F, which lifts the limit of
3 commands per read and the 1-second penalties). What stays is its fixed
output limit: a client whose write buffer would pass 32 KiB
(WRITEBUFFER_MAX_LEN in src/ngircd/defines.h) is disconnected ("Write
buffer space exhausted"); members that keep reading never come near it.
"""

import os
import tempfile

NGIRCD = "/usr/sbin/ngircd"

NGIRCD_CONF = """\
# Written by percore's bench/ircbench.py for one benchmark run.
[Global]
\tName = bench.irc
\tInfo = percore-bench
\tAdminInfo1 = percore benchmark
\tAdminInfo2 = loopback only
\tAdminEMail = bench@localhost
\tListen = 127.0.0.1
\tPorts = {port}
\tPidFile = {dir}/ngircd.pid
\tMotdPhrase = bench
[Limits]
\tMaxConnections = 0
\tMaxConnectionsIP = 0
\tMaxJoins = 0
\t# ngircd's largest (CLIENT_NICK_LEN 32, with the NUL)
\tMaxNickLength = 31
\t# 0: no penalty time at all (ngircd warns that this is not recommended)
\tMaxPenaltyTime = 0
\tPingTimeout = 3600
\tPongTimeout = 3600
\tIdleTimeout = 0
[Options]
\tDNS = no
\tIdent = no
\tPAM = no
\t# +F: no flood protection for anyone (10 commands per read, not 3)
\tDefaultUserModes = F
\tIncludeDir = {dir}/conf.d
"""


def ngircd_conf(directory, port):
    """Writes an ngircd.conf for 127.0.0.1:port into directory (which
    ngircd, dropping root for "nobody", must be able to write its PID file
    into) and returns its path."""
    os.makedirs(os.path.join(directory, "conf.d"), exist_ok=True)
    os.chmod(directory, 0o777)
    path = os.path.join(directory, "ngircd.conf")
    with open(path, "w") as f:
        f.write(NGIRCD_CONF.format(port=port, dir=directory))
    return path


def ngircd_argv(path):
    """-n: in the foreground, logging to stdout; the PID is ngircd's."""
    return [NGIRCD, "-n", "-f", path]


class Ngircd:
    """A temporary directory with the config; removed on exit."""

    def __init__(self, port):
        self.dir = tempfile.mkdtemp(prefix="pcb-ngircd-")
        self.conf = ngircd_conf(self.dir, port)

    def argv(self):
        return ngircd_argv(self.conf)

    def remove(self):
        for name in ("ngircd.conf", "ngircd.pid"):
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        for d in (os.path.join(self.dir, "conf.d"), self.dir):
            try:
                os.rmdir(d)
            except OSError:
                pass


# ---- the case ----------------------------------------------------------------

SENDERS = 4
RATE = 100  # lines/s of the open-loop runs
# What an IRC line carries beyond a chat line of the same text, with
# percore-bench's nicks (7 characters; the chat face names it guestN) and
# channel #bench0, about:
# ":" "!~" nick "@127.0.0.1 PRIVMSG #bench0 :" "\r" against ": ".
IRC_EXTRA = 35


def servers(suite):
    """(name, dialect, argv builder) of each server compared, one worker
    each; ngircd's builder writes its config for the port it is given."""
    dirs = []

    def ngircd(port):
        ng = Ngircd(port)
        dirs.append(ng)
        return ng.argv()
    chat = ("--set", "chat.flood_rate=0", "--set", "chat.default_room=")

    def chat_face(p):
        return suite.percored_argv(p, *chat, proto="chat", workers=1)
    # The last entry sends chat lines as long as the IRC ones: what the
    # irc face costs beyond its longer lines.
    return dirs, [
        ("ngircd", "irc", ngircd, ()),
        ("percored irc", "irc", lambda p: suite.percored_argv(
            p, "--set", "irc.flood_rate=0", proto="irc", workers=1), ()),
        ("percored chat", "percore", chat_face, ()),
        ("percored chat, IRC-sized lines", "percore", chat_face,
         ("--size", str(64 + IRC_EXTRA))),
    ]


def case_irc(suite):
    """One channel of --members (1,000): saturation (closed loop) and a
    fixed 100 lines/s (open loop), in alternating rounds, a fresh server
    for every run."""
    o = suite.o
    rows = []
    members = o.members
    have_ngircd = bool(suite.need(NGIRCD, "ngircd"))
    dirs, targets = servers(suite)
    closed = (f"closed loop, {SENDERS} senders x {o.chat_pipeline} "
              "in flight")
    workloads = [("saturation", closed, ["-p", o.chat_pipeline], {}),
                 ("load", f"open loop, {RATE} lines/s", ["-r", RATE],
                  {"rate": RATE})]
    rounds = 1 if o.quick else o.chat_rounds
    try:
        for rnd in range(rounds):
            for kind, label, args, extra in workloads:
                for name, dialect, argv_of, bench_args in targets:
                    suite.say(f"irc {label}, round {rnd + 1}: {name}")
                    row = {"server": name, "dialect": dialect,
                           "workload": label, "kind": kind,
                           "members": members, "round": rnd + 1, **extra}
                    if name == "ngircd" and not have_ngircd:
                        row["result"] = {"error": f"{NGIRCD} is missing "
                                         "(apt-get install ngircd)"}
                        rows.append(row)
                        continue
                    try:
                        srv = suite.start(name, argv_of)
                    except RuntimeError as e:
                        row["result"] = {"error": str(e)[-300:]}
                    else:
                        with srv:
                            row["result"] = suite.run_bench(
                                "chat", srv, "--target", dialect,
                                "--members", members, "--senders", SENDERS,
                                *args, *bench_args, *suite.timed())
                    rows.append(row)
    finally:
        for ng in dirs:
            ng.remove()
    return rows


# ---- its section of docs/benchmarks.md (called by bench/page.py) -------------

def _median(rows, kind, value):
    """{server: the row of `kind` with the median `value`}, rounds noted."""
    import page
    by = {}
    for x in rows:
        if x["kind"] == kind:
            by.setdefault(x["server"], []).append(x)
    out = {}
    for name, xs in by.items():
        good = sorted((x for x in xs if value(x["result"])),
                      key=lambda x: value(x["result"]))
        pick = good[(len(good) - 1) // 2] if good else xs[0]
        if len(xs) > 1:
            pick = dict(pick, workload=pick["workload"] +
                        f" (median of {len(xs)} rounds)")
        out[name] = pick
    return out


def section(rows):
    import page
    import page_chat

    def cost(r):
        c = page.server(r, "cpu_s")
        return 1e6 * c / r["messages"] if c and r.get("messages") else None
    sat = _median(rows, "saturation", page.per_cpu_s)
    light = _median(rows, "load", lambda r: cost(r) if page.ok(r) else None)
    members = rows[0]["members"] if rows else 1000
    out = [f"## IRC: one {members:,}-member channel\n",
           f"ngircd (Debian's IRC server), percored's `irc` face and "
           f"percored's `chat` face, each on one CPU with one worker; "
           f"{SENDERS} members of the channel send. percore-bench speaks "
           f"IRC to the first two (`--target irc`: NICK, USER, JOIN "
           f"#bench0, PRIVMSG) and its chat protocol to the third. An IRC "
           f"server does not send a sender its own lines, so there a line "
           f"is {members - 1:,} deliveries, not {members:,}; and in the "
           f"closed loop a sender's next line goes when the last member of "
           f"the channel on its thread has received the last one (over "
           f"chat, when it hears its own). ngircd runs with no flood "
           f"penalty (`MaxPenaltyTime = 0`, every user `+F`), no DNS or "
           f"IDENT look-ups and no connection, channel or nick-length "
           f"limits (bench/ircbench.py writes its config); its output "
           f"limit stays: a client whose write buffer would pass 32 KiB "
           f"is disconnected (`WRITEBUFFER_MAX_LEN`), which members that "
           f"read never reach.\n"]
    if sat:
        out.append("### Saturation\n")
        out.append(page.table(page_chat.CHAT_HEAD, [page_chat.chat_row(x)
                                                    for x in sat.values()]))
    if light:
        out.append(f"### {RATE} lines/s\n")
        out.append(page.table(page_chat.CHAT_HEAD, [page_chat.chat_row(x)
                                                    for x in light.values()]))
    names = list(dict.fromkeys(x["server"] for x in rows))
    base = sat.get("ngircd"), light.get("ngircd")
    cells = []
    for n in names:
        s, lo = sat.get(n), light.get(n)
        v = page.per_cpu_s(s["result"]) if s else None
        c = cost(lo["result"]) if lo and page.ok(lo["result"]) else None
        b0 = page.per_cpu_s(base[0]["result"]) if base[0] else None
        b1 = (cost(base[1]["result"]) if base[1] and
              page.ok(base[1]["result"]) else None)
        cells.append([n, page.num(v) if v else "-",
                      f"{v / b0:.2f}×" if v and b0 else "-",
                      f"{c:.2f} µs" if c else "-",
                      f"{c / b1:.2f}×" if c and b1 else "-"])
    out.append("Side by side (an IRC line of 64 bytes of text is "
               f"{IRC_EXTRA} bytes longer on the wire than a chat line; the "
               "last row sends chat lines of that length):\n")
    out.append(page.table(
        ["server", "deliveries per CPU-second (saturation)", "vs ngircd",
         f"CPU per delivery at {RATE} lines/s", "vs ngircd"], cells))
    return "\n".join(out)


def targets(rows):
    """Rows for the page's Targets table: the irc face against ngircd and
    against the chat face (saturation, deliveries per CPU-second)."""
    import page
    sat = _median(rows, "saturation", page.per_cpu_s)
    value = {n: page.per_cpu_s(x["result"]) for n, x in sat.items()}
    irc, ng = value.get("percored irc"), value.get("ngircd")
    chat, sized = value.get("percored chat"), \
        value.get("percored chat, IRC-sized lines")
    out = []
    if irc and ng:
        out.append(["irc face deliveries per server CPU-second, "
                    "1000-member channel, one worker", "≥ 5× ngircd",
                    f"{irc / ng:.2f}× ({page.num(irc)} vs {page.num(ng)})",
                    page.verdict(irc >= 5 * ng)])
    if irc and chat:
        out.append(["irc face vs chat face, deliveries per server "
                    "CPU-second", "≥ 0.90×",
                    f"{irc / chat:.2f}× ({page.num(irc)} vs "
                    f"{page.num(chat)}); with chat lines as long as IRC's: "
                    + (f"{irc / sized:.2f}×" if sized else "-"),
                    page.verdict(irc >= 0.9 * chat)])
    return out


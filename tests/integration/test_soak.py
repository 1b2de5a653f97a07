"""Soak: one percored (2 workers; echo, TLS echo, chat, irc, two web and
metrics listeners; flood control off) holds 15,000 connections for
SOAK_SECONDS (default 120) under churn, then must give back what they
took.

The connections (soak_streams.py, soak.py, soak_ws.py; the selector loop
and socket plumbing they share in soak.py):
- 13,820 mostly idle echo connections that now and then send a random
  payload (1 byte to 256 KiB) and check every byte comes back in order;
- 300 TLS echo connections doing the same over TLS 1.3 (a test
  certificate they verify), living about 30 s each, so that there are
  full and resumed handshakes all the time (about half the reconnects
  offer the last session);
- 400 HTTP keep-alive clients of the web face: the built-in chat page on
  `web`, files 0 B to 1 MiB from a `root` on `files`, pipelined and
  conditional (ETag, 304) GETs, every response checked whole;
- 480 chat, IRC and WebSocket members over 20 rooms, 4 per room and face
  staying the whole run, 4 per room and face coming and going.
Connections and churning members leave at random, by every way there is
(a close, a half close, a close with unread input, a reset; TLS also by
close_notify; members also QUIT/quit and PART/part) and others take their
place; the test keeps 15,000 open. Everything random comes from per-slot
RNGs seeded by SOAK_SEED, so a run's sequence of payloads, requests,
lines, rooms and leavings is reproducible (their timing is not).

What must hold (checked as each byte and line arrives, in the streams and
members; the views once a round is over, in Soak; the rest at the end,
in SoakTest):
- every echoed byte, in order, clear or TLS; a half-closed echo
  connection gets all it sent before the server's FIN; every HTTP
  response its status and every byte of its file;
- every member's view of a room (what it received between its join and
  its leaving: lines, joins, parts, quits, of all three faces) holds each
  sender's lines in increasing order without gaps, with the right text;
  the views of the members that stayed the whole run are suffixes of one
  another (one order, nothing missed), and the view of every member that
  came and went is a contiguous piece of it;
- the stayers see every line of every stayer, all lines of a member that
  left by QUIT, PART or a half close, at least those a member saw of its
  own before it reset, and its leaving as a part or a quit;
- no connection is closed by the server unasked, no limit or idle timeout
  fires, no TLS handshake fails, percored logs no warning or error; each
  face verified something, some TLS handshakes resumed, some GETs got 304;
- afterwards, with every client gone: metrics count no connection but
  the scrape itself, percored holds as many fds as when it started, its
  RSS is within 10% of what it was before the soak, and it stops cleanly
  (percored.py: exit 0, no sanitizer report). Sanitizer builds (PC_SANITIZE
  set) skip the RSS check: shadow memory makes it meaningless.

The RSS baseline is taken after a warm-up round of the same shape (all
15,000 connections, 10 s of the same traffic) has come and gone, so what
grows once and stays (jemalloc's arenas and metadata, tables sized for
15,000 connections) is in it: the check is that a long soak leaves no more
behind than a short round. percored's jemalloc runs here with
MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0 (SOAK_MALLOC_CONF, empty for
the built-in settings), so that freed memory leaves RSS when it is freed:
with the defaults (10 s decay, no background thread) an idle worker's arena
keeps its freed pages until the worker allocates again, and the RSS after
a round lands anywhere between what is in use and the peak (here 9.0 to
10.4 MiB after rounds that leave 8.1 MiB in use, peak 10.9 MiB).

Run alone, from tests/integration:
    SOAK_SECONDS=30 python3 -m unittest -v test_soak
The default (ctest, CI) takes about 2.5 minutes with setup and teardown.
A longer run, for the figures in the docs (not under ctest, whose
TIMEOUT of 600 s per test allows SOAK_SECONDS up to about 500):
    SOAK_SECONDS=900 python3 -m unittest -v test_soak
It prints one summary line (prefix `soak:`). SOAK_SEED changes the seed,
SOAK_CONNECTIONS the number held (for debugging; 15,000 is the test)."""

import collections
import os
import random
import re
import resource
import shutil
import sys
import tempfile
import time
import unittest

from percored import SANITIZED, SLOW, Percored
from soak import KIND_NAME, L_, ROOMS, SEED, Failure, Loop, Member
from soak_streams import Echo, TlsEcho, WebPage
from soak_ws import WsMember
from tls_support import Certs, client_context
from webclient import get

# Sanitizer builds (CI runs the suite under two) hold the same 15,000
# connections for a shorter while: the CI run must stay within its time.
SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS",
                                    "30" if SANITIZED else "120"))
# SOAK_SEED: soak.SEED, read there (the members' RNGs are seeded there).
CONNECTIONS = int(os.environ.get("SOAK_CONNECTIONS", "15000"))
MALLOC_CONF = os.environ.get("SOAK_MALLOC_CONF",
                             "dirty_decay_ms:0,muzzy_decay_ms:0")
WARMUP_SECONDS = 10
WORKERS = 2
FACES = ("chat", "irc", "ws")
PER_ROOM = 4             # per room and face: stayers, and churning slots
TLS_CONNECTIONS = 300    # TLS echo connections (soak_streams.TlsEcho)
HTTP_CONNECTIONS = 400   # web face HTTP clients (soak_streams.WebPage)
FILE_SIZES = (0, 1, 100, 1500, 16384, 65537, 300000, 1 << 20)  # files root
RSS_SLACK = 0.10


def listen_drops():
    """The kernel's accept-queue overflows and SYN cookies sent, for the
    whole network namespace (other processes' too)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            d = dict(zip(names.split()[1:], map(int, values.split()[1:])))
            return collections.Counter(
                overflows=d.get("ListenOverflows", 0),
                cookies=d.get("TCPReqQFullDoCookies", 0)
                + d.get("SyncookiesSent", 0))
    return collections.Counter()


class Soak:
    """One round: ramp up to CONNECTIONS, run, end, check, everyone leaves."""

    def __init__(self, srv, test):
        self.srv, self.test = srv, test
        self.loop = Loop(self)
        self.nicks = {}
        self.rss_peak = 0
        self.fd_peak = 0
        self.server_peak = 0
        self.next_sample = 0
        self.next_scrape = 0

    def nick_id(self, nick):
        i = self.nicks.get(nick)
        if i is None:
            i = self.nicks[nick] = len(self.nicks)
        return i

    def fds(self):
        return len(os.listdir(f"/proc/{self.srv.proc.pid}/fd"))

    def connections(self):
        """Open connections by the server's metrics, less the scrape."""
        return int(self.srv.total("percore_connections_open")) - 1

    def tick(self):
        now = time.monotonic()
        if now >= self.next_sample:
            self.next_sample = now + 1
            self.rss_peak = max(self.rss_peak, self.srv.rss_kib())
            self.fd_peak = max(self.fd_peak, self.fds())
            if self.srv.proc.poll() is not None:
                raise Failure("percored exited:\n" + self.srv.output()[-3000:])
        if now >= self.next_scrape and self.phase == "soak":
            self.next_scrape = now + 5
            self.server_peak = max(self.server_peak, self.connections())

    def waiting_for(self, what):
        if what.startswith("ramp"):
            return f"{self.open} open, {self.loop.inflight} in flight"
        if what.startswith("echo"):
            left = [e for e in self.streams if not e.quiet()]
            return f"{len(left)} left, e.g. {left[:3]}"
        if what.startswith("churners"):
            left = [m for m in self.members if not m.stayer
                    and m.state != "closed"]
            return f"{len(left)} left, e.g. {left[:3]}"
        if what.startswith("stayers"):
            return "; ".join(self.stayer_lacks()[:5])
        if what.startswith("everyone"):
            return f"{self.open} open"
        return ""

    def run(self, seconds):
        self.phase = "ramp"
        self.open = self.peak = 0
        self.verified = collections.Counter()    # bytes, by face
        self.sends = collections.Counter()
        self.churn = collections.Counter()
        self.tls = collections.Counter()         # handshakes, resumed
        self.responses = collections.Counter()   # HTTP, by status
        self.departures = collections.Counter()
        self.said = collections.Counter()
        self.deliveries = collections.Counter()
        self.self_seen = {}
        self.left_as = {}
        self.views = collections.Counter()
        self.rooms = {f"soak{r}": {"all": []} for r in range(ROOMS)}
        loop = self.loop
        self.members = []
        slot = collections.Counter()
        for r in range(ROOMS):
            for face in FACES:
                for stayer in (True, False):
                    for _ in range(PER_ROOM):
                        if face == "ws":
                            m = WsMember(self, slot[face], stayer, f"soak{r}")
                        else:
                            m = Member(self, face, slot[face], stayer,
                                       f"soak{r}")
                        slot[face] += 1
                        self.members.append(m)
        self.streams = [TlsEcho(self, i) for i in range(TLS_CONNECTIONS)]
        self.streams += [WebPage(self, i) for i in range(HTTP_CONNECTIONS)]
        self.streams += [Echo(self, i) for i in range(
            CONNECTIONS - len(self.members) - len(self.streams))]
        t0 = time.monotonic()
        # The stayers first: every other member joins after them, so the
        # view of the stayer that joined first holds every other view's
        # start.
        loop.queue.extend(m for m in self.members if m.stayer)
        loop.until(lambda: not loop.queue and loop.inflight == 0, 60,
                   "ramp up of the stayers")
        loop.queue.extend(m for m in self.members if not m.stayer)
        loop.queue.extend(self.streams)
        loop.until(lambda: not loop.queue and loop.inflight == 0,
                   60 + CONNECTIONS / 250, "ramp up")
        ramp = time.monotonic() - t0
        held = self.connections()
        self.test.assertEqual(self.open, CONNECTIONS)
        self.test.assertEqual(held, CONNECTIONS,
                              "the server counts other connections than ours")
        self.server_peak = max(self.server_peak, held)

        self.phase = "soak"
        start = time.monotonic()
        for p in self.streams + self.members:
            p.schedule()
        end = start + seconds
        while time.monotonic() < end:
            loop.once()
        self.phase = "end"
        soaked = time.monotonic() - start
        # Nothing is said any more: the echoes come back, the churners
        # leave, the stayers see every line and every leaving.
        loop.until(lambda: all(e.quiet() for e in self.streams), 60,
                   "echoes and responses to come back")
        for m in self.members:
            if not m.stayer:
                m.end()
        loop.until(lambda: all(m.state == "closed" for m in self.members
                               if not m.stayer), 60, "churners to leave")
        loop.until(lambda: not self.stayer_lacks(), 60,
                   "stayers to see every line")
        settle = time.monotonic() + 0.5     # anything more would be wrong
        while time.monotonic() < settle:
            loop.once()
        self.check_views()
        self.leave()
        return {"ramp": ramp, "soak": soaked,
                "end": time.monotonic() - start - soaked}

    def stayer_lacks(self):
        """What stayers have not seen yet, as sentences; [] when done."""
        lacks = []
        for name, room in self.rooms.items():
            idents = room["all"]
            stayers = [i for i in idents if i.member.stayer]
            others = [i for i in idents if not i.member.stayer]
            for s in stayers:
                for t in stayers:
                    if t.sent and s.last.get(t.id, -1) != t.sent - 1:
                        lacks.append(f"{s} saw {s.last.get(t.id, -1) + 1} of "
                                     f"{t.sent} lines of {t}")
                for t in others:
                    if t.id not in s.gone:
                        lacks.append(f"{s} did not see {t} ({t.how}) leave")
                extra = s.present - {t.id for t in stayers}
                if extra:
                    lacks.append(f"{s} sees {len(extra)} unknown members")
        return lacks

    def check_views(self):
        t = self.test
        for name, room in self.rooms.items():
            stayers = [i for i in room["all"] if i.member.stayer]
            ref = max(stayers, key=lambda i: len(i.view))
            index = {e: k for k, e in enumerate(ref.view)}
            self.test.assertEqual(len(index), len(ref.view),
                                  f"{ref} saw an event twice")
            for s in stayers:
                k = index.get(s.view[0])
                if k is None or ref.view[k:] != s.view:
                    t.fail(f"{s} and {ref} saw {name} differently: "
                           f"{self.diff(ref.view[k or 0:], s.view)}")
            self.views["stayers"] += len(stayers)
            for i in room["all"]:
                if i.member.stayer:
                    continue
                self.views["others"] += 1
                k = index.get(i.view[0])
                if k is None or ref.view[k:k + len(i.view)] != i.view:
                    t.fail(f"{i} ({i.how}) and {ref} saw {name} "
                           f"differently: "
                           f"{self.diff(ref.view[k or 0:], i.view)}")
                got = ref.last.get(i.id, -1) + 1
                if i.how in ("quit", "part", "halfclose"):
                    t.assertEqual(got, i.sent, f"{ref} saw {got} of the "
                                  f"{i.sent} lines of {i} ({i.how})")
                else:
                    seen = self.self_seen.get(i.id, -1) + 1
                    t.assertGreaterEqual(got, seen, f"{ref} saw {got} lines "
                                         f"of {i}, which saw {seen} itself")
                want = "P" if i.how == "part" else "Q"
                t.assertEqual(self.left_as.get(i.id), want,
                              f"{i} left by {i.how}")

    def diff(self, a, b):
        for k, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return (f"at {k}: {self.show(a[max(0, k - 3):k + 3])} vs "
                        f"{self.show(b[max(0, k - 3):k + 3])}")
        return f"lengths {len(a)} and {len(b)}"

    def show(self, events):
        names = {v: k.decode() for k, v in self.nicks.items()}
        out = []
        for e in events:
            kind, sid = e & 3, e >> 33
            n = (e >> 2) & ((1 << 31) - 1)
            out.append(f"{names[sid]}:{n}" if kind == L_
                       else f"{KIND_NAME[kind]}({names[sid]})")
        return " ".join(out)

    def leave(self):
        """Everyone leaves, by every way there is; the server must see it."""
        self.phase = "leave"
        for m in self.members:
            if m.state == "closed":
                continue
            how = m.rng.choice(("quit", "halfclose", "close", "rst"))
            m.ident.how = how
            if how in ("close", "rst"):
                m.close(how)
            else:
                m.state = "leaving"
                if how == "halfclose":
                    m.flush_then_shutdown()
                else:
                    m.send_quit()
        for e in self.streams:
            if e.state != "closed":
                e.end(e.rng.choice(e.LEAVE_WAYS))
        self.loop.until(lambda: self.open == 0, 60, "everyone to leave")


class SoakTest(unittest.TestCase):
    def test_soak(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = CONNECTIONS + 200
        if hard != resource.RLIM_INFINITY and hard < need:
            self.skipTest(f"open files limit {hard} < {need}")
        if soft != resource.RLIM_INFINITY and soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        certs = Certs()
        self.addCleanup(certs.close)
        root = tempfile.mkdtemp(prefix="percore-soak-")
        self.addCleanup(shutil.rmtree, root)
        files = {}
        rng = random.Random(f"{SEED} files")
        for n in FILE_SIZES:
            files[f"/f{n}.bin"] = rng.randbytes(n)
            with open(os.path.join(root, f"f{n}.bin"), "wb") as f:
                f.write(files[f"/f{n}.bin"])
        # An idle keep-alive connection is held, as an idle echo one.
        web_keys = [f"--set={w}.{k}" for w in ("web", "files")
                    for k in ("keepalive_timeout=86400", "flood_rate=0")]
        with Percored("--set", "chat.flood_rate=0",
                      "--set", "irc.flood_rate=0", *web_keys,
                      "--set", f"files.root={root}",
                      "--set", f"tls.tls_certificate={certs.path('ec.pem')}",
                      "--set", f"tls.tls_key={certs.path('ec.key')}",
                      "--set", f"server.max_connections={CONNECTIONS + 1000}",
                      listeners=(("echo", "echo"), ("chat", "chat"),
                                 ("irc", "irc"), ("web", "web"),
                                 ("files", "web"), ("tls", "echo"),
                                 ("metrics", "metrics")),
                      workers=WORKERS,
                      env={"MALLOC_CONF": MALLOC_CONF} if MALLOC_CONF
                      else None) as srv:
            soak = Soak(srv, self)
            soak.tls_context = client_context(certs)
            fds_fresh, rss_fresh = soak.fds(), srv.rss_kib()
            # (After the count: the server may not have closed it yet.)
            status, _, page = get(srv.ports["web"])
            self.assertEqual(status, 200)
            soak.web_files = {"web": {"/": page, "/index.html": page},
                              "files": files}
            drops = listen_drops()
            soak.run(WARMUP_SECONDS)
            self.settle(soak, fds_fresh)
            rss_before, fds_before = srv.rss_kib(), soak.fds()
            closed_before = self.closed(srv)
            soak.rss_peak = soak.fd_peak = soak.server_peak = 0
            times = soak.run(SOAK_SECONDS)
            settled = self.settle(soak, fds_fresh)
            rss_after = self.rss_settled(srv, rss_before)
            fds_after = soak.fds()
            closed = self.closed(srv) - closed_before
            srv_failures = {dict(labels)["reason"]: v for (k, labels), v
                            in srv.metrics().items() if v and k ==
                            "percore_tls_handshake_failures_total"}
            cpu = srv.cpu_seconds()
            out = srv.stop()
        drops = listen_drops() - drops
        # Not a worker that could not be pinned (a container's CPU set):
        # running out of fds, an arena, an error.
        warnings = [l for l in out.splitlines()
                    if re.search(r" (warning|err): ", l)
                    and "cannot pin" not in l]
        print(f"\nsoak: {soak.peak} connections peak (server "
              f"{soak.server_peak}), {times['soak']:.0f} s (ramp "
              f"{times['ramp']:.1f} s, end {times['end']:.1f} s, seed {SEED});"
              f" bytes verified: echo {soak.verified['echo'] / 1e6:.1f} MB "
              f"({soak.sends['echo']} payloads, {soak.churn['echo']} "
              f"reconnects), tls {soak.verified['tls'] / 1e6:.1f} MB "
              f"({soak.sends['tls']} payloads, {soak.tls['handshakes']} "
              f"handshakes, {soak.tls['resumed']} resumed), http "
              f"{soak.verified['http'] / 1e6:.1f} MB ({soak.responses[200]}"
              f" 200, {soak.responses[304]} 304); lines said/received and "
              f"verified: chat {soak.said['chat']}/{soak.deliveries['chat']}"
              f", irc {soak.said['irc']}/{soak.deliveries['irc']}, ws "
              f"{soak.said['ws']}/{soak.deliveries['ws']};"
              f" members left by {dict(soak.departures)}, views of "
              f"{soak.views['stayers']} stayers and {soak.views['others']} "
              f"others checked; RSS KiB fresh {rss_fresh}, before "
              f"{rss_before}, peak {soak.rss_peak}, after {rss_after}"
              f"{' (not checked: sanitizer)' if SANITIZED else ''}; fds "
              f"fresh {fds_fresh}, before {fds_before}, peak {soak.fd_peak},"
              f" after {fds_after}; closed {dict(sorted(closed.items()))}, "
              f"all within {settled:.1f} s; percored CPU {cpu:.0f} s (both "
              f"rounds); listen queue overflows "
              f"{drops['overflows']}, SYN cookies {drops['cookies']} (this "
              f"host, both rounds)", file=sys.stderr, flush=True)
        self.assertEqual(warnings, [])
        for reason in ("idle", "input_limit", "output_limit", "shutdown"):
            self.assertEqual(closed[reason], 0,
                             f"connections closed for {reason}")
        self.assertEqual(soak.peak, CONNECTIONS)
        for face in ("echo", "tls", "http"):
            self.assertGreater(soak.verified[face], 0, face)
        for face in FACES:
            self.assertGreater(soak.deliveries[face], 0, face)
        self.assertGreater(soak.responses[304], 0)
        self.assertGreater(soak.tls["resumed"], 0)
        self.assertEqual(srv_failures, {}, "TLS handshakes failed")
        self.assertEqual(fds_before, fds_fresh)
        self.assertEqual(fds_after, fds_fresh)
        if not SANITIZED:
            self.assertLessEqual(rss_after, rss_before * (1 + RSS_SLACK),
                                 f"RSS {rss_before} KiB before the soak, "
                                 f"{rss_after} KiB after")

    @staticmethod
    def closed(srv):
        out = collections.Counter()
        for (k, labels), v in srv.metrics().items():
            if k == "percore_connections_closed_total":
                out[dict(labels)["reason"]] += int(v)
        return out

    def settle(self, soak, fds_fresh):
        """Waits until the server has closed every connection and fd."""
        t0 = time.monotonic()
        deadline = t0 + 30 * SLOW
        while True:
            conns, fds = soak.connections(), soak.fds()
            if conns == 0 and fds == fds_fresh:
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                self.fail(f"server still has {conns} connections, {fds} fds "
                          f"(at start {fds_fresh})")
            time.sleep(0.1)

    @staticmethod
    def rss_settled(srv, before):
        """RSS once within the slack, or after 10 s."""
        rss, deadline = srv.rss_kib(), time.monotonic() + 10
        while (not SANITIZED and rss > before * (1 + RSS_SLACK)
               and time.monotonic() < deadline):
            time.sleep(0.5)
            rss = srv.rss_kib()
        return rss


if __name__ == "__main__":
    unittest.main()

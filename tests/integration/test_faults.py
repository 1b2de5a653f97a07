"""Fault tests over every backend percored offers (read from --help by
test_backends.offered_backends, the one list), each against a real
percored with two workers over loopback: fd exhaustion and recovery,
clients that reset mid-write, half-close, never read or never speak,
partial writes under a 4 KiB send buffer, SIGTERM under full load,
SIGHUP/SIGUSR1 storms during traffic, and a module (reaper.c) that aborts
connections from callbacks of other connections. Tests that involve
accepting or the main thread (fd exhaustion, SIGTERM, signal storms) run
in both distribution modes too.

Behaviour only, never speed: byte-exact echoes, streams that end on a
unit boundary, exit status 0 and no sanitizer report (Percored.stop and
wait_exit), the server's own close reasons. Every wait is bounded and
scaled by SLOW for the sanitizer builds."""

import contextlib
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
import unittest

from percored import SLOW, Percored, wait_for
from test_backends import offered_backends
from test_echo import echo_many
from test_lifecycle import check_fd_exhaustion
from test_modules import build_module
from test_shutdown_units import LINE, Reader, chat_member, talk

HERE = os.path.dirname(os.path.abspath(__file__))
DISTRIBUTIONS = ("reuseport", "acceptor")
IDLE = 0.5 * SLOW  # idle_timeout of the `idle` listener, seconds
# One server shape for every test: `echo` with the defaults, `idle` with a
# short idle_timeout, `small` with a 4 KiB SO_SNDBUF on accepted sockets.
LISTENERS = (("echo", "echo"), ("idle", "echo"), ("small", "echo"),
             ("chat", "chat"), ("metrics", "metrics"))
RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends a RST


@contextlib.contextmanager
def serving(backend, distribution, *extra, listeners=LISTENERS):
    """A percored on `backend` in `distribution` mode with `listeners`;
    the stop at the end checks exit status 0 and no sanitizer report."""
    with Percored("--backend", backend, "--distribution", distribution,
                  "--set", f"idle.idle_timeout={IDLE}",
                  "--set", "small.sndbuf=4K", "--set", "chat.flood_rate=0",
                  *extra, listeners=listeners, workers=2) as srv:
        used = re.search(r"running: \d+ workers, backend (\S+)",
                         srv.output()).group(1)
        assert backend in ("auto", used), (backend, used)
        yield srv


class Background(threading.Thread):
    """fn(*args) in a thread; outcome() returns its result or raises what
    it raised."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self.fn, self.args, self.result, self.error = fn, args, None, None
        self.start()

    def run(self):
        try:
            self.result = self.fn(*self.args)
        except BaseException as e:  # re-raised in the test's thread
            self.error = e

    def outcome(self, timeout=60):
        self.join(timeout * SLOW)
        if self.is_alive():
            raise AssertionError(f"{self.fn.__name__} did not finish")
        if self.error:
            raise self.error
        return self.result


def client(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:  # before connect, so the window is small from the start
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10 * SLOW)
    s.connect(("127.0.0.1", port))
    return s


def fill(s, limit=16 << 20):
    """Sends without reading until the socket takes nothing for 0.2 s: the
    server, its echo unread, has stopped reading. Returns what was sent."""
    s.setblocking(False)
    sent, chunk = bytearray(), os.urandom(65536)
    while len(sent) < limit:
        try:
            sent += chunk[:s.send(chunk)]
        except BlockingIOError:
            if not select.select([], [s], [], 0.2)[1]:
                break
    s.settimeout(10 * SLOW)
    return bytes(sent)


def read_to_end(s):
    """Everything until EOF; a reset ends it too (what arrived before it
    is still read first)."""
    got = bytearray()
    try:
        while chunk := s.recv(1 << 16):
            got += chunk
    except ConnectionResetError:
        pass
    return bytes(got)


def stream_echo(port, data, half_close=False, rcvbuf=None):
    """Writes `data` from one thread while reading its echo in this one;
    with half_close, shuts down writing after it and reads to EOF."""
    s = client(port, rcvbuf)

    def write():
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
    writer = Background(write)
    got = bytearray()
    while half_close or len(got) < len(data):
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        got += chunk
    writer.outcome()
    s.close()
    return bytes(got)


def settled(srv, open_=0):
    """Waits until only `open_` connections (and the scrape's own) remain."""
    wait_for(lambda: srv.total("percore_worker_connections") <= open_ + 1,
             what="connections to close")


class Faults(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.backends = offered_backends()

    def each(self, check, distributions=("reuseport",)):
        for backend in self.backends:
            for distribution in distributions:
                with self.subTest(backend=backend, distribution=distribution):
                    check(backend, distribution)

    def assertServing(self, srv, name="echo"):
        self.assertIsNone(srv.proc.poll(), srv.output())
        self.assertGreater(echo_many(srv.ports[name], 4, 2, seed=99), 0)

    def assertPrefix(self, got, sent, who):
        self.assertEqual(got, sent[:len(got)], f"{who}: not a prefix of "
                         f"what it sent ({len(got)} of {len(sent)} bytes)")

    # ---- fd exhaustion ------------------------------------------------

    def test_fd_exhaustion_and_recovery(self):
        self.each(lambda backend, distribution: check_fd_exhaustion(
            self, "--backend", backend, "--distribution", distribution,
            idle=0.5), DISTRIBUTIONS)

    # ---- clients that misbehave ---------------------------------------

    def test_resets_mid_write_while_others_echo_byte_exact(self):
        self.each(self.check_resets)

    def check_resets(self, backend, distribution):
        with serving(backend, distribution) as srv:
            port = srv.ports["echo"]
            # Round 1: clients that never read until the server holds
            # output it cannot write, then reset: its next write fails.
            doomed = [client(port, rcvbuf=4096) for _ in range(8)]
            for s in doomed:
                fill(s, 4 << 20)
            # (fill stops at a 0.2 s stall: a slow build may still be
            # reading what the kernel holds, and queue its echo soon.)
            wait_for(lambda: srv.total("percore_worker_output_queued_bytes") > 0,
                     what="the server to be mid-write")
            others = Background(echo_many, port, 20, 6, 1)
            for s in doomed:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
                s.close()
            # Round 2: resets in the middle of the client's own write,
            # while the server reads and echoes it.
            for i in range(20):
                s = client(port)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    s.send(os.urandom(200000))
                if i % 2:
                    with contextlib.suppress(BlockingIOError):
                        s.recv(1000)
                s.close()
            self.assertGreater(others.outcome(), 0)
            settled(srv)
            self.assertGreaterEqual(srv.total("percore_connections_closed_total"), 28)
            self.assertServing(srv)

    def test_half_close_still_receives_every_byte(self):
        self.each(self.check_half_close)

    def check_half_close(self, backend, distribution):
        rng = random.Random(5)
        with serving(backend, distribution) as srv:
            payloads = [b""] + [os.urandom(rng.choice((1, 1000, 65536,
                                                       300000, 1 << 20)))
                                for _ in range(9)]
            clients = [Background(stream_echo, srv.ports["echo"], p, True)
                       for p in payloads]
            for i, (c, p) in enumerate(zip(clients, payloads)):
                self.assertEqual(c.outcome(), p, f"client {i}")
            settled(srv)
            self.assertServing(srv)

    def test_never_reading_client_is_closed_while_others_are_served(self):
        self.each(self.check_never_reading)

    def check_never_reading(self, backend, distribution):
        with serving(backend, distribution, "--set", "chat.sendq=128K",
                     "--set", "chat.sndbuf=16K") as srv:
            # Echo: back-pressure stops reading from them, so nothing moves
            # and idle_timeout closes them.
            deaf = [client(srv.ports["idle"], rcvbuf=4096) for _ in range(3)]
            fills = [Background(fill, s) for s in deaf]
            sent = [f.outcome() for f in fills]
            others = Background(echo_many, srv.ports["idle"], 10, 4, 2)
            # Chat: a member that never reads is cut at sendq, with whole
            # lines and its goodbye, while the room is served: a member
            # that reads (and talks) hears every line.
            mute = client(srv.ports["chat"], rcvbuf=4096)
            mute.sendall(b"/join deaf\n")
            hearer = Reader(chat_member(srv.ports["chat"], "deaf"), 0)
            time.sleep(0.2 * SLOW)  # joined
            hearer.start()
            # 1,000 lines (300 KB) are far more than its sendq and socket
            # buffers hold: it is cut on the way. Read it right after, as a
            # peer that still has not read PC_CUT_LINGER (5 s) after its
            # cut is closed with the rest of its last line unsent.
            count = 1000
            for i in range(count):
                if i % 50 == 0:  # stay well within the hearer's sendq
                    wait_for(lambda: i - hearer.data.count(b"\n") < 150,
                             timeout=30, what="the hearer to keep up")
                hearer.sock.sendall(f"{i} {LINE}\n".encode())
            stream = read_to_end(mute).decode()
            mute.close()  # its EOF ends the server's linger at once
            self.assertGreater(others.outcome(), 0)
            wait_for(lambda: srv.total("percore_connections_closed_total", reason="idle") >= 3,
                     what="the deaf clients closed by idle_timeout")
            for i, (s, data) in enumerate(zip(deaf, sent)):
                self.assertPrefix(read_to_end(s), data, f"deaf client {i}")
                s.close()
            wait_for(lambda: srv.total("percore_connections_closed_total",
                                       reason="output_limit") >= 1,
                     what="the mute member closed")
            self.assertTrue(stream.endswith("\n"), stream[-100:])
            lines = stream.split("\n")[:-1]
            self.assertEqual(lines[-1], "*** disconnected: sendq exceeded")
            for text in lines[:-1]:
                self.assertRegex(text, rf"^(\S+: \d+ {LINE}|\*\*\* .*|OK .*)$")
            # Its own last line, relayed through the room's home worker,
            # has come back before its EOF closes it.
            last = f": {count - 1} {LINE}\n".encode()
            wait_for(lambda: last in hearer.data, what="the last line")
            hearer.sock.shutdown(socket.SHUT_WR)
            hearer.join(30 * SLOW)
            heard = re.findall(rf": (\d+) {LINE}\n".encode(), hearer.data)
            self.assertEqual([int(n) for n in heard], list(range(count)))
            # Only those: the busy clients were never idle, and the member
            # that read was not cut.
            self.assertEqual(srv.total("percore_connections_closed_total", reason="idle"), 3)
            self.assertEqual(srv.total("percore_connections_closed_total",
                                       reason="output_limit"), 1)
            hearer.sock.close()
            self.assertServing(srv, "idle")

    def test_silent_clients_are_closed_by_idle_timeout(self):
        self.each(self.check_silent)

    def check_silent(self, backend, distribution):
        with serving(backend, distribution) as srv:
            # One sends half a message and stops (slowloris on echo).
            silent = [client(srv.ports["idle"])]
            silent[0].sendall(b"half a mess")
            silent += [client(srv.ports["idle"]) for _ in range(9)]
            active = client(srv.ports["idle"])
            stop = threading.Event()

            def ping():
                n = 0
                while not stop.wait(IDLE / 5):
                    active.sendall(b"ping%d;" % n)
                    want = b"ping%d;" % n
                    got = b""
                    while len(got) < len(want):
                        chunk = active.recv(len(want) - len(got))
                        assert chunk, "the active client was closed"
                        got += chunk
                    assert got == want, (got, want)
                    n += 1
                return n
            pinger = Background(ping)
            try:
                self.assertEqual(silent[0].recv(100), b"half a mess")
                for i, s in enumerate(silent):
                    self.assertEqual(s.recv(100), b"", f"silent client {i}")
                    s.close()
                time.sleep(IDLE / 2)  # older than a timeout: it survives
            finally:
                stop.set()
            self.assertGreater(pinger.outcome(), 0)
            self.assertEqual(srv.total("percore_connections_closed_total", reason="idle"), 10)
            active.sendall(b"still here")
            self.assertEqual(active.recv(100), b"still here")
            active.close()

    def test_partial_writes_under_a_4k_send_buffer_are_byte_exact(self):
        self.each(self.check_small_sndbuf)

    def check_small_sndbuf(self, backend, distribution):
        with serving(backend, distribution) as srv:
            before = srv.total("percore_writes_total", listener="small")
            payloads = [os.urandom(size) for size in (3 << 20, 1 << 20,
                                                      100000)]
            # A 16 KiB receive window in front of the 4 KiB send buffer
            # (8 KiB: the kernel doubles it) keeps the server's socket
            # full, so its 64 KiB echoes leave in partial writes.
            streams = [Background(stream_echo, srv.ports["small"], p, False,
                                  16384) for p in payloads]
            for i, (c, p) in enumerate(zip(streams, payloads)):
                self.assertEqual(c.outcome(), p, f"stream {i}")
            # A write that fills the socket ends a flush, so partial writes
            # show as more flushes than 64 KiB reads (about 8 times here;
            # as many as reads with the default buffers).
            writes = srv.total("percore_writes_total", listener="small") - before
            self.assertGreater(writes, 2 * sum(map(len, payloads)) // 65536)
            self.assertServing(srv, "small")

    # ---- signals under load -------------------------------------------

    def test_sigterm_under_full_load_ends_streams_on_units(self):
        self.each(self.check_sigterm, DISTRIBUTIONS)

    def check_sigterm(self, backend, distribution):
        # Long enough for the drained clients' last round trip, however
        # slow the build; the rest only makes the test longer.
        drain = 1.0 * min(SLOW, 2)
        with serving(backend, distribution,
                     "--set", f"server.drain_timeout={drain}",
                     "--set", "chat.sendq=256M",
                     "--set", "chat.max_output=512M") as srv:
            stop = threading.Event()
            port = srv.ports["echo"]
            # Chat: slow readers of a loud room; their output piles up.
            readers = [Reader(chat_member(srv.ports["chat"], "loud"), 0.001)
                       for _ in range(2)]
            talker = chat_member(srv.ports["chat"], "loud")
            time.sleep(0.2 * SLOW)  # joined
            for r in readers:
                r.start()
            talkers = [Background(talk, talker, stop, True)]
            # Echo: clients that go on until the server closes them, and
            # clients with a short job that must finish during the drain.
            endless = [Background(self.endless_echo, client(port), stop)
                       for _ in range(4)]
            stopping = threading.Event()
            halfway = [threading.Event() for _ in range(6)]
            finishers = [Background(self.short_job, client(port), i, h,
                                    stopping) for i, h in enumerate(halfway)]
            time.sleep(0.2 * SLOW)  # under load
            for h in halfway:  # accepted and served: not in the backlog
                self.assertTrue(h.wait(30 * SLOW))
            srv.signal(signal.SIGTERM)
            wait_for(lambda: "stopping" in srv.output(), what="stopping")
            stopping.set()
            for i, f in enumerate(finishers):
                sent, got = f.outcome()
                self.assertEqual(got, sent, f"drained client {i}")
            for i, e in enumerate(endless):
                sent, got = e.outcome()
                self.assertGreater(len(got), 0)
                self.assertPrefix(got, sent, f"endless client {i}")
            for r in readers:
                r.join(30 * SLOW)
                self.assertFalse(r.is_alive(), "a member was never closed")
                self.assertNotIn(b"<error>", r.data)
                stream = r.data.decode()
                self.assertTrue(stream.endswith("\n"), stream[-100:])
                lines = stream.split("\n")[:-1]
                self.assertEqual(lines[-1], "*** server shutting down")
                torn = [t for t in lines[:-1] if not re.fullmatch(
                    rf"\S+: \d+ {LINE}|\*\*\* .*|OK .*", t)]
                self.assertEqual(torn, [], "a member received a torn line")
            stop.set()
            for t in talkers:
                t.outcome()
            # Closed, so the server does not linger for them (PC_CUT_LINGER).
            for s in [talker] + [r.sock for r in readers]:
                s.close()
            out = srv.wait_exit()  # status 0, no sanitizer report
            self.assertIn("drain timeout: closing", out)

    @staticmethod
    def short_job(s, i, halfway, stopping):
        """10 messages, each echoed before the next; then, once the server
        is `stopping`, 10 more at once, which the drain must serve."""
        sent, got = bytearray(), bytearray()
        for k in range(11):
            if k < 10:
                msg = b"%d:%d;" % (i, k) * 40
            else:
                halfway.set()
                assert stopping.wait(30 * SLOW), "never stopping"
                msg = b"".join(b"%d:%d;" % (i, k) * 40 for k in range(10, 20))
            s.sendall(msg)
            sent += msg
            while len(got) < len(sent):
                chunk = s.recv(1 << 16)
                if not chunk:
                    return bytes(sent), bytes(got)
                got += chunk
        s.close()
        return bytes(sent), bytes(got)

    @staticmethod
    def endless_echo(s, stop):
        """Sends as fast as the server reads, reading the echo, until the
        server closes; returns what was sent and what came back."""
        sent, done = bytearray(), threading.Event()
        chunk = os.urandom(16384)

        def write():
            try:
                while not stop.is_set() and not done.is_set():
                    sent.extend(chunk[:s.send(chunk)])
            except OSError:
                pass
        writer = Background(write)
        got = read_to_end(s)
        done.set()  # the server's FIN: stop writing, so it closes at once
        writer.outcome()
        s.close()
        return bytes(sent), got

    def test_sighup_and_sigusr1_storms_during_echo_traffic(self):
        self.each(self.check_storm, DISTRIBUTIONS)

    def check_storm(self, backend, distribution):
        with serving(backend, distribution) as srv:
            storming = threading.Event()
            storming.set()

            def echoes():  # 30 connections at a time, over and over
                total, seed = 0, 3
                while storming.is_set():
                    total += echo_many(srv.ports["echo"], 30, 4, seed)
                    seed += 1
                return total

            def streams():  # 1 MiB streams through a 4 KiB sndbuf
                n = 0
                while storming.is_set():
                    data = os.urandom(1 << 20)
                    assert stream_echo(srv.ports["small"], data) == data
                    n += 1
                return n
            traffic = [Background(echoes), Background(streams)]
            # 300 signals, 150 SIGHUPs: more than the 64 reloads a process
            # once accepted; every one that reaches it now is applied
            # (the kernel merges a signal sent while one is pending).
            for i in range(300):
                srv.signal(signal.SIGHUP if i % 2 else signal.SIGUSR1)
                time.sleep(0.001)
            storming.clear()
            self.assertGreater(traffic[0].outcome(), 0)
            self.assertGreater(traffic[1].outcome(), 0)
            self.assertIsNone(srv.proc.poll(), srv.output())
            out = srv.output()
            self.assertIn("reloaded settings", out)
            self.assertLessEqual(out.count("reloaded settings"), 150)
            self.assertNotIn("reload refused", out)
            self.assertIn("stats:", out)
            self.assertServing(srv)
            self.assertServing(srv, "small")


class Reaper(unittest.TestCase):
    """A module (reaper.c) that aborts connections from inside callbacks of
    other connections of its worker: from on_data (kill, cut, its own
    die) and from on_close (chain), including the close of every
    connection when the drain times out. Bystanders on an echo listener
    keep echoing byte-exact; the server exits 0 with no sanitizer report."""

    @classmethod
    def setUpClass(cls):
        cls.backends = offered_backends()
        cls.dir = tempfile.mkdtemp()
        cls.module = build_module(os.path.join(HERE, "reaper.c"), cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    def test_aborts_from_callbacks_of_other_connections(self):
        for backend in self.backends:
            with self.subTest(backend=backend):
                self.check(backend)

    def groups(self, srv, per_worker=3):
        """Connections to the reaper, opened until every worker has
        `per_worker`: {worker: [Conn]}, each greeted."""
        by_worker = {}
        for _ in range(40 * per_worker):
            if len(by_worker) == 2 and min(map(len, by_worker.values())) \
                    >= per_worker:
                return by_worker
            c = Conn(client(srv.ports["reaper"]))
            worker = int(c.line().split()[1])
            by_worker.setdefault(worker, []).append(c)
        raise AssertionError(f"connections did not reach both workers: "
                             f"{ {w: len(g) for w, g in by_worker.items()} }")

    def check(self, backend):
        with serving(backend, "reuseport", "--set",
                     f"server.modules={self.module}",
                     "--set", "server.drain_timeout=0.3",
                     listeners=LISTENERS + (("reaper", "reaper"),)) as srv:
            others = Background(echo_many, srv.ports["echo"], 20, 10, 4)
            # kill from on_data: the others end without a goodbye.
            for actor, *victims in self.groups(srv).values():
                actor.say("kill")
                self.assertEqual(actor.line(), f"killed {len(victims)}")
                for v in victims:
                    self.assertEqual(v.rest(), b"")
                actor.say("still")
                self.assertEqual(actor.line(), "still")
                actor.close()
            # cut from on_data: whole units, then the goodbye.
            for actor, *victims in self.groups(srv).values():
                victims[0].say("pending")  # output in flight when cut
                self.assertEqual(victims[0].line(), "pending")
                actor.say("cut")
                self.assertEqual(actor.line(), f"cut {len(victims)}")
                for v in victims:
                    self.assertEqual(v.rest(), b"bye\n")
                actor.close()
            # die: itself, from its own on_data; the rest of its worker is
            # untouched. chain: its on_close (its peer's FIN) aborts them.
            for actor, *victims in self.groups(srv).values():
                actor.say("die")
                self.assertEqual(actor.rest(), b"bye\n")
                chained = victims.pop()
                chained.say("chain")
                self.assertEqual(chained.line(), "chained")
                for v in victims:
                    v.say("alive")
                    self.assertEqual(v.line(), "alive")
                chained.sock.shutdown(socket.SHUT_WR)
                self.assertEqual(chained.rest(), b"")
                for v in victims:
                    self.assertEqual(v.rest(), b"bye\n")
            self.assertGreater(others.outcome(), 0)
            settled(srv)
            # The drain times out on connections that all chain: each
            # close aborts the rest, while the framework closes them all.
            final = [c for g in self.groups(srv, 4).values() for c in g]
            for c in final:
                c.say("chain")
                self.assertEqual(c.line(), "chained")
            srv.signal(signal.SIGTERM)
            for c in final:
                self.assertIn(c.rest(), (b"", b"bye\n"))
            out = srv.wait_exit()
            self.assertIn("drain timeout", out)


class Conn:
    """A line client of the reaper."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def say(self, text):
        self.sock.sendall(text.encode() + b"\n")

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError(f"closed; had {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def rest(self):
        """What is left to read until the server closes, then closed."""
        rest = self.buf + read_to_end(self.sock)
        self.sock.close()
        return rest

    def close(self):
        self.sock.close()


if __name__ == "__main__":
    unittest.main()

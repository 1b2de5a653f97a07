"""Fault tests over every backend percored offers (read from --help by
test_backends.offered_backends, the one list), each against a real
percored with two workers over loopback: fd exhaustion and recovery,
clients that reset mid-write, half-close, never read or never speak,
partial writes under a 4 KiB send buffer, SIGTERM under full load, and
SIGHUP/SIGUSR1 storms during traffic. Tests that involve accepting (fd
exhaustion, SIGTERM, signal storms) also run in both distribution modes.

Behaviour only, never speed: byte-exact echoes, streams that end on a
unit boundary, exit status 0 and no sanitizer report (Percored.stop and
wait_exit), the server's own close reasons. Every wait is bounded and
scaled by SLOW for the sanitizer builds."""

import contextlib
import os
import random
import re
import select
import signal
import socket
import struct
import threading
import time
import unittest

from percored import SLOW, Percored, wait_for
from test_backends import offered_backends
from test_echo import echo_many
from test_lifecycle import check_fd_exhaustion
from test_shutdown_units import LINE, Reader, chat_member, talk

DISTRIBUTIONS = ("reuseport", "acceptor")
IDLE = 0.4 * SLOW  # idle_timeout of the `idle` listener, seconds
# One server shape for every test: `echo` with the defaults, `idle` with a
# short idle_timeout, `small` with a 4 KiB SO_SNDBUF on accepted sockets.
LISTENERS = (("echo", "echo"), ("idle", "echo"), ("small", "echo"),
             ("chat", "chat"), ("metrics", "metrics"))
RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends a RST


@contextlib.contextmanager
def serving(backend, distribution, *extra, **kw):
    """A percored on `backend` in `distribution` mode with LISTENERS; the
    stop at the end checks exit status 0 and no sanitizer report."""
    with Percored("--backend", backend, "--distribution", distribution,
                  "--set", f"idle.idle_timeout={IDLE}",
                  "--set", "small.sndbuf=4K", "--set", "chat.flood_rate=0",
                  *extra, listeners=LISTENERS, workers=2, **kw) as srv:
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


def stream_echo(port, data, half_close=False):
    """Writes `data` from one thread while reading its echo in this one;
    with half_close, shuts down writing after it and reads to EOF."""
    s = client(port)

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
    wait_for(lambda: srv.total("percore_connections") <= open_ + 1,
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
            self.assertGreater(srv.total("percore_out_queued"), 0,
                               "the server is not mid-write")
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
            self.assertGreaterEqual(srv.total("percore_closed"), 28)
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
            wait_for(lambda: srv.total("percore_closed", reason="idle") >= 3,
                     what="the deaf clients closed by idle_timeout")
            for i, (s, data) in enumerate(zip(deaf, sent)):
                self.assertPrefix(read_to_end(s), data, f"deaf client {i}")
                s.close()
            wait_for(lambda: srv.total("percore_closed",
                                       reason="output_limit") >= 1,
                     what="the mute member closed")
            self.assertTrue(stream.endswith("\n"), stream[-100:])
            lines = stream.split("\n")[:-1]
            self.assertEqual(lines[-1], "*** disconnected: sendq exceeded")
            for text in lines[:-1]:
                self.assertRegex(text, rf"^(\S+: \d+ {LINE}|\*\*\* .*|OK .*)$")
            hearer.sock.shutdown(socket.SHUT_WR)
            hearer.join(30 * SLOW)
            heard = re.findall(rf": (\d+) {LINE}\n".encode(), hearer.data)
            self.assertEqual([int(n) for n in heard], list(range(count)))
            # Only those: the busy clients were never idle, and the member
            # that read was not cut.
            self.assertEqual(srv.total("percore_closed", reason="idle"), 3)
            self.assertEqual(srv.total("percore_closed",
                                       reason="output_limit"), 1)
            hearer.sock.close()
            self.assertServing(srv, "idle")

    def test_silent_clients_are_closed_by_idle_timeout(self):
        self.each(self.check_silent)

    def check_silent(self, backend, distribution):
        with serving(backend, distribution) as srv:
            silent = [client(srv.ports["idle"]) for _ in range(10)]
            # One sends half a message and stops (slowloris on echo).
            silent[0].sendall(b"half a mess")
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
                time.sleep(IDLE)  # past another timeout: active survives
            finally:
                stop.set()
            self.assertGreater(pinger.outcome(), 0)
            self.assertEqual(srv.total("percore_closed", reason="idle"), 10)
            active.sendall(b"still here")
            self.assertEqual(active.recv(100), b"still here")
            active.close()

    def test_partial_writes_under_a_4k_send_buffer_are_byte_exact(self):
        self.each(self.check_small_sndbuf)

    def check_small_sndbuf(self, backend, distribution):
        with serving(backend, distribution) as srv:
            before = srv.total("percore_writes")
            payloads = [os.urandom(size) for size in (3 << 20, 1 << 20,
                                                      100000)]
            streams = [Background(stream_echo, srv.ports["small"], p)
                       for p in payloads]
            for i, (c, p) in enumerate(zip(streams, payloads)):
                self.assertEqual(c.outcome(), p, f"stream {i}")
            # A 4 KiB SO_SNDBUF (the kernel doubles it) takes at most
            # about 8 KiB a write: the echo left in many partial writes.
            writes = srv.total("percore_writes") - before
            self.assertGreater(writes, sum(map(len, payloads)) // 65536)
            self.assertServing(srv, "small")

    # ---- signals under load -------------------------------------------

    def test_sigterm_under_full_load_ends_streams_on_units(self):
        self.each(self.check_sigterm, DISTRIBUTIONS)

    def check_sigterm(self, backend, distribution):
        drain = 0.6 * SLOW
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
            finishers = [Background(self.short_job, client(port), i,
                                    stopping) for i in range(6)]
            time.sleep(0.2 * SLOW)  # under load
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
    def short_job(s, i, stopping):
        """20 messages, each echoed before the next; the last 10 once the
        server is `stopping`, so they are served by the drain."""
        sent, got = bytearray(), bytearray()
        for k in range(20):
            if k == 10:
                assert stopping.wait(30 * SLOW), "never stopping"
            msg = b"%d:%d;" % (i, k) * 40
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
            traffic = Background(echo_many, srv.ports["echo"], 30, 8, 3)
            big = os.urandom(2 << 20)
            stream = Background(stream_echo, srv.ports["small"], big)
            sent = 0
            while (traffic.is_alive() or stream.is_alive()) and sent < 400:
                srv.signal(signal.SIGHUP if sent % 2 else signal.SIGUSR1)
                sent += 1
                time.sleep(0.002)
            self.assertGreater(traffic.outcome(), 0)
            self.assertEqual(stream.outcome(), big)
            self.assertIsNone(srv.proc.poll(), srv.output())
            out = srv.output()
            self.assertIn("reloaded settings", out)
            self.assertIn("stats:", out)
            self.assertServing(srv)
            self.assertServing(srv, "small")


if __name__ == "__main__":
    unittest.main()

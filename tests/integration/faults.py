"""What the fault tests (test_faults.py: clients that misbehave;
test_faults_signals.py: signals under load, a module that aborts
connections) share: one server shape over a given backend and
distribution mode, client sockets that fill, stream and read to the end,
a thread whose outcome re-raises, and FaultCase, the base of their test
classes, which runs a check over every backend percored offers (read from
--help by test_backends.offered_backends, the one list; under a sanitizer
the default and select only: test_backends.fault_backends).

Behaviour only, never speed: byte-exact echoes, streams that end on a
unit boundary, exit status 0 and no sanitizer report (Percored.stop and
wait_exit), the server's own close reasons. Every wait is bounded and
scaled by SLOW for the sanitizer builds."""

import contextlib
import os
import re
import select
import socket
import struct
import threading
import unittest

from percored import SLOW, Percored, wait_for
from test_backends import fault_backends
from test_echo import echo_many

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


class FaultCase(unittest.TestCase):
    """The base of the fault tests: each(check) runs a check over every
    offered backend (under a sanitizer the default and select:
    test_backends.fault_backends) and distribution mode; the checks they
    all make."""

    @classmethod
    def setUpClass(cls):
        cls.backends = fault_backends()

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


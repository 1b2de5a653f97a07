"""Fault tests of clients that misbehave, over every backend percored
offers (faults.FaultCase), each against a real percored with two workers
over loopback: fd exhaustion and recovery (in both distribution modes),
clients that reset mid-write, half-close, never read or never speak, and
partial writes under a 4 KiB send buffer. Signals under load and a module
that aborts connections are in test_faults_signals.py; what both share in
faults.py.

Behaviour only, never speed: byte-exact echoes, streams that end on a
unit boundary, the server's own close reasons. Every wait is bounded and
scaled by SLOW for the sanitizer builds."""

import contextlib
import os
import random
import re
import socket
import threading
import time
import unittest

from faults import (DISTRIBUTIONS, IDLE, RESET, Background, FaultCase, client,
                    fill, read_to_end, serving, settled, stream_echo)
from percored import SLOW, wait_for
from test_echo import echo_many
from test_lifecycle import check_fd_exhaustion
from test_shutdown_units import LINE, Reader, chat_member


class Faults(FaultCase):

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


if __name__ == "__main__":
    unittest.main()

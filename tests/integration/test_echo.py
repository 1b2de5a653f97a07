"""echo over real sockets against a real percored."""

import os
import random
import selectors
import socket
import struct
import threading
import time
import unittest

from percored import SANITIZED, SLOW, Percored, free_port, recv_exactly, wait_for

ECHO_METRICS = (("echo", "echo"), ("metrics", "metrics"))


def echo_many(port, conns, rounds, seed, family=socket.AF_INET,
              host="127.0.0.1"):
    """Opens `conns` connections at once; each sends `rounds` random-sized
    messages and must get every byte back in order. Returns bytes echoed."""
    rng = random.Random(seed)
    sel = selectors.DefaultSelector()
    state = {}
    for i in range(conns):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        msgs = [os.urandom(rng.choice((1, 7, 64, 1000, 5000, 70000)))
                for _ in range(rounds)]
        want = b"".join(msgs)
        state[s] = {"out": want, "want": want, "got": bytearray()}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    done = 0
    total = 0
    while done < conns:
        events = sel.select(timeout=30 * SLOW)
        if not events:
            raise AssertionError(f"stalled with {conns - done} connections left")
        for key, mask in events:
            s, st = key.fileobj, state[key.fileobj]
            if mask & selectors.EVENT_WRITE and st["out"]:
                try:
                    n = s.send(st["out"][:65536])
                    st["out"] = st["out"][n:]
                except BlockingIOError:
                    pass
                if not st["out"]:
                    sel.modify(s, selectors.EVENT_READ)
            if mask & selectors.EVENT_READ:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise AssertionError("server closed a connection early")
                st["got"] += chunk
                if len(st["got"]) >= len(st["want"]):
                    assert bytes(st["got"]) == st["want"], "echo mismatch"
                    total += len(st["want"])
                    sel.unregister(s)
                    s.close()
                    done += 1
    return total


class EchoTest(unittest.TestCase):

    def test_echo_returns_every_byte_on_1000_concurrent_connections(self):
        # 1,000 client sockets + 1,000 server sockets stay far below the
        # 20,000 open-file cap of this machine.
        with Percored(listeners=ECHO_METRICS, workers=4) as srv:
            total = echo_many(srv.ports["echo"], 1000, 3, seed=1)
            self.assertGreater(total, 0)
            wait_for(lambda: srv.total("percore_connections_open",
                                       listener="echo") == 0,
                     what="connections to close")
            self.assertEqual(srv.total("percore_connections_accepted_total",
                                       listener="echo"), 1000)

    def test_16_mib_stream_written_before_read_stays_bounded(self):
        size = 16 << 20
        data = os.urandom(size)
        with Percored(listeners=ECHO_METRICS, workers=2) as srv:
            rss_before = srv.rss_kib()
            s = srv.connect()
            peak = [0]

            def writer():
                s.sendall(data)
            t = threading.Thread(target=writer)
            t.start()
            got = bytearray()
            while len(got) < size:
                chunk = s.recv(1 << 20)
                self.assertTrue(chunk, "connection closed early")
                got += chunk
                if len(got) % (2 << 20) < len(chunk):
                    peak[0] = max(peak[0], srv.rss_kib())
            t.join()
            s.close()
            self.assertEqual(bytes(got), data)
            # Back-pressure keeps the server's buffers near the high
            # watermark (256 KiB) plus one read (64 KiB), never near the
            # 16 MiB in flight: by the server's own accounting, and (where
            # no sanitizer quarantines freed memory) by its RSS.
            peak_queued = max(srv.per_worker(
                "percore_worker_output_queued_peak_bytes").values())
            self.assertLessEqual(peak_queued, 256 * 1024 + 64 * 1024)
            self.assertGreater(peak_queued, 0)
            if not SANITIZED:
                self.assertLess(peak[0] - rss_before, 8 * 1024,
                                f"RSS grew {peak[0] - rss_before} KiB")

    def test_echo_when_client_writes_everything_then_half_closes(self):
        with Percored() as srv:
            s = srv.connect()
            payload = os.urandom(300000)
            t = threading.Thread(target=lambda: (s.sendall(payload),
                                                 s.shutdown(socket.SHUT_WR)))
            t.start()
            got = bytearray()
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                got += chunk
            t.join()
            s.close()
            self.assertEqual(bytes(got), payload)

    def _every_worker_serves(self, *args):
        with Percored(*args, listeners=ECHO_METRICS, workers=4) as srv:
            socks = []
            for i in range(200):
                s = srv.connect()
                s.sendall(b"x%d\n" % i)
                self.assertEqual(recv_exactly(s, len(b"x%d\n" % i)), b"x%d\n" % i)
                socks.append(s)
            accepted = srv.per_worker("percore_worker_connections_accepted_total")
            for s in socks:
                s.close()
            self.assertEqual(len(accepted), 4)
            # The metrics connection itself counts too.
            self.assertGreaterEqual(sum(accepted.values()), 200)
            for worker, n in accepted.items():
                self.assertGreater(n, 0, f"worker {worker} served nothing: {accepted}")
            return accepted

    def test_reuseport_spreads_connections_over_every_worker(self):
        self._every_worker_serves("--distribution", "reuseport")

    def test_acceptor_round_robin_spreads_connections_over_every_worker(self):
        accepted = self._every_worker_serves("--distribution", "acceptor")
        # Round robin: no worker is more than a few ahead of another.
        self.assertLessEqual(max(accepted.values()) - min(accepted.values()), 4)

    def test_acceptor_least_connections_fills_the_emptiest_worker(self):
        self._every_worker_serves("--distribution", "acceptor",
                                  "--balance", "least-connections")

    def test_every_backend_echoes(self):
        for backend in ("select", "poll", "epoll"):  # io_uring: refused
            with self.subTest(backend=backend):
                with Percored("--backend", backend, workers=2) as srv:
                    self.assertIn(f"backend {backend}", srv.output())
                    self.assertGreater(echo_many(srv.ports["echo"], 50, 2,
                                                 seed=7), 0)

    def test_ipv6_and_dual_stack_listeners(self):
        port = free_port(socket.AF_INET6, "::1")
        port2 = free_port(socket.AF_INET6, "::")
        with Percored("--listen", f"six=echo@[::1]:{port}",
                      "--listen", f"dual=echo@[::]:{port2}") as srv:
            self.assertGreater(echo_many(port, 5, 2, 3, socket.AF_INET6, "::1"), 0)
            self.assertGreater(echo_many(port2, 5, 2, 4, socket.AF_INET6, "::1"), 0)
            self.assertGreater(echo_many(port2, 5, 2, 5), 0)  # IPv4 on [::]

    def test_unix_socket_listener(self):
        path = f"/tmp/percore-test-{os.getpid()}.sock"
        with Percored(listeners=(("local", f"unix:echo@unix:{path}"),)) as srv:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.sendall(b"over unix\n")
            self.assertEqual(recv_exactly(s, 10), b"over unix\n")
            s.close()
            srv.stop()
        self.assertFalse(os.path.exists(path), "socket file left behind")


def total(srv, metric):
    return srv.total(metric, listener="echo")


class FlushDelay(unittest.TestCase):
    """flush_delay holds a connection's output back so later output shares
    its write."""

    def test_output_written_within_the_delay_leaves_in_one_write(self):
        with Percored("--set", "echo.flush_delay=1", listeners=ECHO_METRICS,
                      workers=1) as srv:
            s = srv.connect()
            s.sendall(b"warm-up")  # the connection is open and counted
            self.assertEqual(recv_exactly(s, 7), b"warm-up")
            before = total(srv, "percore_writes_total")
            pieces = [b"piece %d;" % i for i in range(10)]
            for p in pieces:  # ten reads, ten echoes queued
                s.sendall(p)
                time.sleep(0.01)
            self.assertEqual(recv_exactly(s, sum(map(len, pieces))),
                             b"".join(pieces))
            # Scrapes count under the metrics listener, not echo's.
            echo_writes = total(srv, "percore_writes_total") - before
            self.assertGreaterEqual(echo_writes, 1)
            self.assertLessEqual(echo_writes, 3, "output was not coalesced")
            s.close()

    def test_every_byte_comes_back_with_a_delay(self):
        with Percored("--set", "echo.flush_delay=2ms", workers=4) as srv:
            self.assertGreater(echo_many(srv.ports["echo"], 200, 3, seed=11),
                               0)

    def test_connections_that_vanish_while_their_output_waits(self):
        with Percored("--set", "echo.flush_delay=300ms",
                      listeners=ECHO_METRICS, workers=2) as srv:
            for i in range(100):
                s = srv.connect()
                s.sendall(b"x" * 100)
                if i % 2:  # reset: the write fails when the delay ends
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
                    s.close()
                else:  # half-close: the echo leaves at once, then EOF
                    s.shutdown(socket.SHUT_WR)
                    self.assertEqual(recv_exactly(s, 100), b"x" * 100)
                    self.assertEqual(s.recv(1), b"")
                    s.close()
            wait_for(lambda: total(srv, "percore_connections_open") == 0,
                     what="connections to close")
            time.sleep(0.4)  # past the delay of the last reset connection
            self.assertGreater(echo_many(srv.ports["echo"], 20, 2, seed=12),
                               0)
            self.assertIsNone(srv.proc.poll())


if __name__ == "__main__":
    unittest.main()

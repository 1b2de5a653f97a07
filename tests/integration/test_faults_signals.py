"""Fault tests of signals under load and of a module that aborts
connections, over every backend percored offers (faults.FaultCase), each
against a real percored with two workers over loopback: SIGTERM under
full load and SIGHUP/SIGUSR1 storms during traffic (both in both
distribution modes), and a module (reaper.c) that aborts connections from
callbacks of other connections. Clients that misbehave are in
test_faults.py; what both share in faults.py.

Behaviour only, never speed: byte-exact echoes, streams that end on a
unit boundary, exit status 0 and no sanitizer report (Percored.stop and
wait_exit). Every wait is bounded and scaled by SLOW for the sanitizer
builds."""

import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import unittest

from faults import (DISTRIBUTIONS, LISTENERS, Background, FaultCase, client,
                    read_to_end, serving, settled, stream_echo)
from percored import SLOW, wait_for
from test_echo import echo_many
from test_modules import build_module
from test_shutdown_units import LINE, Reader, chat_member, talk

HERE = os.path.dirname(os.path.abspath(__file__))


class Signals(FaultCase):

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


class Reaper(FaultCase):
    """A module (reaper.c) that aborts connections from inside callbacks of
    other connections of its worker: from on_data (kill, cut, its own
    die) and from on_close (chain), including the close of every
    connection when the drain times out. Bystanders on an echo listener
    keep echoing byte-exact; the server exits 0 with no sanitizer report."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
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
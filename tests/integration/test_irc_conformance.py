"""Conformance of percored's `irc` face: registration, numerics and error
replies, as tables of command -> expected replies in the manner of the
RFC's tables. The reference is the Modern IRC Client Protocol
(modern.ircdocs.horse), with RFC 2812 where it is silent.

Raw sockets against a real percored with 4 workers; every row opens its
own clients (up to four), which the kernel spreads over the workers, so
the exchanges cross workers. One server for the tables; the password and
the timeout rows get servers of their own.

IRC_SERVER=ngircd runs the same tables against Debian's ngircd
(/usr/sbin/ngircd, or $NGIRCD) on a free loopback port, to prove the
tables. Rows where ngircd legitimately differs from what percored must do
are marked PERCORED_ONLY with the reason; they are skipped there, never
loosened for percored.

A row: (title, setup, steps). A step: who sends, what, the replies the
sender must get (in order, other lines in between allowed), the replies
that must not come, and what other clients must (see=) or must not
(unseen=) receive. Only the numeric or command, the target and the key
parameters are checked, never the free text. After each step every
registered client involved sends a PING and reads up to its PONG, so a
forbidden reply has had its chance to appear, and the connection is
proven still usable.

The rig (servers, clients, matchers) is irc_conformance_rig.py, the world
a row runs in and its setups irc_conformance_world.py, the tables
irc_conformance_rows.py; this file runs them.
"""

import re
import time
import unittest

from percored import SLOW
from irc_conformance_rig import (CLOSED_MSG, PASSWORD, TARGET, WORKERS,
                                 irc_server)
from irc_conformance_world import World
from irc_conformance_rows import PASSWORDS, TABLE


# ------------------------------------------------------------------ checks

def run_row(test, port, n, row):
    if row.only and row.only != TARGET:
        test.skipTest(f"{row.only} only: {row.why}")
    w = World(port, n)
    try:
        row.setup(w)
        for step in row.steps:
            w.run(step)
        w.check_clean()
    finally:
        w.close()


def slug(title):
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:70]


def add_rows(cls, rows, start):
    for i, row in enumerate(rows):
        n = start + i

        def test(self, row=row, n=n):
            run_row(self, self.server.ports["irc"], n, row)
        test.__doc__ = row.title
        setattr(cls, f"test_{n:03d}_{slug(row.title)}", test)


class ServerCase(unittest.TestCase):
    server_kw = {}

    @classmethod
    def setUpClass(cls):
        cls.server = irc_server(**cls.server_kw)
        cls.server.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)


class Conformance(ServerCase):
    """The tables against one server."""
    server_kw = {"metrics": TARGET != "ngircd"}

    def test_zzz_the_rows_ran_on_every_worker(self):
        if TARGET == "ngircd":
            self.skipTest("one process")
        accepted = self.server.per_worker(
            "percore_worker_connections_accepted_total")
        self.assertEqual(len(accepted), WORKERS, accepted)
        self.assertTrue(all(v > 0 for v in accepted.values()), accepted)


add_rows(Conformance, TABLE, 1)


class Password(ServerCase):
    """A server with `irc.password`."""
    server_kw = {"password": PASSWORD}


add_rows(Password, PASSWORDS, 500)


class Timeouts(ServerCase):
    """Registration timeout and the server's PING: an unregistered
    connection, a registered one that never answers PING, one that does,
    watched side by side."""
    server_kw = {"timeouts": True}

    def test_unregistered_and_silent_clients_are_closed(self):
        # percored: 1 s each; ngircd checks every ~5 s (PING after ~6 s,
        # close ~6 s later)
        window = (20 if TARGET == "ngircd" else 5) * SLOW
        w = World(self.server.ports["irc"], 900)
        try:
            unreg = w.connect("unreg")
            half = w.connect("half")  # NICK only
            half.send("NICK half900")
            silent = w.register("silent", "silent900")
            silent.answer_pings = False
            alive = w.register("alive", "alive900")  # answers PINGs
            got = {c: [] for c in (unreg, half, silent, alive)}
            start, closed_at = time.time(), {}
            watch = (14 if TARGET == "ngircd" else 3) * SLOW  # at least
            while time.time() - start < window and (
                    len(closed_at) < 3 or time.time() - start < watch):
                for c in got:
                    m = c.read(0.05)
                    if m is not None:
                        got[c].append(m)
                        if m is CLOSED_MSG:
                            closed_at[c.label] = time.time() - start
            for c in (unreg, half, silent):
                if c.label not in closed_at:
                    w.fail(f"{c.label} still open after {window} s")
                if TARGET != "ngircd":  # ngircd closes them silently
                    if not any(m.command == "ERROR" for m in got[c]):
                        w.fail(f"{c.label} closed without ERROR")
            self.assertTrue(any(m.command == "PING" for m in got[silent]),
                            "no PING before the close\n" + w.transcript())
            self.assertTrue(any(m.command == "ERROR" for m in got[silent]),
                            "no ERROR before the close\n" + w.transcript())
            # the one that answers stays, past both timeouts
            self.assertTrue(any(m.command == "PING" for m in got[alive]),
                            "the live client never got a PING\n" + w.transcript())
            self.assertFalse(alive.closed, w.transcript())
            w.collect(alive, [])  # and still answers
            w.check_clean()
        finally:
            w.close()


if __name__ == "__main__":
    unittest.main()

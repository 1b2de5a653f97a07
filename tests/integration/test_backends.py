"""Every event backend percored offers, under connection churn, against a
real percored: 100 chat clients join a room, talk, and disconnect together
(twice), a probe must still be answered, then SIGTERM while 100 clients
talk, with a short drain so the server closes live connections itself.
Exit status 0 and no sanitizer report (Percored.stop checks both).

libev 4.33's io_uring backend aborts the process on exactly this
("libev: io_uring_enter did not consume all sqes"), so percored refuses it:
checked here at start and in -t, before anything is bound."""

import re
import selectors
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from percored import BINARY, SANITIZED, SLOW, Percored, free_port, run

CLIENTS = 100
ROOM = "churn"
# Every name libev has; the ones percored offers here come from --help.
LIBEV_BACKENDS = ("select", "poll", "epoll", "io_uring", "linuxaio",
                  "kqueue", "port")


def offered_backends():
    """The backends `percored --help` offers on this system, auto first."""
    out = run(["--help"]).stdout
    m = re.search(r"--backend NAME +libev's backend, one of: (.+)", out)
    assert m, "no backend line in --help:\n" + out
    return m.group(1).split()


def fault_backends():
    """The backends the fault and shutdown matrices run over: every
    offered one; under a sanitizer the default and select only. The
    sanitizers look at percore's own code, which is the same over every
    backend, and the plain suite runs the whole matrix (test_backends
    itself runs every backend under the sanitizers too)."""
    offered = offered_backends()
    if SANITIZED:
        return [b for b in offered if b in ("auto", "select")]
    return offered


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    s.setblocking(False)
    return s


def pump(socks, seconds, send=None):
    """Reads whatever arrives on socks for `seconds`; `send(sock)` is called
    for each writable round if given. Errors (the server closed) are fine:
    those sockets just drop out."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    end = time.time() + seconds
    while time.time() < end and sel.get_map():
        if send:
            for key in list(sel.get_map().values()):
                try:
                    send(key.fileobj)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    sel.unregister(key.fileobj)
        for key, _ in sel.select(0.02):
            try:
                if not key.fileobj.recv(1 << 16):
                    sel.unregister(key.fileobj)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                sel.unregister(key.fileobj)
    sel.close()


def join_and_talk(port, n, tag):
    socks = [connect(port) for _ in range(n)]
    for i, s in enumerate(socks):
        s.sendall(b"/join %s\n%s %d says hello\n" % (ROOM.encode(),
                                                       tag.encode(), i))
    pump(socks, 0.3 * SLOW)
    return socks


def probe(port):
    """A fresh client is greeted and answered."""
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=10 * SLOW) as s:
        f = s.makefile("rb")
        welcome = f.readline()
        assert welcome.startswith(b"*** welcome"), welcome
        s.sendall(b"/rooms\n")
        for line in f:
            if line.startswith(b"OK rooms"):
                return line.decode().strip()
        raise AssertionError("probe: no answer to /rooms")


class EveryBackendUnderChurn(unittest.TestCase):
    def test_help_offers_what_is_accepted(self):
        offered = offered_backends()
        self.assertEqual(offered[0], "auto")
        self.assertIn("epoll", offered)
        for name in LIBEV_BACKENDS:
            with self.subTest(backend=name):
                r = run(["-t", "--backend", name])
                self.assertEqual(r.returncode == 0, name in offered,
                                 r.stdout + r.stderr)

    def test_churn_then_sigterm_under_load(self):
        for backend in offered_backends():
            with self.subTest(backend=backend):
                self.churn(backend)

    def churn(self, backend):
        offered = offered_backends()
        with Percored("--backend", backend, "--set", "chat.flood_rate=0",
                      "--set", "server.drain_timeout=1",
                      listeners=(("chat", "chat"),), workers=2) as srv:
            used = re.search(r"running: \d+ workers, backend (\S+)",
                             srv.output()).group(1)
            self.assertIn(used, offered)
            if backend != "auto":
                self.assertEqual(used, backend)
            port = srv.ports["chat"]
            for rnd in range(2):
                socks = join_and_talk(port, CLIENTS, f"round{rnd}")
                if rnd == 1:  # the second burst resets instead of FIN
                    for s in socks:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     b"\x01\0\0\0\0\0\0\0")
                for s in socks:  # all together
                    s.close()
                time.sleep(0.2)
                self.assertIsNone(srv.proc.poll(), srv.output())
                self.assertIn("OK rooms", probe(port))

            # SIGTERM while 100 clients talk; after drain_timeout the server
            # closes their (live, watched) connections itself.
            socks = join_and_talk(port, CLIENTS, "load")
            talking = threading.Event()
            talking.set()
            n = [0]

            def say(s):
                n[0] += 1
                s.send(b"line %d\n" % n[0])

            def talk():
                while talking.is_set():
                    pump(socks, 0.1, say)

            talker = threading.Thread(target=talk)
            talker.start()
            try:
                time.sleep(0.2)
                out = srv.stop(timeout=15)
            finally:
                talking.clear()
                talker.join()
                for s in socks:
                    s.close()
            self.assertIn("drain timeout: closing", out)


class IoUringRefused(unittest.TestCase):
    def setUp(self):
        r = run(["-t", "--backend", "io_uring"])
        if r.returncode == 0:
            self.skipTest("this libev's io_uring is offered: the churn test "
                          "covers it")
        if "not supported on this system" in r.stderr:
            self.skipTest("no io_uring on this system")
        self.check = r

    def assertRefused(self, returncode, stderr):
        self.assertNotEqual(returncode, 0)
        lines = stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, stderr)
        self.assertIn("backend 'io_uring' is refused (libev 4.33's io_uring "
                      "backend asserts under connection churn: \"libev: "
                      "io_uring_enter did not consume all sqes\")", lines[0])
        offered = " ".join(offered_backends())
        self.assertTrue(lines[0].endswith("offered here: " + offered),
                        lines[0])
        self.assertNotIn("io_uring", offered)

    def test_check_refuses(self):
        self.assertRefused(self.check.returncode, self.check.stderr)
        self.assertEqual(self.check.stdout, "")

    def test_config_file_is_refused_too(self):
        with tempfile.NamedTemporaryFile("w", suffix=".ini") as f:
            f.write("[server]\nbackend = io_uring\n")
            f.flush()
            r = run(["-t", "-c", f.name])
        self.assertRefused(r.returncode, r.stderr)
        self.assertIn(f.name + ":2: [server] backend:", r.stderr)

    def test_start_refuses_before_binding(self):
        port = free_port()
        p = subprocess.run([BINARY, "--workers", "2", "--backend", "io_uring",
                            "--listen", f"chat@127.0.0.1:{port}"],
                           capture_output=True, text=True,
                           timeout=10 * SLOW)
        self.assertRefused(p.returncode, p.stderr)
        self.assertNotIn("listening", p.stdout + p.stderr)
        # Nothing was bound: the port is still free for us.
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

    def test_help_does_not_offer_it(self):
        out = run(["--help"]).stdout
        line = re.search(r"--backend NAME .*", out).group(0)
        self.assertNotIn("io_uring", line)
        self.assertIn("io_uring is refused", out)


if __name__ == "__main__":
    unittest.main()

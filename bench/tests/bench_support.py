"""What bench/tests' files share: where percore-bench and percored are,
running percore-bench for its --json report, waiting for a server's port,
a deliberately wrong server, and what every good report must say."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from percored import BINARY as PERCORED, SLOW  # noqa: E402

BUILD = os.path.dirname(PERCORED)
BENCH = os.environ.get("PERCORE_BENCH",
                       os.path.join(BUILD, "bench", "percore-bench"))



def bench(*args, timeout=60, stderr=subprocess.PIPE):
    """Runs percore-bench with --json; returns (exit status, report)."""
    p = subprocess.run([BENCH] + [str(a) for a in args] + ["--json"],
                       stdout=subprocess.PIPE, stderr=stderr, text=True,
                       timeout=timeout * SLOW)
    if p.stderr and re.search(r"Sanitizer|runtime error:", p.stderr):
        raise AssertionError("percore-bench: " + p.stderr)
    try:
        report = json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"no JSON report (exit {p.returncode}):\n"
                             f"{p.stdout}\n{p.stderr}")
    return p.returncode, report


def wait_port(port, proc, timeout=20):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError("server exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start listening")


class FakeServer:
    """A deliberately wrong server on a thread: handle(conn) per client."""

    def __init__(self, handle):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.handle = handle
        self.conns = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self.handle, args=(conn,),
                             daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()
        for c in self.conns:
            c.close()


class BenchTest(unittest.TestCase):
    """A test of percore-bench runs."""

    def check_report(self, status, r, mode):
        """What every good run must say."""
        self.assertEqual(r["tool"], "percore-bench")
        self.assertEqual(r["mode"], mode)
        self.assertEqual(r["errors"]["total"], 0, r["errors"])
        self.assertEqual(status, 0)
        self.assertFalse(r["interrupted"])
        for key in ("config", "setup_s", "elapsed_s", "connections",
                    "messages", "messages_per_s", "bytes", "latency_us",
                    "client"):
            self.assertIn(key, r)
        lat = r["latency_us"]
        if mode != "idle":
            self.assertGreater(r["messages"], 0)
            self.assertEqual(lat["count"], r["messages"])
            self.assertTrue(0 <= lat["min"] <= lat["p50"] <= lat["p90"] <=
                            lat["p99"] <= lat["p99_9"] <= lat["max"], lat)

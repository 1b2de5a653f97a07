"""percore-bench against real servers, the modes of one connection at a
time (echo, churn, idle, handshake and echo over TLS): every mode
briefly, its --json report well formed and free of errors, its checks
catching servers that get things wrong, and the command line. The chat
family (chat, ws, irc) is in test_bench_chat.py. Run by ctest
(bench/CMakeLists.txt) with PERCORED and PERCORE_BENCH set."""

import os
import pty
import shutil
import ssl
import subprocess
import sys
import tempfile
import unittest

from bench_support import (BUILD, BENCH, PERCORED, ROOT, BenchTest,
                           FakeServer, bench, wait_port)
from percored import Percored, free_port

import peers  # bench/run's nginx command line and worker
import tlsbench  # bench/run's certificates and nginx config

BASELINES = {
    "epoll": [os.environ.get("BENCH_EPOLL_ECHO",
                             os.path.join(BUILD, "bench", "bench-epoll-echo"))],
    "threads": [os.environ.get("BENCH_THREADED_ECHO",
                               os.path.join(BUILD, "bench",
                                            "bench-threaded-echo"))],
    "py-threads": [sys.executable,
                   os.path.join(ROOT, "bench", "baselines",
                                "py_threaded_echo.py")],
    "py-selectors": [sys.executable,
                     os.path.join(ROOT, "bench", "baselines",
                                  "py_selectors_echo.py")],
    "py-asyncio": [sys.executable,
                   os.path.join(ROOT, "bench", "baselines",
                                "py_asyncio_echo.py")],
}
CERTS_DIR = tempfile.mkdtemp(prefix="pcb-test-certs-")
CERTS = tlsbench.make_certs(CERTS_DIR)
_, CERT, KEY = CERTS["ecdsa"]
PERCORED_TLS = tlsbench.percored_has_tls(PERCORED, CERT, KEY) is None


def tearDownModule():
    shutil.rmtree(CERTS_DIR, ignore_errors=True)


def tls_echo(context_of):
    """A FakeServer handler: TLS with a context from context_of(), then
    echo until the client closes."""
    def handle(conn):
        try:
            with context_of().wrap_socket(conn, server_side=True) as s:
                while data := s.recv(65536):
                    s.sendall(data)
        except (ssl.SSLError, OSError):
            pass
    return handle


def server_context(cert=CERT, key=KEY):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class OneConnectionModesTest(BenchTest):

    # ---- echo -----------------------------------------------------------

    def test_echo_closed_loop_on_two_threads_reports_server_cpu(self):
        with Percored(workers=2) as srv:
            status, r = bench("echo", "-a", f":{srv.ports['echo']}", "-c", 20,
                              "-p", 4, "-t", 2, "-d", 1, "-w", 0.2,
                              "--server-pid", srv.proc.pid)
        self.check_report(status, r, "echo")
        self.assertEqual(r["connections"]["opened"], 20)
        self.assertEqual(r["bytes"], r["messages"] * 64)
        self.assertGreater(r["server"]["cpu_s"], 0)
        self.assertGreater(r["server"]["cpu_us_per_message"], 0)
        self.assertGreater(r["server"]["rss_kib_end"], 0)

    def test_echo_open_loop_keeps_the_offered_rate(self):
        with Percored(workers=2) as srv:
            status, r = bench("echo", "-a", f":{srv.ports['echo']}", "-c", 10,
                              "-r", 1000, "-d", 2)
        self.check_report(status, r, "echo")
        self.assertEqual(r["config"]["rate"], 1000)
        # Open loop sends on schedule whatever the server does.
        self.assertGreater(r["messages_per_s"], 800)
        self.assertLess(r["messages_per_s"], 1200)

    def test_echo_message_count_sends_exactly_that_many(self):
        with Percored(workers=2) as srv:
            status, r = bench("echo", "-a", f":{srv.ports['echo']}", "-c", 7,
                              "-n", 3001, "-s", 5000, "-p", 3)
        self.check_report(status, r, "echo")
        self.assertEqual(r["messages"], 3001)
        self.assertEqual(r["bytes"], 3001 * 5000)

    def test_every_baseline_server_echoes_correctly(self):
        for name, argv in BASELINES.items():
            with self.subTest(server=name):
                port = free_port()
                p = subprocess.Popen(argv + [str(port)],
                                     stdout=subprocess.DEVNULL)
                try:
                    wait_port(port, p)
                    status, r = bench("echo", "-a", f":{port}", "-c", 5,
                                      "-s", 3000, "-p", 2, "-d", 0.5)
                    self.check_report(status, r, "echo")
                finally:
                    p.terminate()
                    p.wait(10)

    # ---- churn and idle -------------------------------------------------

    def test_churn_opens_a_connection_per_exchange(self):
        with Percored(workers=2) as srv:
            status, r = bench("churn", "-a", f":{srv.ports['echo']}", "-c", 4,
                              "-d", 1)
        self.check_report(status, r, "churn")
        self.assertGreaterEqual(r["connections"]["opened"], r["messages"])

    def test_idle_holds_every_connection_and_writes_the_ready_file(self):
        ready = tempfile.mktemp(prefix="pcb-test-ready-")
        with Percored(workers=2) as srv:
            status, r = bench("idle", "-a", f":{srv.ports['echo']}", "-c", 300,
                              "-s", 16, "-d", 0.5, "--ready-file", ready,
                              "--server-pid", srv.proc.pid)
        self.check_report(status, r, "idle")
        self.assertEqual(r["connections"]["open_at_end"], 300)
        with open(ready) as f:
            self.assertEqual(f.read(), "300\n")
        os.unlink(ready)
        self.assertIn("rss_bytes_per_connection", r["server"])

    # ---- tls --------------------------------------------------------------

    def check_handshakes(self, status, r, version, resume):
        self.check_report(status, r, "handshake")
        tls = r["tls"]
        self.assertEqual(tls["protocol"], f"TLSv{version}")
        self.assertEqual(tls["sni"], "localhost")
        self.assertEqual(tls["resume"], resume)
        self.assertGreaterEqual(r["connections"]["opened"], r["messages"])
        if resume:
            # warmed up: every measured handshake offered and resumed
            self.assertEqual(tls["resumed"], r["messages"])
            self.assertEqual(tls["offered"], r["messages"])
            self.assertEqual(tls["resumed_fraction"], 1.0)
        else:
            self.assertEqual(tls["resumed"], 0)

    def test_handshakes_with_an_echo_and_resumed_in_both_versions(self):
        ctx = server_context()  # one context: its tickets stay good
        with FakeServer(tls_echo(lambda: ctx)) as fake:
            for version in ("1.2", "1.3"):
                for resume in (False, True):
                    with self.subTest(version=version, resume=resume):
                        status, r = bench(
                            "handshake", "-a", f":{fake.port}", "-c", 3,
                            "-s", 64, "--tls-version", version, "-d", 0.5,
                            "-w", 0.3, *(["--resume"] if resume else []))
                        self.check_handshakes(status, r, version, resume)
                        self.assertEqual(r["bytes"], r["messages"] * 64)

    def test_handshake_alone_waits_for_the_tls13_ticket(self):
        ctx = server_context()
        with FakeServer(tls_echo(lambda: ctx)) as fake:
            status, r = bench("handshake", "-a", f":{fake.port}", "-c", 3,
                              "-d", 0.5, "-w", 0.3, "--resume")
        self.check_handshakes(status, r, "1.3", True)
        self.assertEqual(r["bytes"], 0)

    def test_echo_over_tls_checks_every_byte_at_a_fixed_rate(self):
        with FakeServer(tls_echo(server_context)) as fake:
            status, r = bench("echo", "--tls", "-a", f":{fake.port}",
                              "-c", 5, "-s", 5000, "-r", 500, "-d", 1)
        self.check_report(status, r, "echo")
        self.assertEqual(r["tls"]["protocol"], "TLSv1.3")
        self.assertIsNone(r["tls"]["resumed_fraction"])
        self.assertGreater(r["messages_per_s"], 400)
        self.assertEqual(r["bytes"], r["messages"] * 5000)

    def test_a_session_offered_and_not_resumed_is_an_error(self):
        """A server with a new context (ticket keys, session cache) per
        connection can never resume."""
        with FakeServer(tls_echo(server_context)) as fake:
            for version in ("1.2", "1.3"):
                with self.subTest(version=version):
                    status, r = bench("handshake", "-a", f":{fake.port}",
                                      "-c", 2, "-s", 16, "--resume",
                                      "--tls-version", version, "-d", 0.5,
                                      "-w", 0.2)
                    self.assertGreater(r["messages"], 0)
                    self.assertEqual(r["tls"]["resumed"], 0)
                    self.assertEqual(r["tls"]["resumed_fraction"], 0)
                    self.assertEqual(r["errors"]["not_resumed"],
                                     r["tls"]["offered"])
                    self.assertGreater(r["errors"]["not_resumed"], 0)
                    self.assertEqual(status, 1)

    def test_a_server_that_does_not_speak_tls_is_counted(self):
        def plain_echo(conn):
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:  # the client gives up and resets
                pass
        with FakeServer(plain_echo) as fake:
            status, r = bench("handshake", "-a", f":{fake.port}", "-c", 2,
                              "-d", 0.3, "--drain", 1, stderr=subprocess.PIPE)
        self.assertGreater(r["errors"]["tls"], 0)
        self.assertEqual(r["messages"], 0)
        self.assertEqual(status, 1)

    def _nginx(self, directory, **conf):
        why = tlsbench.have_nginx()
        if why:
            self.skipTest(why + " (bench/run installs it)")
        port = free_port()
        path = tlsbench.nginx_conf(directory, port, CERT, KEY, **conf)
        p = subprocess.Popen(peers.nginx_argv(directory, path),
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        return port, p

    def test_nginx_handshakes_full_and_resumed_measure_its_worker(self):
        d = tempfile.mkdtemp(prefix="pcb-test-nginx-")
        port, p = self._nginx(d)
        try:
            wait_port(port, p)
            worker = peers.worker_pid(p.pid)
            for version, resume in (("1.3", False), ("1.3", True),
                                    ("1.2", True)):
                with self.subTest(version=version, resume=resume):
                    status, r = bench(
                        "handshake", "-a", f":{port}", "-c", 4,
                        "--tls-version", version, "-d", 0.5, "-w", 0.3,
                        "--server-pid", worker,
                        *(["--resume"] if resume else []))
                    self.check_handshakes(status, r, version, resume)
                    self.assertGreater(r["server"]["cpu_s"], 0)
        finally:
            p.terminate()
            p.wait(10)
            shutil.rmtree(d, ignore_errors=True)

    @unittest.skipUnless(PERCORED_TLS, "this percored has no TLS yet "
                         "(percored -t --set echo.tls_certificate=... fails)")
    def test_percored_tls_handshakes_and_echo(self):
        with Percored(*tlsbench.percored_tls_args(CERT, KEY),
                      workers=2) as srv:
            port = srv.ports["echo"]
            for version in ("1.2", "1.3"):
                with self.subTest(version=version):
                    status, r = bench("handshake", "-a", f":{port}", "-c", 4,
                                      "--tls-version", version, "--resume",
                                      "-s", 64, "-d", 0.5, "-w", 0.3,
                                      "--server-pid", srv.proc.pid)
                    self.check_handshakes(status, r, version, True)
            status, r = bench("echo", "--tls", "-a", f":{port}", "-c", 10,
                              "-s", 4096, "-r", 1000, "-d", 1)
            self.check_report(status, r, "echo")

    # ---- what it must catch ---------------------------------------------

    def test_a_wrong_byte_in_an_echo_is_counted(self):
        def corrupt(conn):
            n = 0
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                data = bytearray(data)
                for i in range(len(data)):
                    if (n + i) % 1000 == 999:
                        data[i] ^= 1
                n += len(data)
                conn.sendall(bytes(data))
        with FakeServer(corrupt) as fake:
            status, r = bench("echo", "-a", f":{fake.port}", "-c", 2,
                              "-s", 600, "-d", 0.5, "--drain", 1)
        self.assertGreater(r["errors"]["mismatch"], 0)
        self.assertEqual(status, 1)

    def test_a_server_that_hangs_up_is_counted(self):
        def hang_up(conn):
            conn.recv(10)
            conn.close()
        with FakeServer(hang_up) as fake:
            status, r = bench("echo", "-a", f":{fake.port}", "-c", 3,
                              "-d", 0.5)
        self.assertEqual(r["errors"]["closed"], 3)
        self.assertEqual(status, 1)

    def test_a_refused_connection_is_counted(self):
        status, r = bench("idle", "-a", f":{free_port()}", "-c", 5, "-d", 0.2)
        self.assertEqual(r["errors"]["connect"], 5)
        self.assertEqual(status, 1)
    # ---- the command line -----------------------------------------------

    def test_usage_errors_exit_2_with_a_reason(self):
        p = subprocess.run([BENCH, "echo", "--rate", "10", "-p", "2"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn("exclude each other", p.stderr)
        p = subprocess.run([BENCH, "--help"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 0)
        self.assertIn("--target percore|redis|nats|irc", p.stdout)

    def test_progress_line_only_on_a_terminal(self):
        with Percored(workers=2) as srv:
            args = ["echo", "-a", f":{srv.ports['echo']}", "-c", 2, "-d", 1.2]
            p = subprocess.run([BENCH] + [str(a) for a in args],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.stderr, "")
            self.assertIn("messages", p.stdout)
            master, slave = pty.openpty()
            proc = subprocess.Popen([BENCH] + [str(a) for a in args],
                                    stdout=subprocess.PIPE, stderr=slave)
            os.close(slave)
            seen = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            proc.communicate(timeout=30)
            os.close(master)
        self.assertIn(b"msg/s", seen)
        self.assertIn(b"\r", seen)


if __name__ == "__main__":
    unittest.main()

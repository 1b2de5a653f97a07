"""Configuration, limits, timeouts, reload and shutdown of a real percored."""

import os
import resource
import signal
import socket
import tempfile
import threading
import time
import unittest

from percored import (SLOW, Percored, free_port, recv_exactly, run,
                      wait_for)

ECHO_METRICS = (("echo", "echo"), ("metrics", "metrics"))


def write_config(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False)
    f.write(text)
    f.close()
    return f.name


class ConfigTest(unittest.TestCase):

    def test_help_and_version(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("--listen", r.stdout)
        r = run(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"percored \d+\.\d+\.\d+")

    def test_check_accepts_a_good_config(self):
        path = write_config(
            "[server]\nworkers = 2\ndistribution = acceptor\n"
            "[listener front]\nlisten = 127.0.0.1:7100\nprotocol = echo\n"
            "idle_timeout = 30\nmax_output = 2M\n")
        try:
            r = run(["-t", "-c", path])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("valid", r.stdout)
        finally:
            os.unlink(path)

    def test_bad_config_names_file_line_and_key(self):
        cases = [
            ("[server]\nworkers = 2\nbacklogg = 5\n", ":3: [server] backlogg: unknown key"),
            ("[server]\n\nworkers = many\n", ":3: [server] workers: 'many'"),
            ("[listener a]\nlisten = 127.0.0.1:1\nprotocol = echo\nmax_output = 12Q\n",
             ":4: [listener a] max_output: '12Q' is not a size"),
            ("[listener a]\nlisten = 127.0.0.1:1\nprotocol = gopher\n",
             "unknown protocol 'gopher'"),
            ("[listener a]\nprotocol = echo\n", "'listen' is required"),
            ("[server]\nbackend = kqueue\n", "backend 'kqueue' is not supported"),
            ("[nonsense]\nx = 1\n", ":2: [nonsense]: unknown section"),
            ("[server\nworkers = 1\n", ":1: syntax error"),
            ("[listener a]\nlisten = nowhere\nprotocol = echo\n", "expected HOST:PORT"),
            ("[listener a]\nlisten = 127.0.0.1:1\nprotocol = echo\n"
             "low_watermark = 1M\nhigh_watermark = 64K\n",
             ":4: [listener a] low_watermark: low_watermark (1048576) must be "
             "below high_watermark (65536)"),
            ("[listener a]\nlisten = 127.0.0.1:1\nprotocol = echo\n\n"
             "max_output = 1K\n", ":5: [listener a] max_output: high_watermark "
             "(262144) must not exceed max_output (1024)"),
            ("[server]\n# " + "x" * 300 + "\nworkers = 1\n",
             ":2: line longer than 199 characters"),
            ("[listener c]\nlisten = 127.0.0.1:1\nprotocol = chat\n"
             "flood_rate = -1\n", ":4: [listener c] flood_rate"),
            ("[listener c]\nlisten = 127.0.0.1:1\nprotocol = chat\n"
             "max_input = 1K\n", ":4: [listener c] max_input: max_line (4096) "
             "must be at least 2 bytes below max_input (1024)"),
            ("[listener c]\nlisten = 127.0.0.1:1\nprotocol = chat\n\n"
             "default_room = no way\n", ":5: [listener c] default_room: "
             "'no way' is not a room"),
        ]
        for text, message in cases:
            with self.subTest(message=message):
                path = write_config(text)
                try:
                    r = run(["-t", "-c", path])
                    self.assertEqual(r.returncode, 1)
                    self.assertIn(message, r.stderr)
                    self.assertIn(path if message.startswith(":") else "", r.stderr)
                    self.assertEqual(r.stderr.count("\n"), 1, "one clear line")
                finally:
                    os.unlink(path)

    def test_shortcut_options_are_named_as_typed(self):
        for args, message in [
                (["--backend", "nosuch"], "percored: --backend: [server] "
                 "backend: backend 'nosuch' is unknown"),
                (["-b", "nosuch"], "percored: -b: [server] backend: "),
                (["--workers=0"], "percored: --workers: [server] workers: '0' "
                 "must be 'auto' or 1 to 1024"),
                (["--log-level", "loud"], "percored: --log-level: [server] "
                 "log_level: 'loud' is not one of"),
                (["--set", "server.workers=0"], "percored: --set "
                 "server.workers: [server] workers: '0'")]:
            with self.subTest(args=args):
                r = run(["-t"] + args)
                self.assertEqual(r.returncode, 1)
                self.assertTrue(r.stderr.startswith(message), r.stderr)

    def test_missing_config_file_is_reported(self):
        r = run(["-c", "/nonexistent/percored.ini"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/percored.ini: cannot open config file", r.stderr)

    def test_command_line_overrides_the_file(self):
        port = free_port()
        config = (f"[server]\nworkers = 1\n[listener e]\nlisten = 127.0.0.1:{port}\n"
                  "protocol = echo\nidle_timeout = 300\n")
        with Percored("--workers", "3", "--set", "e.idle_timeout=0.2",
                      listeners=(), config=config) as srv:
            self.assertIn("3 workers", srv.output())
            srv.ports["e"] = port
            s = srv.connect("e")
            self.assertEqual(s.recv(1), b"", "idle_timeout from --set applies")
            s.close()

    def test_busy_port_fails_with_the_address(self):
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        try:
            r = run(["--listen", f"echo@127.0.0.1:{port}"])
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"cannot listen on 127.0.0.1:{port}: Address already in use",
                          r.stderr)
        finally:
            holder.close()

    def test_a_second_percored_cannot_share_a_reuseport_port(self):
        # SO_REUSEPORT would let it bind and take half the traffic.
        with Percored(workers=2) as first:
            port = first.ports["echo"]
            r = run(["--listen", f"echo@127.0.0.1:{port}"])
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"cannot listen on 127.0.0.1:{port}: Address already "
                          "in use (another process holds the port)", r.stderr)


class LimitsTest(unittest.TestCase):

    def test_idle_timeout_closes_a_silent_client(self):
        with Percored("--set", "echo.idle_timeout=0.3", listeners=ECHO_METRICS) as srv:
            quiet = srv.connect()
            chatty = srv.connect()
            start = time.time()
            # The chatty client stays active past the timeout and survives.
            for _ in range(8):
                chatty.sendall(b"ping")
                self.assertEqual(recv_exactly(chatty, 4), b"ping")
                time.sleep(0.1)
            self.assertEqual(quiet.recv(10), b"", "silent client was closed")
            self.assertGreaterEqual(time.time() - start, 0.25)
            chatty.sendall(b"still")
            self.assertEqual(recv_exactly(chatty, 5), b"still")
            idle = srv.total("percore_connections_closed_total",
                             listener="echo", reason="idle")
            self.assertEqual(idle, 1)

    def test_connection_limit_refuses_and_recovers(self):
        with Percored("--set", "echo.max_connections=5",
                      listeners=ECHO_METRICS, workers=2) as srv:
            held = [srv.connect() for _ in range(5)]
            for s in held:
                s.sendall(b"a")
                self.assertEqual(recv_exactly(s, 1), b"a")
            extra = srv.connect()
            self.assertEqual(extra.recv(10), b"", "over the limit: closed")
            wait_for(lambda: srv.total("percore_connections_refused_total",
                                       listener="echo") == 1,
                     what="refusal counted")
            held.pop().close()
            wait_for(lambda: srv.total("percore_connections_open",
                                       listener="echo") <= 4,
                     what="slot freed")
            again = srv.connect()
            again.sendall(b"b")
            self.assertEqual(recv_exactly(again, 1), b"b")

    def test_back_pressure_bounds_a_client_that_never_reads(self):
        with Percored("--set", "echo.max_output=256K", "--set", "echo.high_watermark=128K",
                      "--set", "echo.low_watermark=32K", listeners=ECHO_METRICS) as srv:
            s = srv.connect()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            # Echo of a client that never reads: back-pressure pauses
            # reading, so the server holds at most max_output per client.
            sent = 0
            s.settimeout(2)
            try:
                while sent < 64 << 20:
                    sent += s.send(b"x" * 65536)
            except (socket.timeout, BlockingIOError, ConnectionError):
                pass
            # Reading was paused, not the connection closed: it is bounded
            # by the kernel buffers plus max_output, far below what we tried.
            self.assertLess(sent, 64 << 20)
            self.assertEqual(srv.total("percore_connections_open",
                                       listener="echo"), 1)
            s.close()


class LimitsMoreTest(unittest.TestCase):

    def _count_refusals(self, *args, workers, allowed):
        with Percored(*args, listeners=ECHO_METRICS, workers=workers) as srv:
            held = []
            for _ in range(allowed):
                s = srv.connect()
                s.sendall(b"k")
                self.assertEqual(recv_exactly(s, 1), b"k")
                held.append(s)
            extra = srv.connect()
            self.assertEqual(extra.recv(1), b"")
            extra.close()
            for s in held:
                s.close()

    def test_per_worker_connection_limit(self):
        # One worker (plus the metrics connection it would count) keeps the
        # arithmetic exact: the limit is per worker, whichever listener.
        self._count_refusals("--set", "server.max_connections_per_worker=3",
                             workers=1, allowed=3)

    def test_global_connection_limit_spans_workers(self):
        self._count_refusals("--set", "server.max_connections=4",
                             workers=2, allowed=4)

    def test_fd_exhaustion_drops_without_spinning_and_recovers(self):
        check_fd_exhaustion(self, "--distribution", "reuseport")

    def test_fd_exhaustion_in_the_acceptor_thread(self):
        check_fd_exhaustion(self, "--distribution", "acceptor")


class ShutdownTest(unittest.TestCase):

    def test_sigterm_drains_connections_without_losing_bytes(self):
        srv = Percored("--set", "server.drain_timeout=20", workers=2)
        srv.start()
        results = {}

        def client(i):
            s = srv.connect()
            got = bytearray()
            sent = bytearray()
            for k in range(40):
                msg = b"%d:%d;" % (i, k) * 50
                s.sendall(msg)
                sent += msg
                got += recv_exactly(s, len(msg))
                time.sleep(0.01)
            s.close()
            results[i] = (bytes(sent), bytes(got))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        time.sleep(0.1)
        srv.signal(signal.SIGTERM)
        # New connections are refused once the listeners close.
        wait_for(lambda: "stopping" in srv.output(), what="stopping")
        for t in threads:
            t.join()
        status = srv.proc.wait(30 * SLOW)
        self.assertEqual(status, 0, srv.output())
        self.assertEqual(len(results), 20)
        for i, (sent, got) in results.items():
            self.assertEqual(sent, got, f"client {i} lost bytes")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", srv.ports["echo"]), timeout=2)
        srv.__exit__(None, None, None)

    def test_signals_during_a_drain_do_not_kill_and_a_second_term_closes(self):
        srv = Percored("--set", "server.drain_timeout=60", workers=2)
        srv.start()
        s = srv.connect()
        s.sendall(b"hi")
        self.assertEqual(recv_exactly(s, 2), b"hi")
        srv.signal(signal.SIGTERM)
        wait_for(lambda: "stopping" in srv.output(), what="stopping")
        srv.signal(signal.SIGHUP)
        srv.signal(signal.SIGUSR1)
        wait_for(lambda: "reload ignored" in srv.output(), what="reload refused")
        wait_for(lambda: "stats:" in srv.output(), what="stats while draining")
        self.assertIsNone(srv.proc.poll(), "a signal during the drain killed it")
        s.sendall(b"still")  # the drain serves open connections
        self.assertEqual(recv_exactly(s, 5), b"still")
        t0 = time.time()
        out = srv.stop()  # the second SIGTERM: no 60 s wait
        self.assertLess(time.time() - t0, 30 * SLOW)
        self.assertIn("closing open connections now", out)
        self.assertEqual(s.recv(10), b"")
        s.close()
        srv.__exit__(None, None, None)

    def test_drain_timeout_closes_lingering_connections(self):
        srv = Percored("--set", "server.drain_timeout=0.3")
        srv.start()
        s = srv.connect()
        s.sendall(b"hi")
        self.assertEqual(recv_exactly(s, 2), b"hi")
        t0 = time.time()
        out = srv.stop()
        self.assertLess(time.time() - t0, 10 * SLOW)
        self.assertIn("drain timeout", out)
        self.assertEqual(s.recv(10), b"")
        s.close()
        srv.__exit__(None, None, None)

    def test_sighup_reload_applies_a_new_limit_and_keeps_serving(self):
        port = free_port()
        mport = free_port()
        text = ("[listener echo]\nlisten = 127.0.0.1:%d\nprotocol = echo\n"
                "max_connections = %d\n[listener metrics]\nlisten = 127.0.0.1:%d\n"
                "protocol = metrics\n")
        path = write_config(text % (port, 100, mport))
        srv = Percored(listeners=(), config=None)
        srv.args += ["--config", path]
        srv.ports = {"echo": port, "metrics": mport}
        try:
            with srv:
                a = srv.connect()
                b = srv.connect()
                with open(path, "w") as f:
                    f.write(text % (port, 2, mport))
                srv.signal(signal.SIGHUP)
                wait_for(lambda: "reloaded" in srv.output(), what="reload")
                c = srv.connect()
                self.assertEqual(c.recv(10), b"", "third connection refused")
                a.sendall(b"ok")
                self.assertEqual(recv_exactly(a, 2), b"ok")
                # A broken config on reload keeps the running one.
                with open(path, "w") as f:
                    f.write("[server]\nworkers = lots\n")
                srv.signal(signal.SIGHUP)
                wait_for(lambda: "keeping the running config" in srv.output(),
                         what="refused reload")
                b.sendall(b"still")
                self.assertEqual(recv_exactly(b, 5), b"still")
                for s in (a, b, c):
                    s.close()
        finally:
            os.unlink(path)

    def test_sigusr1_logs_statistics(self):
        with Percored() as srv:
            s = srv.connect()
            s.sendall(b"x")
            recv_exactly(s, 1)
            srv.signal(signal.SIGUSR1)
            wait_for(lambda: "stats:" in srv.output(), what="stats line")
            self.assertIn("1 connections open", srv.output())
            s.close()


def check_fd_exhaustion(test, *args, limit=64, idle=1.0):
    """Runs percored (with `args`, which name the distribution) under an
    open-file limit of `limit`: a connection past it is dropped, the
    listener does not spin while connections wait in the backlog (watched
    for `idle` seconds), it is logged once per burst, and new connections
    are served again once clients leave. The limit is far below the
    machine's 20,000 cap, so the test owns it."""
    acceptor = args[args.index("--distribution") + 1] == "acceptor"

    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    with Percored(*args, listeners=ECHO_METRICS, workers=2,
                  preexec_fn=low_fd_limit) as srv:
        held, dropped = [], 0
        for _ in range(limit):
            s = srv.connect()
            try:
                s.sendall(b"x")
                got = s.recv(1)
            except ConnectionError:
                got = b""
            if got == b"x":
                held.append(s)
                continue
            dropped += 1
            s.close()
            break
        test.assertEqual(dropped, 1, "a connection past the fd limit is dropped")
        # Keep connections waiting in the backlog: a level-triggered
        # listener that cannot accept would now spin at full CPU.
        waiting = [socket.create_connection(("127.0.0.1", srv.ports["echo"]))
                   for _ in range(20)]
        cpu = srv.cpu_seconds()
        time.sleep(idle)
        used = srv.cpu_seconds() - cpu
        test.assertLess(used, idle / 2,
                        f"server used {used:.2f}s CPU in {idle}s while out of fds")
        out = srv.output()
        test.assertGreaterEqual(out.count("out of file descriptors"), 1)
        test.assertLessEqual(out.count("out of file descriptors"), 2,
                             "logged once per burst per worker")
        for s in held + waiting:
            s.close()

        # Recovers by itself: new connections are served again.
        def echo_works():
            try:
                s = srv.connect()
                s.sendall(b"back")
                ok = recv_exactly(s, 4) == b"back"
                s.close()
                return ok
            except OSError:
                return False
        wait_for(echo_works, what="recovery after fd exhaustion")
        wait_for(lambda: "accepting again" in srv.output(), what="recovery log")
        # The acceptor's drops and the workers' count alike.
        test.assertGreater(srv.total("percore_accept_fd_exhausted_total",
                                     listener="echo"), 0)
        return srv.stop()


if __name__ == "__main__":
    unittest.main()

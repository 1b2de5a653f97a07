"""What an operator reads off a running percored: the per-connection
lines at log_level = debug (accepted with peer and worker, refused with
why, closed with reason and byte counts), thread names for top -H, perf
and gdb, and a warning when workers outnumber the CPUs."""

import os
import subprocess
import tempfile
import time
import unittest

from percored import (BINARY, SLOW, Percored, free_port, recv_exactly,
                      wait_for)


class ConnectionLines(unittest.TestCase):
    def test_accept_refuse_and_close_lines_at_debug(self):
        with Percored("--log-level", "debug", "--set",
                      "echo.max_connections=1", workers=2) as srv:
            a = srv.connect()
            a.sendall(b"x" * 100)
            self.assertEqual(recv_exactly(a, 100), b"x" * 100)
            port = a.getsockname()[1]
            b = srv.connect()  # over the listener's limit
            self.assertEqual(b.recv(10), b"")  # closed by the server
            b.close()
            a.close()
            wait_for(lambda: "closed on echo" in srv.output(),
                     what="the close line")
            out = srv.output()
            self.assertRegex(out, r"debug: connection (\d+): accepted from "
                             rf"127\.0\.0\.1:{port} on echo by worker [01]")
            self.assertRegex(out, r"debug: worker [01]: refused "
                             r"127\.0\.0\.1:\d+ on echo: a connection limit "
                             r"is reached")
            # 100 bytes each way; the FIN received counts one more in.
            self.assertRegex(out, r"debug: connection \d+: closed on echo "
                             r"\(peer\), 101 bytes in, 100 bytes out")

    def test_no_connection_lines_below_debug(self):
        with Percored(workers=1) as srv:
            with srv.connect() as s:
                s.sendall(b"hi")
                recv_exactly(s, 2)
            time.sleep(0.2)
            self.assertNotIn("accepted from", srv.output())


class PidFile(unittest.TestCase):
    def test_written_at_start_and_removed_at_exit(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "percored.pid")
            srv = Percored("--set", f"server.pid_file={path}", workers=1)
            with srv:
                with open(path) as f:
                    self.assertEqual(f.read(), f"{srv.proc.pid}\n")
                # No temporary file left; the reload outcome beside it.
                self.assertEqual(sorted(os.listdir(d)),
                                 ["percored.pid", "percored.pid.reload"])
            self.assertFalse(os.path.exists(path))
            self.assertEqual(os.listdir(d), [])

    def test_an_unwritable_place_stops_the_start(self):
        r = subprocess.run([BINARY, "--listen", f"echo@127.0.0.1:{free_port()}",
                            "--set", "server.pid_file=/nonexistent/p.pid"],
                           capture_output=True, text=True, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 1)
        self.assertIn("pid_file /nonexistent/p.pid: No such file or directory",
                      r.stderr)


class Reloads(unittest.TestCase):
    def test_200_reloads_are_all_applied(self):
        """Replaced configs are freed once every worker has taken a newer
        one, so reloads have no limit (there used to be 64). A TLS
        listener's context is rebuilt each time, and echo keeps working
        throughout."""
        import signal
        with tempfile.TemporaryDirectory() as d:
            key, cert = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                            "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                            "-subj", "/CN=localhost", "-keyout", key, "-out",
                            cert], check=True, capture_output=True)
            config = ("[listener tls]\nlisten = 127.0.0.1:%d\nprotocol = "
                      "echo\ntls_certificate = %s\ntls_key = %s\n"
                      % (free_port(), cert, key))
            with Percored(config=config, workers=2) as srv:
                s = srv.connect()
                for i in range(1, 201):
                    srv.signal(signal.SIGHUP)
                    wait_for(lambda: srv.output().count("reloaded") >= i,
                             what=f"reload {i}")
                    if i % 50 == 0:
                        s.sendall(b"still %d" % i)
                        self.assertEqual(recv_exactly(s, len(b"still %d" % i)),
                                         b"still %d" % i)
                s.close()
                out = srv.output()
                self.assertEqual(out.count("reloaded"), 200)
                self.assertNotIn("reload refused", out)


class Threads(unittest.TestCase):
    def test_thread_names(self):
        with Percored("--distribution", "acceptor", workers=3) as srv:
            task = f"/proc/{srv.proc.pid}/task"
            names = sorted(open(f"{task}/{t}/comm").read().strip()
                           for t in os.listdir(task))
            for want in ("pc-main", "pc-acceptor", "pc-worker/0",
                         "pc-worker/1", "pc-worker/2"):
                self.assertIn(want, names)

    def test_more_workers_than_cpus_is_said(self):
        cpus = len(os.sched_getaffinity(0))
        with Percored(workers=cpus + 1) as srv:
            # usable CPUs may be fewer still (a cgroup quota)
            self.assertRegex(srv.output(), rf"warning: {cpus + 1} workers on "
                             r"\d+ usable CPUs")
        with Percored(workers=1) as srv:
            self.assertNotIn("usable CPUs", srv.output())


if __name__ == "__main__":
    unittest.main()

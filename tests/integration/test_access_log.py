"""Per-listener access logs: one line per closed connection, with the
exact bytes each way, written by a thread of their own, reopened at every
reload (logrotate) and refused with a clear error when they cannot be
opened."""

import os
import re
import shutil
import signal
import socket
import ssl
import tempfile
import time
import unittest

from percored import Percored, free_port, recv_exactly, run, wait_for
from tls_support import Certs, TlsServer, client_context, tls_connect, tls_keys

LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) listener=(?P<listener>\S+) "
    r"peer=(?P<peer>\S+) worker=(?P<worker>\d+) duration=(?P<duration>\d+\.\d{3}) "
    r"in=(?P<inb>\d+) out=(?P<outb>\d+) close=(?P<close>[a-z_-]+) "
    r"tls=(?P<tls>\S+)$")


def parse(path):
    """The lines of an access log, each checked against the format, as
    {client port: fields}."""
    if not os.path.exists(path):
        return {}
    out = {}
    with open(path) as f:
        for line in f.read().splitlines():
            m = LINE.match(line)
            assert m, f"not an access log line: {line!r}"
            out[int(m["peer"].rsplit(":", 1)[1])] = m.groupdict()
    return out


def echo_round(port, n):
    """Sends n bytes to the echo listener, reads them back and closes;
    returns the client's port (the line's peer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        me = s.getsockname()[1]
        s.sendall(b"x" * n)
        assert recv_exactly(s, n) == b"x" * n
    return me


class AccessLog(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pc-access-")
        self.log = os.path.join(self.dir, "access.log")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def server(self, *extra, **kw):
        return Percored("--set", f"echo.access_log={self.log}",
                        "--log-level", "info", *extra, **kw)

    def test_a_line_per_close_with_the_exact_bytes(self):
        sizes = [1, 6, 4096, 65537, 1 << 20]
        with self.server(listeners=(("echo", "echo"), ("quiet", "echo")),
                         workers=2) as srv:
            t0 = time.time()
            ports = {echo_round(srv.ports["echo"], n): n for n in sizes}
            # The listener without a log writes none.
            echo_round(srv.ports["quiet"], 10)
            wait_for(lambda: len(parse(self.log)) == len(sizes),
                     what="a line per connection")
        lines = parse(self.log)
        self.assertEqual(set(lines), set(ports))
        for port, n in ports.items():
            f = lines[port]
            self.assertEqual((f["listener"], f["inb"], f["outb"], f["close"],
                              f["tls"]), ("echo", str(n), str(n), "peer", "-"))
            self.assertIn(f["worker"], ("0", "1"))
            self.assertEqual(f["peer"], f"127.0.0.1:{port}")
            self.assertLess(float(f["duration"]), 60)
            when = time.mktime(time.strptime(f["time"][:19],
                                             "%Y-%m-%dT%H:%M:%S"))
            self.assertLess(abs(when - time.timezone - t0), 120)

    def test_a_server_side_close_names_its_reason(self):
        with self.server("--set", "echo.idle_timeout=0.3") as srv:
            with socket.create_connection(
                    ("127.0.0.1", srv.ports["echo"]), timeout=20) as s:
                me = s.getsockname()[1]
                s.sendall(b"hello\n")
                self.assertEqual(recv_exactly(s, 6), b"hello\n")
                self.assertEqual(s.recv(10), b"")  # closed for idleness
            wait_for(lambda: me in parse(self.log), what="the idle line")
            f = parse(self.log)[me]
            self.assertEqual((f["inb"], f["outb"], f["close"]),
                             ("6", "6", "idle"))
            self.assertGreaterEqual(float(f["duration"]), 0.3)

    def test_reload_reopens_for_logrotate(self):
        with self.server() as srv:
            first = echo_round(srv.ports["echo"], 5)
            wait_for(lambda: first in parse(self.log), what="the first line")
            rotated = self.log + ".1"
            os.rename(self.log, rotated)  # what logrotate does
            # Not yet reopened: the next line still goes to the old file.
            second = echo_round(srv.ports["echo"], 7)
            wait_for(lambda: second in parse(rotated), what="the second line")
            said = srv.output().count("writing to")
            srv.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: srv.output().count("writing to") > said,
                     what="the reopen")
            third = echo_round(srv.ports["echo"], 9)
            wait_for(lambda: third in parse(self.log), what="the third line")
            self.assertEqual(set(parse(rotated)), {first, second})
            self.assertEqual(set(parse(self.log)), {third})
            # SIGUSR1 logs statistics and leaves the log open where it is.
            os.rename(self.log, rotated)
            srv.proc.send_signal(signal.SIGUSR1)
            wait_for(lambda: "stats:" in srv.output(), what="stats")
            fourth = echo_round(srv.ports["echo"], 1)
            wait_for(lambda: fourth in parse(rotated), what="the fourth line")
            self.assertFalse(os.path.exists(self.log))

    def test_a_listener_added_by_a_reload_logs_too(self):
        ports = [free_port(), free_port()]
        ini = os.path.join(self.dir, "p.ini")
        other = os.path.join(self.dir, "two.log")

        def config(with_two):
            text = (f"[listener echo]\nlisten = 127.0.0.1:{ports[0]}\n"
                    f"protocol = echo\naccess_log = {self.log}\n")
            if with_two:
                text += (f"[listener two]\nlisten = 127.0.0.1:{ports[1]}\n"
                         f"protocol = echo\naccess_log = {other}\n")
            with open(ini, "w") as f:
                f.write(text)
        config(False)
        with Percored("--config", ini, listeners=()) as srv:
            config(True)
            srv.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "reloaded" in srv.output(), what="the reload")
            mine = echo_round(ports[1], 11)
            first = echo_round(ports[0], 3)
            wait_for(lambda: mine in parse(other), what="the new one's line")
            wait_for(lambda: first in parse(self.log), what="the old one's")
            self.assertEqual(parse(other)[mine]["listener"], "two")
            self.assertEqual(parse(other)[mine]["inb"], "11")
            self.assertEqual(set(parse(self.log)), {first})

    def test_lines_of_a_stop_are_written(self):
        srv = self.server(workers=2)
        with srv:
            held = [socket.create_connection(("127.0.0.1", srv.ports["echo"]),
                                             timeout=20) for _ in range(20)]
            for s in held:
                s.sendall(b"12")
                self.assertEqual(recv_exactly(s, 2), b"12")
            ports = {s.getsockname()[1] for s in held}
            srv.proc.send_signal(signal.SIGTERM)
            for s in held:
                s.close()
            srv.wait_exit()
        lines = parse(self.log)
        self.assertEqual(set(lines), ports)
        self.assertTrue(all(f["inb"] == "2" and f["outb"] == "2"
                            for f in lines.values()))

    def test_stderr_and_tls(self):
        certs = Certs()
        self.addCleanup(certs.close)
        keys = dict(tls_keys(certs), access_log="stderr")
        with TlsServer([("tls", "echo", keys)]) as srv:
            ctx = client_context(certs, version=ssl.TLSVersion.TLSv1_3)
            with tls_connect(ctx, srv.ports["tls"]) as s:
                me = s.getsockname()[1]
                s.sendall(b"secret")
                self.assertEqual(recv_exactly(s, 6), b"secret")
            pat = rf"listener=tls peer=127\.0\.0\.1:{me} .* tls=TLSv1\.3"
            wait_for(lambda: re.search(pat, srv.output()),
                     what="the TLS line on stderr:\n" + srv.output())
            line = re.search(rf"\S+ listener=tls peer=127\.0\.0\.1:{me} .*",
                             srv.output())[0]
            f = LINE.match(line).groupdict()
            # Socket bytes: TLS records are larger than what they carry.
            self.assertGreater(int(f["inb"]), 6)
            self.assertGreater(int(f["outb"]), 6)

    def test_bad_places_are_refused_clearly(self):
        port = free_port()
        r = run(["-t", "--listen", f"echo@127.0.0.1:{port}",
                 "--set", "echo.access_log=relative.log"])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "percored: --set echo.access_log: "
                         "[listener echo] access_log: 'relative.log' must be "
                         "an absolute path, stderr or syslog\n")
        r = run(["--listen", f"echo@127.0.0.1:{port}",
                 "--set", "echo.access_log=/nonexistent/dir/a.log"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("[listener echo] access_log: /nonexistent/dir/a.log: "
                      "No such file or directory", r.stderr)
        self.assertNotIn("running:", r.stderr)


if __name__ == "__main__":
    unittest.main()

"""`percored --reload`: SIGHUP the running percored, wait for the outcome
it records, exit 0 when applied and 1 with the reason when refused, which
is what makes `systemctl reload` fail on a refused reload (ExecReload=)."""

import os
import signal
import socket
import subprocess
import tempfile
import unittest

from percored import BINARY, SLOW, Percored, free_port, recv_exactly, run


def echo_config(port, extra=""):
    return f"""[server]
log_level = info
{extra}
[listener echo]
listen = 127.0.0.1:{port}
protocol = echo
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class ReloadCommand(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.pid_file = os.path.join(self.dir.name, "percored.pid")
        self.ini = os.path.join(self.dir.name, "percored.ini")
        self.port = free_port()

    def tearDown(self):
        self.dir.cleanup()

    def start(self, env=None):
        write(self.ini, echo_config(
            self.port, f"pid_file = {self.pid_file}"))
        srv = Percored("--config", self.ini, listeners=(), workers=1, env=env)
        srv.ports["echo"] = self.port
        return srv

    def echoes(self, srv):
        with srv.connect() as s:
            s.sendall(b"still here\n")
            return recv_exactly(s, 11) == b"still here\n"

    def test_a_good_config_is_applied_and_exits_0(self):
        with self.start() as srv:
            write(self.ini, echo_config(self.port, f"pid_file = {self.pid_file}"
                                        "\nmax_connections = 50"))
            r = run(["--reload", "--config", self.ini])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, f"percored: reloaded {self.ini}: "
                             "listeners, limits, timeouts, log level and TLS "
                             "certificates applied\n")
            self.assertEqual(srv.output().count("reloaded"), 1)
            # Twice in a row: each waits for its own, newer outcome.
            self.assertEqual(run(["--reload", "--pid", self.pid_file])
                             .returncode, 0)
            self.assertEqual(srv.output().count("reloaded"), 2)

    def test_a_bad_config_exits_1_with_the_reason_and_keeps_serving(self):
        with self.start() as srv:
            write(self.ini, "[server]\nworkers = lots\n")
            r = run(["--reload", "--pid", self.pid_file])
            self.assertEqual(r.returncode, 1)
            self.assertEqual(
                r.stderr, "percored: reload failed, keeping the running "
                f"config: {self.ini}:2: [server] workers: 'lots' must be "
                "'auto' or 1 to 1024\n")
            self.assertEqual(r.stdout, "")
            self.assertTrue(self.echoes(srv))
            # Refusals the config check cannot see: a new listener on a
            # port another process holds, an access log it cannot open.
            with socket.socket() as busy:
                busy.bind(("127.0.0.1", 0))
                busy.listen()
                taken = busy.getsockname()[1]
                write(self.ini, echo_config(
                    self.port, f"pid_file = {self.pid_file}")
                    + f"[listener two]\nlisten = 127.0.0.1:{taken}\n"
                    "protocol = echo\n")
                r = run(["--reload", "--pid", self.pid_file])
            self.assertEqual(r.returncode, 1)
            self.assertIn("percored: reload refused, keeping the running "
                          "config and listeners: ", r.stderr)
            self.assertIn(f"127.0.0.1:{taken}", r.stderr)
            self.assertTrue(self.echoes(srv))
            write(self.ini, echo_config(
                self.port, f"pid_file = {self.pid_file}")
                + "access_log = /nonexistent/dir/a.log\n")
            r = run(["--reload", "--pid", self.pid_file])
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr, "percored: reload refused, keeping the "
                             "running config and listeners: [listener echo] "
                             "access_log: /nonexistent/dir/a.log: No such file "
                             "or directory\n")
            self.assertTrue(self.echoes(srv))

    def test_without_a_pid_it_says_what_to_give(self):
        r = run(["--reload"])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "percored: --reload: the built-in "
                         "configuration sets no server.pid_file: give --pid "
                         "FILE|PID\n")
        missing = os.path.join(self.dir.name, "none.pid")
        r = run(["--reload", "--pid", missing])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, f"percored: --reload: pid file {missing}: "
                         "No such file or directory\n")
        r = run(["--reload", "--pid", "1234"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("a bare pid (1234) needs $RUNTIME_DIRECTORY", r.stderr)

    def test_a_process_that_is_not_percored_is_not_signalled(self):
        """SIGHUP kills a process that does not handle it: the client
        sends one only to the process the outcome file names."""
        other = subprocess.Popen(["sleep", "60"])
        try:
            write(self.pid_file, f"{other.pid}\n")
            r = run(["--reload", "--pid", self.pid_file])
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"percored (pid {other.pid}) has not recorded that "
                          "it handles reloads", r.stderr)
            self.assertIsNone(other.poll(), "the other process was signalled")
        finally:
            other.kill()
            other.wait()

    def test_under_systemd_the_pid_and_runtime_directory_suffice(self):
        env = {"RUNTIME_DIRECTORY": self.dir.name}
        with self.start(env=env) as srv:
            status = os.path.join(self.dir.name, "percored.reload")
            self.assertTrue(os.path.exists(status))
            r = subprocess.run([BINARY, "--reload", "--pid", str(srv.proc.pid)],
                               capture_output=True, text=True,
                               env=dict(os.environ, **env), timeout=30 * SLOW)
            self.assertEqual(r.returncode, 0, r.stderr)
            srv.stop()
            self.assertFalse(os.path.exists(status), "removed at exit")

    def test_a_reload_while_stopping_is_refused(self):
        srv = self.start()
        with srv:
            held = srv.connect()  # keeps the drain going, once accepted:
            held.sendall(b"x")
            self.assertEqual(recv_exactly(held, 1), b"x")
            srv.signal(signal.SIGTERM)
            srv.output()
            try:
                r = run(["--reload", "--pid", self.pid_file])
                self.assertEqual(r.returncode, 1)
                self.assertIn("reload ignored: the server is stopping",
                              r.stderr)
            finally:
                held.close()
            srv.wait_exit()


if __name__ == "__main__":
    unittest.main()

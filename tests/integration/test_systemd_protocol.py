"""percored's side of the systemd protocols, against a real percored with
no systemd around: the sd_notify messages (READY, STATUS, RELOADING,
STOPPING, WATCHDOG) as a test notification socket receives them, socket
activation through systemd-socket-activate (LISTEN_FDS), and the journal's
<N> priority prefixes. tests/integration/test_systemd_real.py checks the
same under a real systemd."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from percored import (BINARY, SLOW, Percored, free_port, recv_exactly,
                      wait_for)

ACTIVATE = shutil.which("systemd-socket-activate")
# Variables a sanitizer build needs to reach percored through
# systemd-socket-activate, which starts it with an empty environment.
PASS_ENV = [k for k in os.environ
            if k.endswith("SAN_OPTIONS") or k.startswith("PERCORED_DEBUG")]


class NotifySocket:
    """A stand-in for systemd's notification socket (NOTIFY_SOCKET)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pc-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.seen = []

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            msg = self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        self.seen.append(msg)
        return msg

    def wait(self, pattern, timeout=10):
        """The next message matching pattern (a regex), skipping others."""
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            msg = self._read(max(0.01, deadline - time.time()))
            if msg is not None and re.search(pattern, msg):
                return msg
        raise AssertionError(f"no notification matching {pattern!r}; "
                             f"got {self.seen}")

    def collect(self, seconds):
        """Every message that arrives within `seconds`."""
        out = []
        deadline = time.time() + seconds
        while time.time() < deadline:
            msg = self._read(max(0.01, deadline - time.time()))
            if msg is not None:
                out.append(msg)
        return out


def write_config(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False)
    f.write(text)
    f.close()
    return f.name


def echo_once(port, data=b"ping\n"):
    with socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW) as s:
        s.sendall(data)
        return recv_exactly(s, len(data))


class NotifyTest(unittest.TestCase):

    def setUp(self):
        self.notify = NotifySocket()
        self.addCleanup(self.notify.close)

    def test_ready_once_listening_with_workers_in_status(self):
        with Percored(env={"NOTIFY_SOCKET": self.notify.path}) as srv:
            msg = self.notify.wait(r"READY=1")
            self.assertRegex(msg, r"STATUS=2 workers, \d+ connections open")
            # READY means the listener accepts and a worker serves.
            self.assertEqual(echo_once(srv.ports["echo"]), b"ping\n")
            self.assertIn("listening on", srv.output())

    def test_reload_is_bracketed_and_names_what_needs_a_restart(self):
        port, other = free_port(), free_port()
        text = ("[server]\nbackend = %s\n[listener echo]\n"
                "listen = 127.0.0.1:%d\nprotocol = echo\n"
                "idle_timeout = %d\n")
        path = write_config(text % ("auto", port, 300))
        self.addCleanup(os.unlink, path)
        srv = Percored("--config", path, listeners=(),
                       env={"NOTIFY_SOCKET": self.notify.path})
        with srv:
            self.notify.wait(r"READY=1")
            with open(path, "w") as f:
                f.write(text % ("poll", other, 60))
            before = time.monotonic_ns() // 1000
            srv.signal(signal.SIGHUP)
            msg = self.notify.wait(r"RELOADING=1")
            stamp = int(re.search(r"MONOTONIC_USEC=(\d+)", msg).group(1))
            self.assertGreaterEqual(stamp, before)
            self.notify.wait(r"READY=1")
            out = srv.output()
            self.assertIn("'backend' changed: needs a restart", out)
            self.assertIn("listener echo moved from 127.0.0.1:%d to "
                          "127.0.0.1:%d" % (port, other), out)
            self.assertIn("reloaded", out)
            # The live part applied, the listener moved with it.
            self.assertEqual(echo_once(other), b"ping\n")
            port = other

            with open(path, "w") as f:
                f.write("[server]\nworkers = many\n")
            srv.signal(signal.SIGHUP)
            self.notify.wait(r"RELOADING=1")
            self.notify.wait(r"READY=1")
            self.assertIn("reload failed, keeping the running config: %s:2: "
                          "[server] workers" % path, srv.output())
            self.assertEqual(echo_once(port), b"ping\n")

    def test_stop_says_stopping_and_asks_time_for_the_drain(self):
        srv = Percored("--set", "server.drain_timeout=20",
                       env={"NOTIFY_SOCKET": self.notify.path})
        with srv:
            self.notify.wait(r"READY=1")
            srv.stop()
            msg = self.notify.wait(r"STOPPING=1")
            self.assertIn("EXTEND_TIMEOUT_USEC=25000000", msg)
            self.assertIn("draining", msg)

    def test_watchdog_pings_only_while_every_worker_loop_runs(self):
        env = {"NOTIFY_SOCKET": self.notify.path,
               "WATCHDOG_USEC": str(int(1.2e6 * SLOW)),
               "PERCORED_DEBUG_HANG_WORKER": "1"}
        srv = Percored(workers=2, env=env)
        with srv:
            self.notify.wait(r"READY=1")
            pings = [m for m in self.notify.collect(1.5 * SLOW)
                     if m == "WATCHDOG=1"]
            self.assertGreaterEqual(len(pings), 3)
            if "SIGUSR2 will make worker 1 hang" not in srv.output():
                srv.stop()
                self.skipTest("built without PC_FAULT_HOOKS (a Release build)")
            srv.signal(signal.SIGUSR2)
            self.notify.wait(r"STATUS=worker 1 stuck")
            after = [m for m in self.notify.collect(1.5 * SLOW)
                     if m == "WATCHDOG=1"]
            self.assertEqual(after, [], "no WATCHDOG=1 while a worker hangs")
            self.assertIn("worker 1 has not run its event loop", srv.output())
            # A hung worker never drains: end it the way systemd would.
            srv.proc.kill()
            srv.proc.wait()


@unittest.skipUnless(ACTIVATE, "systemd-socket-activate is not installed "
                     "(Debian package systemd)")
class SocketActivationTest(unittest.TestCase):

    def activate(self, listen, names, config, notify=None):
        """systemd-socket-activate listening on `listen`, which starts
        percored on the first connection and passes the sockets on."""
        self.log = tempfile.TemporaryFile("w+")
        args = [ACTIVATE]
        for addr in listen:
            args += ["-l", addr]
        args += ["--fdname=" + ":".join(names)]
        for k in PASS_ENV:
            args += ["-E", k]
        if notify:
            args += ["-E", "NOTIFY_SOCKET=" + notify]
        args += [BINARY, "--config", config, "--workers", "2"]
        proc = subprocess.Popen(args, stdout=self.log,
                                stderr=subprocess.STDOUT)
        self.addCleanup(self.end, proc)
        return proc

    def end(self, proc):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self.log.close()

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, proc):
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(30 * SLOW), 0, self.output())
        self.assertNotRegex(self.output(), r"Sanitizer|runtime error:")

    def wait_listening(self, port):
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("systemd-socket-activate did not listen")

    def test_inherited_socket_serves_the_connection_that_started_it(self):
        port, own = free_port(), free_port()
        path = write_config(
            "[server]\ndistribution = reuseport\n"
            "[listener echo]\nlisten = 127.0.0.1:%d\nprotocol = echo\n"
            "[listener own]\nlisten = 127.0.0.1:%d\nprotocol = echo\n"
            % (port, own))
        self.addCleanup(os.unlink, path)
        notify = NotifySocket()
        self.addCleanup(notify.close)
        proc = self.activate(["127.0.0.1:%d" % port], ["echo"], path,
                             notify.path)
        # Probing would itself start percored; connect once, for real:
        # this client connects before percored runs, and must be served.
        deadline = time.time() + 10 * SLOW
        while True:
            try:
                first = socket.create_connection(("127.0.0.1", port), 1)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        first.settimeout(20 * SLOW)
        first.sendall(b"early\n")
        self.assertEqual(recv_exactly(first, 6), b"early\n")
        first.close()
        notify.wait(r"READY=1")
        out = self.output()
        # One socket cannot be one per worker: the acceptor serves it.
        self.assertIn("listening on 127.0.0.1:%d (echo, echo, acceptor)"
                      % port, out)
        self.assertIn("one socket from systemd", out)
        # A listener with no socket from systemd binds its own.
        self.assertIn("listening on 127.0.0.1:%d (own, echo, reuseport)"
                      % own, out)
        self.assertEqual(echo_once(own), b"ping\n")
        self.assertEqual(echo_once(port), b"ping\n")
        self.stop(proc)

    def test_inherited_unix_socket_path_is_left_to_systemd(self):
        d = tempfile.mkdtemp(prefix="pc-unix-")
        self.addCleanup(shutil.rmtree, d, True)
        sock = os.path.join(d, "echo.sock")
        path = write_config("[listener echo]\nlisten = unix:%s\n"
                            "protocol = echo\n" % sock)
        self.addCleanup(os.unlink, path)
        proc = self.activate([sock], ["echo"], path)
        wait_for(lambda: os.path.exists(sock), what="socket file")
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(20 * SLOW)
            s.connect(sock)
            s.sendall(b"unix\n")
            self.assertEqual(recv_exactly(s, 5), b"unix\n")
        wait_for(lambda: "running:" in self.output(), what="start")
        self.stop(proc)
        # percored closed its copy but did not unlink what systemd owns.
        self.assertTrue(os.path.exists(sock))

    def test_socket_for_no_listener_is_refused_by_name(self):
        port = free_port()
        path = write_config("[listener echo]\nlisten = 127.0.0.1:%d\n"
                            "protocol = echo\n" % free_port())
        self.addCleanup(os.unlink, path)
        proc = self.activate(["127.0.0.1:%d" % port], ["gopher"], path)
        self.wait_listening(port)
        self.assertEqual(proc.wait(30 * SLOW), 1)
        self.assertIn("systemd passed a socket named 'gopher' "
                      "(FileDescriptorName=), but the config has no "
                      "[listener gopher]", self.output())


class JournalTest(unittest.TestCase):

    def test_journal_stream_gets_priority_prefixes(self):
        srv = Percored()
        st = os.fstat(srv.log.fileno())
        srv.env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        with srv:
            srv.signal(signal.SIGUSR1)
            wait_for(lambda: "stats:" in srv.output(), what="stats")
            out = srv.stop()
        lines = [l for l in out.splitlines() if l]
        self.assertTrue(lines)
        for line in lines:
            if "Sanitizer" in line:
                continue
            self.assertRegex(line, r"^<[3-7]>", line)
        self.assertTrue(any(l.startswith("<5>listening on") for l in lines))

    def test_journal_stream_of_another_stream_is_ignored(self):
        # Inherited by a process whose stderr is no longer the journal's.
        with Percored(env={"JOURNAL_STREAM": "1:1"}) as srv:
            out = srv.stop()
        self.assertRegex(out.splitlines()[0],
                         r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \w+: ")


if __name__ == "__main__":
    unittest.main()

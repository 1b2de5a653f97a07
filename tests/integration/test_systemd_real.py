"""percored under a real systemd, installed from its Debian package.

A throw-away systemd (Debian's, as PID 1) boots in a private PID + mount
namespace over an overlay of / whose writes land in a tmpfs, so nothing of
the host changes (shared/notes/real-systemd-test.md). The .deb CPack builds
from this build is installed into it with dpkg, then the tests drive
percored with systemctl and read journalctl, as an administrator would.
The namespace shares the host's network: its ports are reached on
127.0.0.1 from here.

The tests run in order (test_1 ... test_9) on one booted systemd. The
machine itself is systemd_machine.py's."""

import os
import re
import shutil
import socket
import subprocess
import textwrap
import time
import unittest

from percored import SLOW, recv_exactly
from systemd_machine import Machine, can_boot, quiet_port
from test_systemd_units import build_packages


def echo(port, data=b"hello\n", timeout=20):
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=timeout * SLOW) as s:
        s.sendall(data)
        return recv_exactly(s, len(data))


CONFIG = """\
[server]
workers = {workers}
drain_timeout = {drain}
log_level = info
[listener echo]
listen = 127.0.0.1:{echo}
protocol = echo
max_connections = {limit}
[listener metrics]
listen = 127.0.0.1:{metrics}
protocol = metrics
"""


CANNOT = can_boot()


@unittest.skipIf(CANNOT, CANNOT)
class RealSystemdTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.debs = build_packages()
        cls.echo_port = quiet_port()
        cls.metrics_port = quiet_port()
        cls.m = Machine()
        try:
            cls.m.wait_running()
        except Exception:
            out = cls.m.output()
            cls.m.destroy()
            if "SKIP:" in out:
                raise unittest.SkipTest(out.split("SKIP:", 1)[1].strip())
            raise
        # The test's own settings, as an administrator's drop-ins: faster
        # watchdog and restart, the debug hook to hang a worker, and this
        # test's port for the socket.
        wd = max(3, int(3 * SLOW))
        dropin = f"""\
            [Service]
            WatchdogSec={wd}s
            RestartSec=500ms
            TimeoutStartSec={30 * SLOW}s
            LimitCORE=0
            Environment=PERCORED_DEBUG_HANG_WORKER=1
            """
        if os.environ.get("PC_SANITIZE"):
            # Sanitizer runtimes need calls a real service never makes
            # (LeakSanitizer's ptrace, TSan's personality and mappings).
            dropin += """\
            SystemCallFilter=
            MemoryDenyWriteExecute=no
            LockPersonality=no
            """
        cls.m.write("/etc/systemd/system/percored.service.d/test.conf",
                    textwrap.dedent(dropin))
        cls.m.write("/etc/systemd/system/percored.socket.d/test.conf",
                    "[Socket]\nListenStream=\nListenStream=127.0.0.1:%d\n"
                    % cls.echo_port)

    @classmethod
    def tearDownClass(cls):
        m = getattr(cls, "m", None)
        if m:
            m.destroy()

    @classmethod
    def config(cls, limit, drain=5, workers=2):
        cls.m.write("/etc/percore/percored.ini", CONFIG.format(
            drain=drain, echo=cls.echo_port, metrics=cls.metrics_port,
            limit=limit, workers=workers))

    def tearDown(self):
        # Whatever a test did, no sanitizer may have complained.
        if os.environ.get("PC_SANITIZE"):
            text = self.m.journal_text()
            self.assertNotRegex(text, r"Sanitizer|runtime error:", text)

    # ---- the tests, in order ---------------------------------------------

    def test_1_package_creates_the_user_and_enables_nothing(self):
        # The daemon, and the headers test_9 builds a module with.
        debs = []
        for pkg in ("percored", "libpercore-dev"):
            debs.append("/var/tmp/%s.deb" % pkg)
            shutil.copy(self.debs[pkg], self.m.root + debs[-1])
        r = self.m.run("env", "DEBIAN_FRONTEND=noninteractive", "dpkg",
                       "-i", *debs, timeout=120)
        self.assertNotIn("warning", r.stderr.lower(), r.stderr)
        self.m.run("getent", "passwd", "percore")
        for unit in ("percored.service", "percored.socket"):
            self.assertEqual(self.m.systemctl("is-enabled", unit,
                                              check=False).stdout.strip(),
                             "disabled")
            self.assertEqual(self.m.systemctl("is-active", unit,
                                              check=False).stdout.strip(),
                             "inactive")
        self.config(limit=100)  # dpkg installed the default config
        self.m.systemctl("daemon-reload")

    def test_2_start_is_active_only_once_percored_is_ready(self):
        # A config that cannot start (its port is taken) never makes the
        # service active: with Type=notify, systemd waits for READY=1.
        # Restart=on-failure tries again until the start limit (5 in 10s)
        # fails the unit for good.
        with socket.socket() as busy:
            busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            busy.bind(("127.0.0.1", self.echo_port))
            busy.listen()
            r = self.m.systemctl("start", "percored.service", check=False)
            self.assertNotEqual(r.returncode, 0)
            self.m.wait_state("percored", "failed")
            self.m.wait_journal(r"cannot listen on 127\.0\.0\.1:%d"
                                % self.echo_port)
        self.m.systemctl("reset-failed", "percored.service")
        # A config with a mistake stops at ExecStartPre=, named precisely.
        self.m.write("/etc/percore/percored.ini", "[server]\nworkers = 2\n"
                     "nonsense = 1\n")
        r = self.m.systemctl("start", "percored.service", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.m.wait_state("percored", "failed")
        self.m.wait_journal(r"percored\.ini:3: \[server\] nonsense: "
                            r"unknown key")
        self.m.systemctl("reset-failed", "percored.service")
        self.config(limit=100)

        # `systemctl start` returns once READY=1 arrived: at that moment
        # every listener answers.
        self.m.systemctl("start", "percored.service")
        self.assertEqual(self.m.systemctl("is-active", "percored")
                         .stdout.strip(), "active")
        self.assertEqual(echo(self.echo_port), b"hello\n")
        start = int(self.m.show("percored", "ExecMainStartTimestampMonotonic"))
        active = int(self.m.show("percored",
                                 "ActiveEnterTimestampMonotonic"))
        self.assertGreater(active, start)
        self.assertRegex(self.m.show("percored", "StatusText"),
                         r"^2 workers, \d+ connections open")
        self.assertEqual(self.m.show("percored", "Type"), "notify")

    def test_3_echo_answers_on_its_port(self):
        for _ in range(3):
            self.assertEqual(echo(self.echo_port, b"round trip\n"),
                             b"round trip\n")

    def test_4_reload_applies_a_changed_limit(self):
        held = [socket.create_connection(("127.0.0.1", self.echo_port),
                                         timeout=20 * SLOW)
                for _ in range(2)]
        try:
            for s in held:
                s.sendall(b"x")
                self.assertEqual(recv_exactly(s, 1), b"x")
            # A lower limit applies live; more workers need a restart.
            self.config(limit=2, workers=3)
            pid = self.m.show("percored", "MainPID")
            self.m.systemctl("reload", "percored.service")
            text = self.m.wait_journal(r"reloaded /etc/percore/percored\.ini")
            self.assertIn("reload: 'workers' changed: needs a restart", text)
            self.assertEqual(self.m.show("percored", "MainPID"), pid,
                             "reloaded in place, not restarted")
            third = socket.create_connection(("127.0.0.1", self.echo_port),
                                             timeout=20 * SLOW)
            self.assertEqual(third.recv(10), b"", "over the new limit")
            third.close()
            held[0].sendall(b"y")
            self.assertEqual(recv_exactly(held[0], 1), b"y")
        finally:
            for s in held:
                s.close()
        # A broken config: `systemctl reload` fails (ExecReload= waits for
        # percored's answer) and the running percored keeps its settings.
        self.m.write("/etc/percore/percored.ini", "[server]\nworkers = x\n")
        r = self.m.systemctl("reload", "percored.service", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.m.systemctl("is-active", "percored")
                         .stdout.strip(), "active")
        self.assertEqual(self.m.show("percored", "MainPID"), pid)
        self.m.wait_journal(r"reload failed, keeping the running config: "
                            r"/etc/percore/percored\.ini:2: \[server\] workers")
        # A refusal only the running percored can make (a new listener on
        # a port another process holds): `percored -t` passes it, the
        # reload fails too.
        self.config(limit=100)
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            taken = busy.getsockname()[1]
            with open(self.m.root + "/etc/percore/percored.ini", "a") as f:
                f.write(f"[listener more]\nlisten = 127.0.0.1:{taken}\n"
                        "protocol = echo\n")
            r = self.m.systemctl("reload", "percored.service", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.m.wait_journal(r"reload refused, keeping the running config and "
                            r"listeners: .*127\.0\.0\.1:%d" % taken)
        self.assertEqual(self.m.systemctl("is-active", "percored")
                         .stdout.strip(), "active")
        self.assertEqual(echo(self.echo_port), b"hello\n")
        self.config(limit=100)
        self.m.systemctl("reload", "percored.service")
        self.assertEqual(self.m.show("percored", "MainPID"), pid)
        self.assertEqual(echo(self.echo_port), b"hello\n")

    def test_5_logs_reach_the_journal_with_their_priorities(self):
        entries = self.m.journal()
        def priority_of(pattern):
            found = [p for p, msg in entries if re.search(pattern, msg)]
            self.assertTrue(found, f"{pattern!r} not in the journal")
            return found[0]
        self.assertEqual(priority_of(r"^listening on 127\.0\.0\.1"), 5)
        self.assertEqual(priority_of(r"^percored \S+ running"), 5)
        self.assertEqual(priority_of(r"'workers' changed: needs a restart"),
                         4)
        self.assertEqual(priority_of(r"^cannot listen on|^listener echo"),
                         3)
        # No timestamps of our own: the journal stamps lines itself.
        self.assertFalse([m for _, m in entries
                          if re.match(r"\d{4}-\d\d-\d\d ", m)])
        self.assertFalse([m for _, m in entries if re.match(r"<\d>", m)])

    def test_6_stop_drains_a_connection_in_flight(self):
        s = socket.create_connection(("127.0.0.1", self.echo_port),
                                     timeout=20 * SLOW)
        s.sendall(b"before ")
        self.assertEqual(recv_exactly(s, 7), b"before ")
        stop = subprocess.Popen(["nsenter", "-t", str(self.m.pid), "-m",
                                 "-p", "-r", "-w", "systemctl", "stop",
                                 "percored.service"],
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            self.m.wait_state("percored", "deactivating")
            self.m.wait_journal(r"stopping: no new connections")
            # Stopping, and the connection is still served.
            s.sendall(b"during\n")
            self.assertEqual(recv_exactly(s, 7), b"during\n")
            began = time.time()
            s.close()
            out = stop.communicate(timeout=30 * SLOW)[0]
            self.assertEqual(stop.returncode, 0, out.decode())
            # Ended when the last connection did, not by the drain timeout.
            self.assertLess(time.time() - began, 5)
        finally:
            if stop.poll() is None:
                stop.kill()
                stop.communicate()
        self.assertEqual(self.m.systemctl("is-active", "percored",
                                          check=False).stdout.strip(),
                         "inactive")
        self.m.wait_journal(r"\nstopped")

    def test_7_socket_activation_starts_on_the_first_connection(self):
        self.m.systemctl("start", "percored.socket")
        self.assertEqual(self.m.systemctl("is-active", "percored.service",
                                          check=False).stdout.strip(),
                         "inactive")
        # This client connects while percored is not running: systemd
        # holds the connection, starts percored, which serves it.
        self.assertEqual(echo(self.echo_port, b"early\n"), b"early\n")
        self.m.wait_state("percored.service", "active")
        text = self.m.wait_journal(
            r"listening on 127\.0\.0\.1:%d \(echo, echo, acceptor\)"
            % self.echo_port)
        self.assertIn("one socket from systemd", text)
        # The listener without a socket unit was bound by percored.
        self.assertRegex(text, r"listening on 127\.0\.0\.1:%d \(metrics"
                         % self.metrics_port)
        # percored stops; the socket stays with systemd (percored closed its
        # copy, never shut it down), and the next client starts it again.
        self.m.systemctl("stop", "percored.service")
        self.assertEqual(self.m.systemctl("is-active", "percored.socket")
                         .stdout.strip(), "active")
        self.assertEqual(echo(self.echo_port, b"again\n"), b"again\n")
        self.m.wait_state("percored.service", "active")

    def test_8_watchdog_restarts_percored_when_a_worker_hangs(self):
        self.m.wait_state("percored.service", "active")
        if "SIGUSR2 will make worker 1 hang" not in self.m.journal_text():
            self.m.systemctl("stop", "percored.socket", "percored.service")
            self.skipTest("built without PC_FAULT_HOOKS (a Release build)")
        pid = self.m.show("percored", "MainPID")
        restarts = int(self.m.show("percored", "NRestarts"))
        self.m.systemctl("kill", "--kill-who=main", "--signal=SIGUSR2",
                         "percored.service")
        self.m.wait_journal(r"worker 1 has not run its event loop")
        deadline = time.time() + 60 * SLOW
        while time.time() < deadline:
            if (int(self.m.show("percored", "NRestarts")) > restarts and
                    self.m.systemctl("is-active", "percored", check=False)
                    .stdout.strip() == "active"):
                break
            time.sleep(0.2)
        else:
            self.fail("not restarted:\n" + self.m.journal_text())
        self.assertNotEqual(self.m.show("percored", "MainPID"), pid)
        self.assertIn("Watchdog timeout", self.m.journal_text())
        entries = self.m.journal()
        self.assertIn(3, [p for p, m in entries
                          if "has not run its event loop" in m])
        self.assertEqual(echo(self.echo_port, b"back\n"), b"back\n")
        self.m.systemctl("stop", "percored.socket", "percored.service")


    def test_9_a_module_built_against_libpercore_dev_serves(self):
        # What a module author does on the installed system: find_package
        # against /usr, the .so into /usr/lib/percore/modules, which the
        # sandbox (ProtectSystem=strict, PrivateTmp=yes) leaves readable.
        self.m.systemctl("stop", "percored.socket", "percored.service")
        src = "/var/tmp/upper"
        self.m.write(src + "/CMakeLists.txt",
                     "cmake_minimum_required(VERSION 3.18)\nproject(upper C)\n"
                     "find_package(percore 0.1 REQUIRED)\n"
                     "percore_add_module(upper upper.c)\n"
                     "install(TARGETS upper DESTINATION ${percore_MODULE_DIR})\n")
        self.m.run("cp", "/usr/share/doc/libpercore-dev/examples/upper.c", src)
        self.m.run("cmake", "-S", src, "-B", src + "/build", timeout=120)
        self.m.run("cmake", "--build", src + "/build", timeout=120)
        self.m.run("cmake", "--install", src + "/build", timeout=60)
        so = "/usr/lib/percore/modules/upper.so"
        self.assertTrue(os.path.exists(self.m.root + so))
        port = quiet_port()
        self.m.write("/etc/percore/percored.ini", CONFIG.format(
            drain=5, echo=self.echo_port, metrics=self.metrics_port,
            limit=100, workers=2).replace(
                # A bare name: looked up in the installed module directory.
                "[server]\n", "[server]\nmodules = upper\n", 1)
            + "[listener shout]\nlisten = 127.0.0.1:%d\nprotocol = upper\n"
            % port)
        self.m.systemctl("start", "percored.service")
        self.assertEqual(echo(port, b"packaged\n"), b"PACKAGED\n")
        self.m.wait_journal(r"listening on 127\.0\.0\.1:%d \(shout, upper"
                            % port)
        self.m.systemctl("stop", "percored.service")


if __name__ == "__main__":
    unittest.main()

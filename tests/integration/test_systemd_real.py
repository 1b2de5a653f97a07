"""percored under a real systemd, installed from its Debian package.

A throw-away systemd (Debian's, as PID 1) boots in a private PID + mount
namespace over an overlay of / whose writes land in a tmpfs, so nothing of
the host changes (shared/notes/real-systemd-test.md). The .deb CPack builds
from this build is installed into it with dpkg, then the tests drive
percored with systemctl and read journalctl, as an administrator would.
The namespace shares the host's network: its ports are reached on
127.0.0.1 from here.

The tests run in order (test_1 ... test_8) on one booted systemd."""

import ctypes
import fcntl
import glob
import json
import random
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import unittest

from percored import SLOW, recv_exactly
from test_systemd_units import build_package

SYSTEMD = "/lib/systemd/systemd"
SCRATCH = "/var/tmp"
# One booted test system at a time on a machine (other build trees may run
# this test too): the cgroups a run removes afterwards are then its own.
LOCK = os.path.join(SCRATCH, "percore-systemd-test.lock")
# Units of the booted system that would act on the host's kernel (sysctl,
# binfmt, modules, udev) or start jobs we do not need.
MASK = """systemd-sysctl.service systemd-binfmt.service
proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount
systemd-modules-load.service kmod-static-nodes.service
systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service
systemd-udevd-control.socket systemd-udevd-kernel.socket
systemd-hwdb-update.service systemd-random-seed.service
systemd-timesyncd.service systemd-networkd.service systemd-resolved.service
apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer
dpkg-db-backup.timer fstrim.timer systemd-tmpfiles-clean.timer
logrotate.timer getty.target console-getty.service""".split()

BOOT = r"""
set -e
R="$1"
mount -t tmpfs -o mode=0755 tmpfs "$R"
mkdir -p "$R/upper" "$R/work" "$R/merged"
if ! mount -t overlay overlay \
        -o lowerdir=/,upperdir="$R/upper",workdir="$R/work" "$R/merged"; then
    echo "SKIP: cannot mount an overlay of /" >&2
    exit 77
fi
M="$R/merged"
mount -t proc proc "$M/proc"
mount --rbind /sys "$M/sys"
# Read-only, as in a container; the cgroup mounts below stay writable.
mount -o remount,bind,ro "$M/sys"
mount --rbind /dev "$M/dev"
mount -t tmpfs tmpfs "$M/run"
mount -t tmpfs tmpfs "$M/tmp"
for u in $MASK; do ln -sf /dev/null "$M/etc/systemd/system/$u"; done
# pivot_root rather than chroot: a chrooted process may not create user
# namespaces, which the service's PrivateUsers=yes needs.
cd "$M"
pivot_root . .
umount -l .
exec env container=percore-test /lib/systemd/systemd --system \
    --unit=basic.target
"""


def quiet_port():
    """A free port outside the kernel's ephemeral range: the test holds it
    for a minute, and busy neighbours' outgoing connections could take an
    ephemeral one meanwhile."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = map(int, f.read().split())
    span = (10000, low) if low - 10000 >= 1000 else (high + 1, 65536)
    for _ in range(200):
        port = random.randrange(*span)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in %d-%d" % span)


def set_pdeathsig():
    """In the child: die with the test process (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)


def cgroup_dirs():
    out = set()
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            out.add(os.path.join(root, d))
    return out


def can_boot():
    """None if this machine can run the test, else why not."""
    if os.geteuid() != 0:
        return "needs root (mount, unshare)"
    for tool in ("unshare", "nsenter", "pivot_root"):
        if not shutil.which(tool):
            return f"{tool} is not installed (Debian package util-linux)"
    if not os.path.exists(SYSTEMD):
        return "systemd is not installed (Debian package systemd)"
    if not (shutil.which("cpack") and shutil.which("dpkg")):
        return "cpack or dpkg is not installed"
    r = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--uts",
                        "true"], capture_output=True, text=True)
    if r.returncode != 0:
        return "cannot create PID and mount namespaces: " + r.stderr.strip()
    return None


def take_lock(timeout=300):
    f = open(LOCK, "w")
    deadline = time.time() + timeout
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if time.time() > deadline:
                f.close()
                raise RuntimeError("another run of this test held %s for "
                                   "%ds" % (LOCK, timeout))
            time.sleep(0.5)


def remove_stale_scratch():
    """Scratch left by a run that was killed. A live run's directory is a
    mount point in its namespace, so rmdir fails on it."""
    for d in glob.glob(os.path.join(SCRATCH, "pc-sdroot-*")):
        if os.path.isdir(d):
            try:
                os.rmdir(d)
            except OSError:
                continue
            for f in (d + ".log", d + ".boot.sh"):
                try:
                    os.unlink(f)
                except OSError:
                    pass


class Machine:
    """The booted throw-away system."""

    def __init__(self):
        self.lock = take_lock()
        remove_stale_scratch()
        self.scratch = tempfile.mkdtemp(prefix="pc-sdroot-", dir=SCRATCH)
        self.log = open(os.path.join(self.scratch + ".log"), "w+")
        self.cgroups_before = cgroup_dirs()
        script = os.path.join(self.scratch + ".boot.sh")
        with open(script, "w") as f:
            f.write(BOOT)
        self.script = script
        self.unshare = subprocess.Popen(
            ["unshare", "--mount", "--pid", "--fork", "--uts",
             "--propagation", "private", "--kill-child=SIGKILL",
             "bash", script, self.scratch],
            stdout=self.log, stderr=subprocess.STDOUT,
            env=dict(os.environ, MASK=" ".join(MASK)),
            preexec_fn=set_pdeathsig)
        self.pid = self._find_pid1()
        # The booted system's / as the host sees it (its mounts live in its
        # own mount namespace, so the scratch directory looks empty here).
        self.root = f"/proc/{self.pid}/root"

    def _find_pid1(self):
        deadline = time.time() + 10
        path = f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children"
        while time.time() < deadline:
            if self.unshare.poll() is not None:
                raise RuntimeError("boot failed:\n" + self.output())
            try:
                with open(path) as f:
                    kids = f.read().split()
            except OSError:
                kids = []
            if kids:
                return int(kids[0])
            time.sleep(0.05)
        raise RuntimeError("no PID 1 in the namespace:\n" + self.output())

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def run(self, *cmd, timeout=60, check=True):
        r = subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-p", "-r",
                            "-w", *cmd], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL,
                           timeout=timeout * SLOW)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n"
                                 f"{r.stdout}{r.stderr}")
        return r

    def systemctl(self, *args, **kw):
        return self.run("systemctl", "--no-pager", *args, **kw)

    def wait_running(self):
        deadline = time.time() + 60 * SLOW
        state = ""
        while time.time() < deadline:
            if self.unshare.poll() is not None:
                raise RuntimeError("systemd exited:\n" + self.output())
            state = self.systemctl("is-system-running", check=False,
                                   timeout=10).stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"systemd did not finish booting ({state}):\n"
                           + self.output())

    def write(self, path, text):
        """Writes a file inside the booted system (lands in its overlay)."""
        full = self.root + path
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)

    def show(self, unit, prop):
        return self.systemctl("show", "-p", prop, "--value",
                              unit).stdout.strip()

    def journal(self, unit="percored.service"):
        r = self.run("journalctl", "-u", unit, "-o", "json", "--no-pager",
                     "--output-fields=MESSAGE,PRIORITY,_PID")
        out = []
        for line in r.stdout.splitlines():
            e = json.loads(line)
            msg = e.get("MESSAGE")
            if isinstance(msg, list):  # not UTF-8: bytes
                msg = bytes(msg).decode(errors="replace")
            out.append((int(e.get("PRIORITY", 6)), msg or ""))
        return out

    def journal_text(self):
        return "\n".join(m for _, m in self.journal())

    def wait_journal(self, pattern, timeout=20):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            text = self.journal_text()
            if re.search(pattern, text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"journal never said {pattern!r}:\n"
                             + self.journal_text())

    def wait_state(self, unit, want, timeout=30):
        deadline = time.time() + timeout * SLOW
        state = ""
        while time.time() < deadline:
            state = self.systemctl("is-active", unit, check=False).stdout.strip()
            if state == want:
                return
            time.sleep(0.1)
        raise AssertionError(f"{unit} is {state}, not {want}:\n"
                             + self.journal_text())

    def destroy(self):
        # PID 1 of the namespace first: the kernel then ends every process
        # in it, and its mounts go with its mount namespace.
        for pid in (self.pid, self.unshare.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.unshare.wait(30)
        except subprocess.TimeoutExpired:
            pass
        # The systemd inside made cgroups in the host's hierarchy.
        for _ in range(50):
            left = sorted(cgroup_dirs() - self.cgroups_before,
                          key=len, reverse=True)
            for d in left:
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            if not left:
                break
            time.sleep(0.1)
        self.log.close()
        self.lock.close()
        for p in (self.script, self.scratch + ".log"):
            try:
                os.unlink(p)
            except OSError:
                pass
        # Busy until the kernel has let go of the namespace's mounts.
        for _ in range(100):
            try:
                os.rmdir(self.scratch)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)


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
        cls.deb = build_package()
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
        shutil.copy(self.deb, self.m.root + "/var/tmp/percore.deb")
        r = self.m.run("env", "DEBIAN_FRONTEND=noninteractive", "dpkg",
                       "-i", "/var/tmp/percore.deb", timeout=120)
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
        # A broken config: `systemctl reload` fails (ExecReload= checks it
        # first) and the running percored keeps its settings.
        self.m.write("/etc/percore/percored.ini", "[server]\nworkers = x\n")
        r = self.m.systemctl("reload", "percored.service", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.m.systemctl("is-active", "percored")
                         .stdout.strip(), "active")
        self.m.wait_journal(r"percored\.ini:2: \[server\] workers")
        self.config(limit=100)
        self.m.systemctl("reload", "percored.service")
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


if __name__ == "__main__":
    unittest.main()

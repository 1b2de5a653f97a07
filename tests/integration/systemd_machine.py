"""A throw-away systemd (Debian's, as PID 1) booted in private PID and
mount namespaces over an overlay of / whose writes land in a tmpfs, so
nothing of the host changes (shared/notes/real-systemd-test.md). Used by
test_systemd_real.py; moved here so that file keeps to its tests."""

import ctypes
import fcntl
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from percored import SLOW

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

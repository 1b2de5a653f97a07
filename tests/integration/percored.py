"""Runs a real percored for integration tests: free loopback ports, logs
captured, clean stop checked (exit status 0, no sanitizer report)."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BINARY = os.environ.get("PERCORED", os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "percored"))
SANITIZED = bool(os.environ.get("PC_SANITIZE"))
# Sanitizer builds run several times slower; timeouts scale with them.
SLOW = 4 if SANITIZED else 1


_handed_out = set()


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port free now, and not one this process handed out before: the
    kernel may give the port it just freed to the next bind(0), which
    would put two listeners of one test on one port."""
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def run(args, timeout=30):
    """Runs percored to completion (for -t, --help, bad configs)."""
    return subprocess.run([BINARY] + list(args), capture_output=True,
                          text=True, timeout=timeout * SLOW)


class Percored:
    """A percored process. Use as a context manager; `port(name)` gives the
    port of a listener started with listen(name, proto)."""

    def __init__(self, *extra, listeners=(("echo", "echo"),), workers=2,
                 config=None, env=None, preexec_fn=None):
        self.ports = {}
        self.args = [BINARY, "--workers", str(workers)]
        for name, proto in listeners:
            if proto.startswith("unix:"):
                self.args += ["--listen", f"{name}={proto[5:]}"]
                continue
            self.ports[name] = free_port()
            self.args += ["--listen", f"{name}={proto}@127.0.0.1:{self.ports[name]}"]
        if config is not None:
            self.config = tempfile.NamedTemporaryFile(
                "w", suffix=".ini", delete=False)
            self.config.write(config)
            self.config.close()
            self.args += ["--config", self.config.name]
        else:
            self.config = None
        self.args += list(extra)
        self.env = dict(os.environ, **(env or {}))
        self.log = tempfile.TemporaryFile("w+")
        self.preexec_fn = preexec_fn
        self.proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.stop()
        if self.config:
            os.unlink(self.config.name)
        self.log.close()

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     preexec_fn=self.preexec_fn)
        deadline = time.time() + 20 * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("percored exited at start:\n" + self.output())
            if "running:" in self.output():
                return
            time.sleep(0.02)
        raise RuntimeError("percored did not start:\n" + self.output())

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        """SIGTERM, wait, and check that the process ended cleanly."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout=30):
        """Waits for a stop already under way (a signal sent, or the last
        connection drained) and checks that the process ended cleanly:
        exit status 0, no sanitizer report. Returns the log."""
        try:
            status = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("percored did not stop:\n" + self.output())
        out = self.output()
        if status != 0 or re.search(r"Sanitizer|runtime error:", out):
            raise AssertionError(f"percored exited {status}:\n{out}")
        return out

    def connect(self, name="echo", timeout=10):
        s = socket.create_connection(("127.0.0.1", self.ports[name]),
                                     timeout=timeout * SLOW)
        return s

    def metrics(self, name="metrics"):
        """Parsed counters from the metrics listener: {(metric, labels): v}."""
        with self.connect(name) as s:
            s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.decode().partition("\r\n\r\n")
        assert head.startswith("HTTP/1.0 200"), head
        out = {}
        for line in body.splitlines():
            if line.startswith("#") or not line:
                continue
            key, value = line.rsplit(" ", 1)
            m = re.match(r"(\w+)(?:\{(.*)\})?", key)
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")))
            out[(m.group(1), labels)] = float(value)
        return out

    def total(self, metric, name="metrics", **labels):
        """Sum of `metric` over its series whose labels include `labels`
        (total("percore_connections_closed_total", listener="echo",
        reason="idle")); 0 if there is none."""
        want = set(labels.items())
        return sum(v for (k, ls), v in self.metrics(name).items()
                   if k == metric and want <= set(ls))

    def per_worker(self, metric, name="metrics"):
        m = self.metrics(name)
        return {dict(k[1])["worker"]: v for k, v in m.items()
                if k[0] == metric and len(k[1]) == 1}

    def cpu_seconds(self):
        """User + system CPU time the server has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


class SharedServer(unittest.TestCase):
    """A test class whose tests share one percored, started before the
    first and stopped (its clean exit checked) after the last. A subclass
    gives server(), a Percored not yet started, and LISTENER, the
    listener whose port is cls.port; one that prepares files first calls
    super().setUpClass() after them."""

    LISTENER = "echo"

    @classmethod
    def server(cls):
        return Percored()

    @classmethod
    def setUpClass(cls):
        cls.srv = cls.server().__enter__()
        cls.port = cls.srv.ports[cls.LISTENER]

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)


def recv_exactly(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def wait_for(predicate, timeout=10, what="condition"):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")

"""What the TLS integration tests share (test_tls.py, test_tls_handshake.py,
test_tls_input.py):
certificates made at test time with the `openssl` command in a temporary
directory (never committed keys), a percored with TLS listeners from a
config file, Python `ssl` clients that verify the server for real, and
`openssl s_client` as a second, independent client.

Every process is started here and ended by its PID; every wait is bounded
(scaled by SLOW for the sanitizer builds)."""

import os
import re
import selectors
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from percored import SLOW, Percored, free_port, recv_exactly

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
# Serials of the two server certificates, so that a client can tell which
# one it was shown (reload).
SERIAL_A = 0xA1A1A1
SERIAL_B = 0xB2B2B2
V12, V13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


def openssl(*args, cwd=None):
    r = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}:\n{r.stderr}")
    return r.stdout


class Certs:
    """Test certificates in a temporary directory:

    - ec.pem / ec.key: ECDSA P-256, self-signed, SAN IP:127.0.0.1 and
      localhost, serial SERIAL_A;
    - ec_b.pem / ec_b.key: another P-256 key and certificate, serial SERIAL_B
      (the rotation target);
    - rsa.pem / rsa.key: RSA-2048, self-signed;
    - ca.pem (a small CA) and client.pem / client.key (CN=alice, signed by
      it, for clientAuth); rogue.pem / rogue.key: a client certificate
      signed by another CA;
    - other.key: a key that belongs to none of the certificates;
      garbage.pem: not PEM at all.

    A client that trusts `trust` (ec.pem, ec_b.pem and rsa.pem) verifies
    every server certificate here, host name (127.0.0.1) included."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="percore-tls-")
        try:
            self._make()
        except BaseException:
            self.close()
            raise

    def path(self, name):
        return os.path.join(self.dir, name)

    def _self_signed(self, name, newkey, serial, cn):
        args = ["req", "-x509", "-newkey", newkey[0]]
        for opt in newkey[1:]:
            args += ["-pkeyopt", opt]
        openssl(*args, "-nodes", "-keyout", self.path(name + ".key"),
                "-out", self.path(name + ".pem"), "-days", "2",
                "-subj", f"/CN={cn}/O=percore tests",
                "-set_serial", hex(serial),
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:127.0.0.1",
                "-addext", "basicConstraints=critical,CA:FALSE",
                "-addext", "extendedKeyUsage=serverAuth")

    def _make(self):
        ec = ("ec", "ec_paramgen_curve:P-256")
        self._self_signed("ec", ec, SERIAL_A, "percore test A")
        self._self_signed("ec_b", ec, SERIAL_B, "percore test B")
        self._self_signed("rsa", ("rsa", "rsa_keygen_bits:2048"), 0x5A5A,
                          "percore test RSA")
        ext = self.path("client.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "extendedKeyUsage=clientAuth\n")
        for ca, client, cn in (("ca", "client", "alice"),
                               ("rogue_ca", "rogue", "mallory")):
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", ec[1],
                    "-nodes", "-keyout", self.path(ca + ".key"),
                    "-out", self.path(ca + ".pem"), "-days", "2",
                    "-subj", f"/CN={ca} test CA/O=percore tests",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign")
            openssl("req", "-new", "-newkey", "ec", "-pkeyopt", ec[1],
                    "-nodes", "-keyout", self.path(client + ".key"),
                    "-out", self.path(client + ".csr"),
                    "-subj", f"/CN={cn}/O=percore tests")
            openssl("x509", "-req", "-in", self.path(client + ".csr"),
                    "-CA", self.path(ca + ".pem"),
                    "-CAkey", self.path(ca + ".key"), "-set_serial", "0x77",
                    "-days", "2", "-extfile", ext,
                    "-out", self.path(client + ".pem"))
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", ec[1],
                "-out", self.path("other.key"))
        with open(self.path("garbage.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nthis is not base64 at all!"
                    "\n-----END CERTIFICATE-----\n")
        self.trust = self.path("trust.pem")
        with open(self.trust, "w") as out:
            for name in ("ec", "ec_b", "rsa"):
                with open(self.path(name + ".pem")) as f:
                    out.write(f.read())

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class ModuleCerts(Certs):
    """One Certs for a whole test module, made when the module's tests
    start (unittest.SkipTest without the openssl command) and removed
    after them:

        CERTS = ModuleCerts()
        setUpModule, tearDownModule = CERTS.make, CERTS.close
    """

    def __init__(self):  # no files yet: the module may be skipped
        self.dir = None

    def make(self):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("no openssl command")
        Certs.__init__(self)

    def close(self):
        if self.dir:
            super().close()
            self.dir = None


def tls_keys(certs, name="ec", **more):
    """A listener's tls_* keys for certificate `name` (ec, ec_b, rsa)."""
    keys = {"tls_certificate": certs.path(name + ".pem"),
            "tls_key": certs.path(name + ".key")}
    keys.update(more)
    return keys


class TlsServer(Percored):
    """A percored whose listeners come from a config file:
    listeners = [(name, protocol, {key: value})]; `server` holds [server]
    keys. Ports are free loopback ports; `config_text()` is what was
    written (rewrite() replaces it, for reloads)."""

    def __init__(self, listeners, *extra, workers=2, server=None, **kw):
        self.spec = [(n, p, dict(k)) for n, p, k in listeners]
        # Clients a test leaves open do not hold its end for the default
        # 10 s drain.
        self.server_keys = {"drain_timeout": 1, **(server or {})}
        ports = {n: free_port() for n, _, _ in self.spec}
        self._ports = ports
        super().__init__(*extra, listeners=(), workers=workers,
                         config=self.config_text(), **kw)
        self.ports = dict(ports)

    def config_text(self):
        out = []
        if self.server_keys:
            out.append("[server]")
            out += [f"{k} = {v}" for k, v in self.server_keys.items()]
        for name, proto, keys in self.spec:
            out += [f"[listener {name}]",
                    f"listen = 127.0.0.1:{self._ports[name]}",
                    f"protocol = {proto}"]
            out += [f"{k} = {v}" for k, v in keys.items()]
        return "\n".join(out) + "\n"

    def start(self):
        """As Percored.start; a port that another process took between
        free_port() and our bind (other suites run on this machine too)
        gets the listeners new ports, twice at most."""
        for attempt in range(3):
            try:
                return super().start()
            except RuntimeError as e:
                if "Address already in use" not in str(e) or attempt == 2:
                    raise
                self.proc.wait()
                self.log.seek(0)
                self.log.truncate()
                self._ports = {n: free_port() for n in self._ports}
                self.ports = dict(self._ports)
                self.rewrite()

    def rewrite(self):
        with open(self.config.name, "w") as f:
            f.write(self.config_text())

    def reload(self, expect="reloaded"):
        """SIGHUP; waits for a new `expect` line in the log (the reload's
        outcome) and returns the log written since."""
        before = len(self.output())
        self.signal(__import__("signal").SIGHUP)
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline:
            new = self.output()[before:]
            if re.search(r"reloaded|reload failed|reload refused", new):
                assert expect in new, f"reload: wanted {expect!r}, got:\n{new}"
                return new
            time.sleep(0.02)
        raise AssertionError("no reload outcome in the log:\n" +
                             self.output()[before:])

    def failures(self):
        """percore_tls_handshake_failures_total by reason, summed over the
        listeners."""
        out = {}
        for (metric, labels), v in self.metrics().items():
            if metric == "percore_tls_handshake_failures_total":
                reason = dict(labels)["reason"]
                out[reason] = out.get(reason, 0) + v
        return out

    def total(self, metric):
        return sum(v for (m, _), v in self.metrics().items() if m == metric)


def client_context(certs, version=None, ciphers=None, alpn=None, cert=None,
                   tickets=True):
    """A client context that verifies the server (trust.pem, host name
    127.0.0.1). version: pin one ssl.TLSVersion; cert: a client
    certificate name (client, rogue)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.trust)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if ciphers:
        ctx.set_ciphers(ciphers)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if cert:
        ctx.load_cert_chain(certs.path(cert + ".pem"),
                            certs.path(cert + ".key"))
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    return ctx


def tls_connect(ctx, port, session=None, timeout=10, ragged=False):
    """A TLS connection, handshake done. ragged=False: an EOF without
    close_notify raises (SSLEOFError) instead of reading as b''."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    try:
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1",
                               session=session,
                               suppress_ragged_eofs=ragged)
    except BaseException:
        raw.close()
        raise


def serial_of(sock):
    return int(sock.getpeercert()["serialNumber"], 16)


def echo_check(sock, data):
    """Sends data and reads it all back, byte-exact."""
    sock.sendall(data)
    got = recv_exactly(sock, len(data))
    assert got == data, (f"echo: sent {len(data)} bytes, got {len(got)}, "
                         f"first difference at {first_diff(got, data)}")


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def pump(sock, data, chunk=65536, timeout=60, pieces=None):
    """Writes `data` while reading the echo on one non-blocking TLS socket
    (both directions at once, one thread: an SSL object is not to be used
    by two threads at a time). Returns what came back, as much as was
    sent. pieces: the sizes of the writes (each its own record), else
    `chunk` bytes each."""
    sizes = iter(pieces) if pieces is not None else None
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    got = bytearray()
    sent = 0
    pending = None  # the size of the write being retried
    deadline = time.time() + timeout * SLOW
    try:
        while len(got) < len(data):
            if time.time() > deadline:
                raise AssertionError(f"pump stalled: sent {sent}, got {len(got)}"
                                     f" of {len(data)}")
            events = sel.select(1)
            # Reads whatever is there first, writes next: a record in
            # OpenSSL's buffer shows no readiness on the socket.
            for _ in range(64):
                try:
                    c = sock.recv(1 << 20)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                if not c:
                    raise AssertionError(f"EOF after {len(got)} bytes")
                got += c
            while sent < len(data):
                if sizes is not None and pending is None:
                    pending = next(sizes, chunk)
                piece = data[sent:sent + (pending or chunk)]
                try:
                    # Without partial writes SSL_write takes all of it or
                    # asks to be called again with the same bytes.
                    sock.send(piece)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                sent += len(piece)
                pending = None
            sel.modify(sock, selectors.EVENT_READ |
                       (selectors.EVENT_WRITE if sent < len(data) else 0))
            del events
    finally:
        sel.close()
        sock.setblocking(True)
        sock.settimeout(10 * SLOW)
    return bytes(got)


def bio_client(ctx):
    """A TLS client for 127.0.0.1 over memory BIOs, for a test that moves
    the bytes itself (to hold back a flight): (tls, incoming, outgoing)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    return ctx.wrap_bio(inc, out, server_hostname="127.0.0.1"), inc, out


def bio_handshake(tls, inc, out, raw):
    """bio_client's handshake over socket raw up to the server's Finished.
    The client's last flight (its Finished) stays in `out`, unsent."""
    while True:
        try:
            tls.do_handshake()
            return
        except ssl.SSLWantReadError:
            raw.sendall(out.read())
            chunk = raw.recv(65536)
            if not chunk:
                raise AssertionError("server closed mid-handshake")
            inc.write(chunk)


def client_hello(version=None, alpn=None):
    """A real ClientHello's bytes, from Python's ssl over memory BIOs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class SClient:
    """`openssl s_client -quiet`, a second TLS implementation's command
    line client: stdin from a file, what it receives on stdout. Ended by its
    PID once it has what was expected."""

    def __init__(self, port, args=(), stdin_path=None):
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [OPENSSL, "s_client", "-quiet", "-nocommands",
             "-connect", f"127.0.0.1:{port}", *args],
            stdin=self.stdin, stdout=self.out, stderr=self.err)

    def size(self):
        self.out.flush()
        return os.fstat(self.out.fileno()).st_size

    def wait_output(self, n, timeout=30):
        deadline = time.time() + timeout * SLOW
        while self.size() < n:
            if self.proc.poll() is not None and self.size() < n:
                break
            if time.time() > deadline:
                break
            time.sleep(0.02)
        self.out.seek(0)
        return self.out.read()

    def stderr(self):
        self.err.flush()
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.stdin is not subprocess.DEVNULL:
            self.stdin.close()
        self.out.close()
        self.err.close()


class EchoWatch(threading.Thread):
    """A TLS echo client that keeps a connection busy in its own thread
    (it alone uses its socket): rounds of random sizes, each byte-exact,
    until stop(); the rounds done and any failure are kept. For checking
    that bad input elsewhere disturbs nobody."""

    def __init__(self, ctx, port):
        super().__init__(daemon=True)
        self.sock = tls_connect(ctx, port)
        self.rounds = 0
        self.error = None
        self.halt = threading.Event()

    def run(self):
        import random
        rng = random.Random(7)
        try:
            while not self.halt.is_set():
                data = os.urandom(rng.choice((1, 100, 5000, 40000)))
                echo_check(self.sock, data)
                self.rounds += 1
        except BaseException as e:  # reported by stop()
            self.error = e

    def stop(self):
        """Two more whole rounds after this call (so after whatever the
        test did), then the end."""
        target = self.rounds + 2
        deadline = time.time() + 30 * SLOW
        while (self.rounds < target and self.error is None and
               self.is_alive() and time.time() < deadline):
            time.sleep(0.005)
        self.halt.set()
        self.join(30 * SLOW)
        self.sock.close()
        assert not self.is_alive(), "the echo client hung"
        assert self.error is None, f"the echo client failed: {self.error!r}"
        assert self.rounds >= target, "the echo client stalled"
        return self.rounds


class Lines:
    """Line-at-a-time reading of a socket (cleartext or TLS)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, text):
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def line(self, timeout=10):
        deadline = time.time() + timeout * SLOW
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"no line; have {self.buf[-300:]!r}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; had {self.buf[-300:]!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8", "replace").rstrip("\r")

    def expect(self, pattern, timeout=10):
        """Reads lines until one matches (fullmatch); returns the match."""
        seen = []
        deadline = time.time() + timeout * SLOW
        while True:
            try:
                line = self.line(max(0.01, (deadline - time.time()) / SLOW))
            except TimeoutError as e:
                raise AssertionError(f"no line /{pattern}/; saw {seen[-20:]}") from e
            m = re.fullmatch(pattern, line)
            if m:
                return m
            seen.append(line)

    def close(self):
        self.sock.close()

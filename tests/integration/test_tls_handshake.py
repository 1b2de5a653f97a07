"""TLS handshakes against a real percored (issue 12): every bad input closed,
counted in percore_tls_handshake_failures_total{reason} and logged while a
TLS echo client elsewhere goes on byte-exact; tls_max_handshakes evicting
the oldest; session resumption (tickets) and its switch; ALPN; client
certificates; certificate reload on SIGHUP and its refusals; `percored -t`
on TLS files. Certificates are made at test time (tls_support.Certs)."""

import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

from percored import SLOW, run, wait_for
from tls_support import (OPENSSL, SERIAL_A, SERIAL_B, V12, V13, EchoWatch,
                         ModuleCerts, TlsServer, bio_client, bio_handshake,
                         client_context, client_hello, echo_check, serial_of,
                         tls_connect, tls_keys)

CERTS = ModuleCerts()
setUpModule, tearDownModule = CERTS.make, CERTS.close


def raw_connect(port, timeout=10):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)


def read_to_end(sock):
    """Everything until the server closes (an RST counts as the end)."""
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return data


class BadInput(unittest.TestCase):
    """One server, several TLS listeners; each test sends one kind of bad
    input and checks what the client saw, the counter and the log line,
    while EchoWatch keeps a TLS connection echoing on another listener."""

    @classmethod
    def setUpClass(cls):
        cls.srv = TlsServer([
            ("echo", "echo", tls_keys(CERTS)),
            ("plain", "echo", tls_keys(CERTS)),
            ("brief", "echo", tls_keys(CERTS, tls_handshake_timeout=1)),
            ("v13", "echo", tls_keys(CERTS, tls_protocols="TLSv1.3")),
            ("s256", "echo", tls_keys(
                CERTS, tls_ciphersuites="TLS_AES_256_GCM_SHA384")),
            ("alpn", "echo", tls_keys(CERTS, tls_alpn="irc")),
            ("cca", "echo", tls_keys(CERTS, tls_client_ca=CERTS.path("ca.pem"))),
            ("metrics", "metrics", {}),
        ], workers=2, server={"log_level": "info"})
        cls.srv.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def setUp(self):
        self.watch = EchoWatch(client_context(CERTS), self.srv.ports["echo"])
        self.watch.start()

    def tearDown(self):
        self.watch.stop()

    def expect_failure(self, listener, reason, action):
        """Runs action(); then the counter of `reason` must have grown by
        one, no other reason's, and the log must name it."""
        srv = self.srv
        before = srv.failures()
        rx = re.compile(rf"on {listener}: TLS handshake failed \({reason}(: [^)]+)?\)")
        logged = len(rx.findall(srv.output()))
        result = action()
        wait_for(lambda: srv.failures()[reason] == before[reason] + 1,
                 what=f"failure {reason} counted")
        after = srv.failures()
        for r, v in after.items():
            if r != reason:
                self.assertEqual(v, before[r], f"{r} counted too")
        wait_for(lambda: len(rx.findall(srv.output())) == logged + 1,
                 what=f"a log line for {reason}")
        return result

    def test_http_request_in_clear_gets_a_plain_400(self):
        def act():
            s = raw_connect(self.srv.ports["plain"])
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            reply = read_to_end(s)
            s.close()
            return reply
        reply = self.expect_failure("plain", "http_request", act)
        head, _, body = reply.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 400 "), reply)
        self.assertIn(b"TLS", body)
        m = re.search(rb"Content-Length: (\d+)", head)
        self.assertEqual(int(m.group(1)), len(body))

    def test_irc_nick_in_clear_is_not_tls(self):
        def act():
            s = raw_connect(self.srv.ports["plain"])
            s.sendall(b"NICK alice\r\nUSER alice 0 * :Alice\r\n")
            reply = read_to_end(s)
            s.close()
            return reply
        reply = self.expect_failure("plain", "not_tls", act)
        self.assertNotIn(b"NICK", reply)  # no cleartext answer, at most an alert

    def test_random_garbage_is_not_tls(self):
        """Random bytes fail OpenSSL's first record header check (no TLS
        content type or version: "wrong version number"; a huge length:
        "packet length too long"), both counted as not_tls."""
        for seed in range(4):
            data = random.Random(seed).randbytes(300)
            with self.subTest(seed=seed):
                def act():
                    s = raw_connect(self.srv.ports["plain"])
                    s.sendall(data)
                    read_to_end(s)
                    s.close()
                self.expect_failure("plain", "not_tls", act)

    def test_garbage_in_a_tls_record_is_other(self):
        """A well-formed record header around garbage passes the record
        layer and fails in the handshake ("unexpected message", "length too
        short"): counted as other, with a fatal alert sent back."""
        rng = random.Random(9)
        for data in (b"\x16\x03\x01\x00\x30" + rng.randbytes(48),
                     b"\x16\x03\x03\x00\x04\x01\x00\x00\x00"):
            with self.subTest(data=data[:9]):
                def act():
                    s = raw_connect(self.srv.ports["plain"])
                    s.sendall(data)
                    reply = read_to_end(s)
                    s.close()
                    return reply
                reply = self.expect_failure("plain", "other", act)
                self.assertEqual(reply[:1] + reply[3:6], b"\x15\x00\x02\x02")

    def test_truncated_client_hello_then_eof(self):
        hello = client_hello()

        def act():
            s = raw_connect(self.srv.ports["plain"])
            s.sendall(hello[:len(hello) // 2])
            s.shutdown(socket.SHUT_WR)
            reply = read_to_end(s)
            s.close()
            return reply
        self.assertEqual(self.expect_failure("plain", "eof", act), b"")

    def test_truncated_client_hello_then_silence_times_out(self):
        hello = client_hello()

        def act():
            s = raw_connect(self.srv.ports["brief"], timeout=30)
            s.sendall(hello[:len(hello) // 2])
            reply = read_to_end(s)  # the server ends it (1 s timeout)
            s.close()
            return reply
        self.assertEqual(self.expect_failure("brief", "timeout", act), b"")

    def refused(self, listener, ctx):
        def act():
            with self.assertRaises(ssl.SSLError) as e:
                s = tls_connect(ctx, self.srv.ports[listener])
                # TLS 1.3: the client's side is done before the server has
                # checked its certificate; the refusal comes with the
                # first read.
                try:
                    s.recv(10)
                finally:
                    s.close()
            return str(e.exception)
        return act

    def test_tls12_only_client_against_tls13_only(self):
        err = self.expect_failure("v13", "version", self.refused(
            "v13", client_context(CERTS, version=V12)))
        self.assertIn("PROTOCOL_VERSION", err)

    def test_no_cipher_in_common(self):
        # TLS 1.2: a CBC suite the default list leaves out
        err = self.expect_failure("plain", "cipher", self.refused(
            "plain", client_context(CERTS, version=V12,
                                    ciphers="ECDHE-ECDSA-AES128-SHA")))
        self.assertIn("HANDSHAKE_FAILURE", err)
        # TLS 1.3: openssl s_client offering a suite the listener lacks

        def act():
            r = subprocess.run(
                [OPENSSL, "s_client", "-connect",
                 f"127.0.0.1:{self.srv.ports['s256']}", "-tls1_3",
                 "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
                input=b"", capture_output=True, timeout=30 * SLOW)
            return r
        r = self.expect_failure("s256", "cipher", act)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"alert handshake failure", r.stderr)

    def test_alpn_mismatch(self):
        err = self.expect_failure("alpn", "alpn", self.refused(
            "alpn", client_context(CERTS, alpn=["h2", "http/1.1"])))
        self.assertIn("no application protocol", err)

    def test_missing_client_certificate(self):
        for version in (V12, V13):
            with self.subTest(version=version):
                self.expect_failure("cca", "certificate", self.refused(
                    "cca", client_context(CERTS, version=version)))

    def test_client_certificate_of_another_ca(self):
        err = self.expect_failure("cca", "certificate", self.refused(
            "cca", client_context(CERTS, cert="rogue")))
        self.assertIn("UNKNOWN_CA", err)


class HandshakeBound(unittest.TestCase):
    def test_the_oldest_stalled_handshakes_are_evicted(self):
        """tls_max_handshakes = 4 on 1 worker: 6 stalled handshakes, the 2
        oldest are closed (evicted), the 4 newest stay; a real client still
        completes (evicting the next oldest)."""
        hello = client_hello()
        with TlsServer([("tls", "echo", tls_keys(CERTS, tls_max_handshakes=4)),
                        ("metrics", "metrics", {})], workers=1) as srv:
            stalled = []
            for i in range(6):
                s = raw_connect(srv.ports["tls"])
                s.sendall(hello[:40])
                stalled.append(s)  # one listening socket: accepted in order
            wait_for(lambda: srv.failures()["evicted"] == 2, what="2 evicted")
            for s in stalled[:2]:
                self.assertEqual(read_to_end(s), b"")
            for s in stalled[2:]:
                s.settimeout(0.3)
                with self.assertRaises(socket.timeout):
                    s.recv(10)
            with tls_connect(client_context(CERTS), srv.ports["tls"]) as s:
                echo_check(s, b"through the flood")
            self.assertEqual(srv.failures()["evicted"], 3)
            stalled[2].settimeout(10 * SLOW)
            self.assertEqual(read_to_end(stalled[2]), b"")
            self.assertEqual(len(re.findall(r"TLS handshake failed \(evicted",
                                            srv.output())), 3)
            for s in stalled:
                s.close()


class KeyUpdate(unittest.TestCase):
    def test_tls13_key_updates_mid_stream(self):
        """openssl s_client's `k` (KeyUpdate, no answer wanted) and `K`
        (update_requested: the server must send its own KeyUpdate before
        its next data) between echoed lines; each line still comes back."""
        with TlsServer([("echo", "echo", tls_keys(CERTS))], workers=1) as srv:
            # stdout on a pty: s_client's -msg lines go through stdio,
            # which a pipe would hold back until exit
            master, slave = os.openpty()
            p = subprocess.Popen(
                [OPENSSL, "s_client", "-connect",
                 f"127.0.0.1:{srv.ports['echo']}", "-tls1_3", "-CAfile",
                 CERTS.trust, "-verify_return_error", "-msg"],
                stdin=subprocess.PIPE, stdout=slave,
                stderr=subprocess.DEVNULL)
            os.close(slave)
            lines = []

            def read():
                rest = b""
                while True:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # EIO: s_client is gone
                        return
                    if not chunk:
                        return
                    rest += chunk
                    *done, rest = rest.split(b"\n")
                    lines.extend(x.decode("latin-1").rstrip("\r") for x in done)
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            sent_update = ">>> TLS 1.3, Handshake [length 0005], KeyUpdate"
            got_update = "<<< TLS 1.3, Handshake [length 0005], KeyUpdate"
            try:
                for typed, want, count in (("before", "before", 1),
                                           ("k", sent_update, 1),
                                           ("middle", "middle", 1),
                                           ("K", sent_update, 2),
                                           ("after", "after", 1)):
                    p.stdin.write(typed.encode() + b"\n")
                    p.stdin.flush()
                    wait_for(lambda: lines.count(want) >= count,
                             what=f"{want!r} after {typed!r}")
                # RFC 8446 4.6.3: the answer to update_requested comes
                # before the server's next application data
                self.assertEqual(lines.count(got_update), 1, lines[-20:])
                self.assertLess(lines.index(got_update), lines.index("after"))
            finally:
                p.terminate()
                p.wait(10 * SLOW)
                reader.join(10 * SLOW)
                os.close(master)


class Resumption(unittest.TestCase):
    def test_tickets_resume_on_every_worker_and_can_be_switched_off(self):
        with TlsServer([("echo", "echo", tls_keys(CERTS)),
                        ("other", "echo", tls_keys(CERTS)),
                        ("nocache", "echo", tls_keys(CERTS,
                                                     tls_session_cache="off")),
                        ("metrics", "metrics", {})], workers=4) as srv:
            for version in (V12, V13):
                ctx = client_context(CERTS, version=version)
                for name, resumes in (("echo", True), ("nocache", False)):
                    with self.subTest(version=version, listener=name):
                        before = srv.total("percore_tls_resumed_total")
                        with tls_connect(ctx, srv.ports[name]) as s1:
                            # TLS 1.3: the ticket comes after the
                            # handshake; reading the echo takes it in
                            echo_check(s1, b"first")
                            session = s1.session
                        self.assertFalse(s1.session_reused)
                        # 6 resumptions: reuseport spreads them over the
                        # workers, which share the ticket keys
                        for _ in range(6):
                            with tls_connect(ctx, srv.ports[name],
                                             session=session) as s2:
                                echo_check(s2, b"again")
                                self.assertEqual(s2.session_reused, resumes)
                        self.assertEqual(srv.total("percore_tls_resumed_total"),
                                         before + (6 if resumes else 0))
                # a session of one listener does not resume on another
                with tls_connect(ctx, srv.ports["echo"]) as s1:
                    echo_check(s1, b"first")
                    session = s1.session
                with tls_connect(ctx, srv.ports["other"], session=session) as s3:
                    echo_check(s3, b"elsewhere")
                    self.assertFalse(s3.session_reused)


    def test_concurrent_handshakes_and_resumptions_on_4_workers(self):
        """32 clients at once (TLS 1.2 and 1.3), each 5 connections in a
        row resuming the last one's session: the shared context and the
        ticket keys under concurrent use (the TSan run is the point)."""
        with TlsServer([("echo", "echo", tls_keys(CERTS)),
                        ("metrics", "metrics", {})], workers=4) as srv:
            errors = []

            def client(i):
                try:
                    ctx = client_context(CERTS, version=V13 if i % 2 else V12)
                    session = None
                    for k in range(5):
                        with tls_connect(ctx, srv.ports["echo"], session=session,
                                         timeout=60) as s:
                            echo_check(s, os.urandom(3000))
                            if k:
                                assert s.session_reused, f"client {i}: {k}"
                            session = s.session
                except Exception as e:  # reported below
                    errors.append(f"client {i}: {e!r}")
            threads = [threading.Thread(target=client, args=(i,))
                       for i in range(32)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120 * SLOW)
            self.assertEqual(errors, [])
            self.assertEqual(srv.total("percore_tls_handshakes_total"), 160)
            self.assertEqual(srv.total("percore_tls_resumed_total"), 128)
            self.assertEqual(sum(srv.failures().values()), 0)


class Alpn(unittest.TestCase):
    def test_alpn_choice_and_no_alpn(self):
        with TlsServer([("alpn", "echo", tls_keys(
                CERTS, tls_alpn="irc, http/1.1"))], workers=2) as srv:
            for version in (V12, V13):
                for offer, chosen in ((["http/1.1"], "http/1.1"),
                                      (["h2", "irc"], "irc"),
                                      # the server's order wins
                                      (["http/1.1", "irc"], "irc"),
                                      (None, None)):
                    with self.subTest(version=version, offer=offer):
                        ctx = client_context(CERTS, version=version, alpn=offer)
                        with tls_connect(ctx, srv.ports["alpn"]) as s:
                            self.assertEqual(s.selected_alpn_protocol(), chosen)
                            echo_check(s, b"alpn")


class ClientCertificates(unittest.TestCase):
    def test_require_and_optional(self):
        ca = CERTS.path("ca.pem")
        with TlsServer([("req", "echo", tls_keys(CERTS, tls_client_ca=ca)),
                        ("opt", "echo", tls_keys(CERTS, tls_client_ca=ca,
                                                 tls_client_verify="optional")),
                        ("metrics", "metrics", {})], workers=2) as srv:
            for version in (V12, V13):
                with self.subTest(version=version):
                    with_cert = client_context(CERTS, version=version,
                                               cert="client")
                    without = client_context(CERTS, version=version)
                    for name in ("req", "opt"):
                        with tls_connect(with_cert, srv.ports[name]) as s:
                            echo_check(s, b"with a certificate")
                    with tls_connect(without, srv.ports["opt"]) as s:
                        echo_check(s, b"optional: none is fine")
                    before = srv.failures()["certificate"]
                    with self.assertRaises(ssl.SSLError):
                        with tls_connect(without, srv.ports["req"]) as s:
                            s.recv(10)  # TLS 1.3: the refusal comes here
                    wait_for(lambda: srv.failures()["certificate"] == before + 1,
                             what="counted")


class Reload(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="percore-reload-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.cert = os.path.join(self.dir, "server.pem")
        self.key = os.path.join(self.dir, "server.key")
        self.install("ec")

    def install(self, cert, key=None):
        shutil.copyfile(CERTS.path(cert + ".pem"), self.cert)
        shutil.copyfile(CERTS.path((key or cert) + ".key"), self.key)

    def serial(self, srv):
        with tls_connect(client_context(CERTS), srv.ports["tls"]) as s:
            echo_check(s, b"who are you")
            return serial_of(s)

    def test_sighup_rotates_the_certificate_open_connections_keep_theirs(self):
        with TlsServer([("tls", "echo", {"tls_certificate": self.cert,
                                         "tls_key": self.key})]) as srv:
            old = tls_connect(client_context(CERTS), srv.ports["tls"])
            data = os.urandom(300_000)
            echo_check(old, data)
            self.assertEqual(serial_of(old), SERIAL_A)
            self.install("ec_b")
            srv.reload("reloaded")
            self.assertEqual(self.serial(srv), SERIAL_B)
            echo_check(old, data)  # on the old certificate's session
            self.assertEqual(serial_of(old), SERIAL_A)
            old.close()
            # s_client agrees: it prints the chain it was sent
            r = subprocess.run(
                [OPENSSL, "s_client", "-connect",
                 f"127.0.0.1:{srv.ports['tls']}", "-showcerts"],
                input=b"", capture_output=True, timeout=30 * SLOW)
            pem = re.search(rb"-----BEGIN CERTIFICATE-----.*?-----END "
                            rb"CERTIFICATE-----\n", r.stdout, re.S).group(0)
            text = subprocess.run([OPENSSL, "x509", "-noout", "-serial"],
                                  input=pem, capture_output=True).stdout
            self.assertEqual(text.strip(), b"serial=%X" % SERIAL_B)

    def test_a_handshake_running_across_a_reload_finishes_on_its_context(self):
        with TlsServer([("tls", "echo", {"tls_certificate": self.cert,
                                         "tls_key": self.key})]) as srv:
            ctx = client_context(CERTS, version=V13)
            tls, inc, out = bio_client(ctx)
            raw = raw_connect(srv.ports["tls"])
            self.addCleanup(raw.close)
            # up to the server's Finished (with certificate A)
            bio_handshake(tls, inc, out, raw)
            self.install("ec_b")
            srv.reload("reloaded")
            self.assertEqual(self.serial(srv), SERIAL_B)
            tls.write(b"finished after the reload")
            raw.sendall(out.read())  # our Finished, then data
            got = b""
            while len(got) < 25:
                try:
                    got += tls.read(100)
                except ssl.SSLWantReadError:
                    chunk = raw.recv(65536)
                    self.assertTrue(chunk, "closed")
                    inc.write(chunk)
            self.assertEqual(got, b"finished after the reload")
            self.assertEqual(int(tls.getpeercert()["serialNumber"], 16), SERIAL_A)
            raw.close()

    def test_a_bad_new_file_refuses_the_reload(self):
        with TlsServer([("tls", "echo", {"tls_certificate": self.cert,
                                         "tls_key": self.key})]) as srv:
            old = tls_connect(client_context(CERTS), srv.ports["tls"])
            cases = (
                # a key that is not the certificate's
                (lambda: self.install("ec_b", key="ec"),
                 rf"tls_key: {re.escape(self.key)} does not belong to the "
                 rf"certificate in {re.escape(self.cert)} \(key values mismatch\)"),
                # not PEM at all
                (lambda: shutil.copyfile(CERTS.path("garbage.pem"), self.cert),
                 rf"tls_certificate: {re.escape(self.cert)}: \S.*"),
                # gone
                (lambda: os.unlink(self.key),
                 rf"tls_key: {re.escape(self.key)}: No such file or directory"),
                # a directory where the key should be
                (lambda: (os.unlink(self.key), os.mkdir(self.key)),
                 rf"tls_key: {re.escape(self.key)}: \S.*"),
            )
            for spoil, message in cases:
                with self.subTest(message=message):
                    self.install("ec")
                    spoil()
                    log = srv.reload("reload failed, keeping the running config")
                    self.assertRegex(log, message)
                    self.assertEqual(self.serial(srv), SERIAL_A)
                    echo_check(old, b"still here")
                    if os.path.isdir(self.key):
                        os.rmdir(self.key)
            self.install("ec_b")  # and a good one is taken after all that
            srv.reload("reloaded")
            self.assertEqual(self.serial(srv), SERIAL_B)
            old.close()

    def check_config(self, keys):
        path = os.path.join(self.dir, "check.ini")
        with open(path, "w") as f:
            f.write("[listener tls]\nlisten = 127.0.0.1:1\nprotocol = echo\n")
            f.write("".join(f"{k} = {v}\n" for k, v in keys.items()))
        return run(["-t", "-c", path])

    def test_percored_t_checks_the_files_and_the_protocols(self):
        good = {"tls_certificate": self.cert, "tls_key": self.key}
        r = self.check_config(good)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.install("ec_b", key="ec")
        r = self.check_config(good)
        self.assertNotEqual(r.returncode, 0)
        # Named at the key's own line (the section begins at line 2).
        self.assertIn(f"check.ini:5: [listener tls] tls_key: {self.key} does "
                      f"not belong to the certificate in {self.cert} (key "
                      "values mismatch)", r.stderr)
        missing = os.path.join(self.dir, "nowhere.pem")
        r = self.check_config(dict(good, tls_certificate=missing))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"check.ini:4: [listener tls] tls_certificate: {missing}: "
                      "No such file or directory", r.stderr)
        self.install("ec")
        r = self.check_config(dict(good, tls_protocols="TLSv1.1"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("tls_protocols: 'TLSv1.1' is not offered", r.stderr)
        r = self.check_config({"tls_key": self.key})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("] tls_key: needs tls_certificate", r.stderr)


if __name__ == "__main__":
    unittest.main()

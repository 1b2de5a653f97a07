"""The soak's byte streams (test_soak.py): connections whose every byte is
checked against what must come back, each counted under its face in the
round's `verified` bytes.

- Echo: a mostly idle echo connection that now and then sends a random
  payload (1 byte to 256 KiB) and checks it comes back in order; a half
  closed one gets all it sent before the server's FIN.
- TlsEcho: the same over TLS (a `tls` echo listener with a test
  certificate): the handshake verifies the server (tls_support's trust,
  host name 127.0.0.1), driven by the soak's selector loop through memory
  BIOs; about half the reconnects offer the session of the connection
  before (TLS 1.3 tickets), and the round counts handshakes and resumed
  ones. Leaves by close_notify, a bare close or a reset.
- WebPage: an HTTP/1.1 keep-alive client of the web face, on the `web`
  listener (the built-in chat page at / and /index.html) or the `files`
  listener (a root of seeded random files, 0 B to 1 MiB): one to three
  pipelined GETs at a time, some conditional (If-None-Match with the
  ETag it got before: 304 and no body), each response checked whole
  (status, Content-Length, every body byte).

All share Echo's life: established once the first exchange is back, then
sends every SEND_EVERY and ends after an exponential lifetime (mean
LIFETIME), by one of its ways (END_WAYS), and reconnects. RNGs are per slot,
seeded by SOAK_SEED."""

import collections
import random
import ssl
import time

from soak import SEED, Failure, Peer

# Seconds between a connection's sends, and its mean life: ~15 echo
# reconnects a second over 14,000; TLS ones live shorter, so that there
# are handshakes (and resumptions) all the time: ~10 a second over 300.
ECHO_SEND_EVERY, ECHO_LIFETIME = (2.0, 60.0), 1000.0
TLS_SEND_EVERY, TLS_LIFETIME = (0.5, 10.0), 30.0
TLS_RESUME = 0.5         # reconnects that offer the last session
HTTP_CONDITIONAL = 0.2   # requests with If-None-Match, once an ETag is known


class Echo(Peer):
    port_name = "echo"
    face = "echo"
    SEND_EVERY, LIFETIME = ECHO_SEND_EVERY, ECHO_LIFETIME
    # how a connection ends in the soak (weights), and at the end
    END_WAYS = (("close", 4), ("rst", 2), ("halfclose", 3), ("send-close", 1))
    LEAVE_WAYS = ("close", "rst", "halfclose")

    def __init__(self, soak, slot):
        super().__init__(soak, slot,
                         random.Random(f"{SEED} {self.face} {slot}"))
        self.pending = bytearray()   # sent, not yet echoed

    def __repr__(self):
        return f"{self.face}{self.slot}"

    def start(self):
        self.pending.clear()
        super().start()

    def on_connected(self):
        self.state = "open"
        self.put(self.rng.randbytes(self.rng.randint(1, 32)))

    def put(self, payload):
        self.pending += payload
        self.send(payload)

    def on_data(self, data):
        n = len(data)
        if self.pending[:n] != data:
            raise Failure(f"{self}: echo differs after "
                          f"{self.soak.verified[self.face]} bytes (got "
                          f"{data[:40]!r}, want {bytes(self.pending[:40])!r})")
        del self.pending[:n]
        self.soak.verified[self.face] += n
        if not self.pending:
            self.exchanged()

    def exchanged(self):
        """All that was sent came back: the first time, established."""
        if not self.established:
            self.became_established()
            if self.soak.phase == "soak":
                self.schedule()

    def on_eof(self):
        if self.state != "halfclosed":
            raise Failure(f"{self}: closed by the server ({len(self.pending)}"
                          f" bytes not back yet)")
        if self.pending:
            raise Failure(f"{self}: half closed, the server closed with "
                          f"{len(self.pending)} bytes not back")
        self.close()
        self.reconnect_later()

    def schedule(self):
        """Called at the soak's start or the connection's: next send, end."""
        now = time.monotonic()
        self.loop.at(now + self.rng.uniform(*self.SEND_EVERY), self.tick_send,
                     self.gen)
        self.loop.at(now + self.rng.expovariate(1 / self.LIFETIME),
                     self.tick_end, self.gen)

    def payload(self):
        r = self.rng.random()
        if r < 0.6:
            n = self.rng.randint(1, 64)
        elif r < 0.9:
            n = self.rng.randint(65, 1500)
        elif r < 0.99:
            n = self.rng.randint(1501, 16384)
        else:
            n = self.rng.randint(16385, 256 << 10)
        return self.rng.randbytes(n)

    def tick_send(self, gen):
        if gen != self.gen or self.soak.phase != "soak":
            return
        self.put(self.payload())
        self.soak.sends[self.face] += 1
        self.loop.at(time.monotonic() + self.rng.uniform(*self.SEND_EVERY),
                     self.tick_send, gen)

    def tick_end(self, gen):
        if gen != self.gen or self.soak.phase != "soak":
            return
        self.soak.churn[self.face] += 1
        ways, weights = zip(*self.END_WAYS)
        self.end(self.rng.choices(ways, weights)[0])

    def end(self, how):
        """Ends the connection `how` (END_WAYS, LEAVE_WAYS); reconnects
        later in the soak."""
        if how == "halfclose":
            self.state = "halfclosed"
            self.gen += 1        # no more sends
            self.flush_then_shutdown()
            return
        if how == "send-close":
            self.put(self.payload())
            how = "close"
        self.close(how)
        self.reconnect_later()

    def quiet(self):
        return self.state == "closed" or (self.established and
                                         not self.pending and not self.out)


class TlsEcho(Echo):
    port_name = "tls"
    face = "tls"
    SEND_EVERY, LIFETIME = TLS_SEND_EVERY, TLS_LIFETIME
    END_WAYS = (("notify", 4), ("close", 3), ("rst", 2), ("send-close", 1))
    LEAVE_WAYS = ("notify", "close", "rst")

    def __init__(self, soak, slot):
        super().__init__(soak, slot)
        self.tls = None
        self.session = None     # of the last connection, to resume

    def on_connected(self):
        self.state = "handshake"
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        offer = self.session if self.rng.random() < TLS_RESUME else None
        self.tls = self.soak.tls_context.wrap_bio(
            self.incoming, self.outgoing, server_hostname="127.0.0.1",
            session=offer)
        self.handshake()

    def handshake(self):
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self.flush()
            return
        self.flush()
        self.soak.tls["handshakes"] += 1
        self.soak.tls["resumed"] += self.tls.session_reused
        super().on_connected()      # open: the first payload

    def flush(self):
        data = self.outgoing.read()
        if data:
            self.send(data)

    def put(self, payload):
        self.pending += payload
        self.tls.write(payload)
        self.flush()

    def on_data(self, data):
        self.incoming.write(data)
        if self.state == "handshake":
            self.handshake()
            if self.state == "handshake":
                return
        plain = bytearray()
        try:
            while chunk := self.tls.read(1 << 18):
                plain += chunk
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            raise Failure(f"{self}: close_notify from the server")
        self.flush()             # post-handshake messages
        if plain:
            super().on_data(bytes(plain))

    def close(self, how="close"):
        """how: notify (close_notify, then close), or Peer.close's."""
        if self.tls is not None:
            if how == "notify" and self.sock is not None:
                try:
                    self.tls.unwrap()
                except (ssl.SSLWantReadError, ssl.SSLError):
                    pass
                self.flush()
                how = "close"
            if self.tls.session is not None:
                self.session = self.tls.session
            self.tls = None
        super().close(how)


class WebPage(Echo):
    face = "http"
    END_WAYS = (("close", 4), ("rst", 2), ("halfclose", 3), ("send-close", 1))

    def __init__(self, soak, slot):
        super().__init__(soak, slot)
        self.port_name = "web" if slot % 2 else "files"
        self.pending = collections.deque()   # expected: (path, status, body)
        self.buf = bytearray()
        self.etags = {}

    def start(self):
        self.buf.clear()
        super().start()

    def on_connected(self):
        self.state = "open"
        self.put(None)

    def put(self, _payload):
        """One to three pipelined GETs (Echo calls it with a payload)."""
        files = self.soak.web_files[self.port_name]
        out = bytearray()
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            path = self.rng.choice(sorted(files))
            etag = self.etags.get(path)
            extra = b""
            if etag and self.rng.random() < HTTP_CONDITIONAL:
                extra = b"If-None-Match: %s\r\n" % etag
                self.pending.append((path, 304, b""))
            else:
                self.pending.append((path, 200, files[path]))
            out += (b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
                    % (path.encode(), extra))
        self.send(bytes(out))

    def on_data(self, data):
        self.buf += data
        while self.pending:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buf[:end]).split(b"\r\n")
            headers = dict(line.split(b": ", 1) for line in lines[1:])
            length = int(headers.get(b"Content-Length", b"0"))
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            path, status, want = self.pending.popleft()
            if (not lines[0].startswith(b"HTTP/1.1 %d " % status)
                    or body != want):
                raise Failure(f"{self}: GET {path}: {lines[0]!r}, "
                              f"{len(body)} bytes, want {status} and "
                              f"{len(want)} bytes"
                              f"{' (differ)' if len(body) == len(want) else ''}")
            if b"ETag" in headers:
                self.etags[path] = headers[b"ETag"]
            self.soak.verified[self.face] += len(body)
            self.soak.responses[status] += 1
        if self.buf:
            raise Failure(f"{self}: {len(self.buf)} bytes nobody asked for")
        self.exchanged()

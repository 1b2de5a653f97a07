"""What the chat and IRC test clients share: a socket that reads lines
ending in EOL, waits for one matching a pattern, reads a cut stream to
its end; and reading many members at once until each has every numbered
line of a room."""

import re
import selectors
import socket
import time

from percored import SLOW


class LineClient:
    """A blocking line client on 127.0.0.1:port. Subclasses set EOL (the
    face's line end) and send."""

    EOL = b"\n"

    def __init__(self, port, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10 * SLOW)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""

    def line(self, timeout=10):
        deadline = time.time() + timeout * SLOW
        while self.EOL not in self.buf:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; had %r" % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(self.EOL)
        return line.decode()

    def expect(self, pattern, timeout=10):
        """Reads until a line matches; returns the match and lines skipped."""
        skipped = []
        while True:
            line = self.line(timeout)
            m = re.fullmatch(pattern, line)
            if m:
                return m, skipped
            skipped.append(line)

    def read_to_end(self):
        """What is buffered and everything after it until the server's
        FIN, as bytes (a cut member's last lines and goodbye)."""
        rest = self.buf
        self.buf = b""
        self.sock.settimeout(10 * SLOW)
        while chunk := self.sock.recv(65536):
            rest += chunk
        return rest

    def close(self):
        self.sock.close()


def gather_numbered(clients, pattern_of, expected, timeout=60):
    """Reads every client at once (non-blocking from here on) until each
    has `expected` lines that pattern_of(client) matches, a bytes pattern
    with groups (sender as the server names it, sender as the text names
    it, number), or until timeout. Returns ({client: [(sender, number)]},
    the clients still short). A line whose two senders differ is an
    AssertionError: the server put a line under the wrong name."""
    got = {c: [] for c in clients}
    sel = selectors.DefaultSelector()
    for c in clients:
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ, c)
    deadline = time.time() + timeout * SLOW
    pending = set(clients)
    try:
        while pending and time.time() < deadline:
            for key, _ in sel.select(timeout=1):
                c = key.data
                c.buf += c.sock.recv(1 << 16)
                *done, c.buf = c.buf.split(c.EOL)
                pattern = pattern_of(c)
                for raw in done:
                    m = pattern.fullmatch(raw)
                    if m:
                        if m.group(1) != m.group(2):
                            raise AssertionError(
                                f"{m.group(1)!r} sent {m.group(2)!r}'s line")
                        got[c].append((m.group(1), int(m.group(3))))
                if len(got[c]) >= expected:
                    pending.discard(c)
    finally:
        sel.close()
    return got, pending

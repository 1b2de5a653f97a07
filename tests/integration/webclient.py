"""Raw clients for the web face's tests: HTTP requests and responses read
off a socket byte by byte as they come, and a WebSocket client that
builds its own frames (masked or not, fragmented, control frames between
fragments), so the tests can send what a library never would."""

import base64
import json
import os
import socket
import ssl
import struct
import time

from percored import SLOW

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Http:
    """One HTTP connection; responses are parsed as they arrive."""

    def __init__(self, port, timeout=10, tls=None, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # before connecting, or the window is already open
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout * SLOW)
        self.sock.connect(("127.0.0.1", port))
        if tls:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("closed; had %r" % self.buf[:200])
        self.buf += chunk

    def response(self, head_only=False):
        """(status, {header: value} lowercased, body)."""
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        assert lines[0].startswith("HTTP/1.1 "), lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only else int(headers.get("content-length", 0))
        while len(self.buf) < length:
            self.fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed(self, timeout=5):
        """Whether the server closes (EOF or reset) without sending more;
        the socket is closed after."""
        self.sock.settimeout(timeout * SLOW)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            data = None
        self.sock.close()
        return data == b"" and self.buf == b""

    def close(self):
        self.sock.close()


def get(port, path="/", headers="", method="GET"):
    c = Http(port)
    c.send(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
           "Connection: close\r\n\r\n")
    r = c.response(head_only=method == "HEAD")
    c.close()
    return r


def handshake_request(path="/chat", key=None, version="13", extra=""):
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade"]
    if key:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if version:
        lines.append(f"Sec-WebSocket-Version: {version}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode(), key


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0):
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


class Ws:
    """A raw WebSocket client over a socket (or a TLS socket)."""

    def __init__(self, port, path="/chat", extra="", tls=None, rcvbuf=None,
                 timeout=10):
        self.http = Http(port, timeout, tls, rcvbuf)
        req, key = handshake_request(path, extra=extra)
        self.http.send(req)
        status, headers, _ = self.http.response(head_only=True)
        assert status == 101, (status, headers)
        import hashlib
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
        assert headers["sec-websocket-accept"] == want.decode(), headers
        self.nick = self.json()["nick"]  # the welcome

    @property
    def sock(self):
        return self.http.sock

    def send_frame(self, *args, **kw):
        self.http.send(frame(*args, **kw))

    def send(self, obj):
        self.send_frame(1, json.dumps(obj))

    def frame(self, timeout=10):
        """(fin, opcode, payload) of the next frame."""
        self.sock.settimeout(timeout * SLOW)
        buf = self.http
        while len(buf.buf) < 2:
            buf.fill()
        b0, b1 = buf.buf[0], buf.buf[1]
        assert not b1 & 0x80, "a server frame is never masked"
        n, off = b1 & 0x7F, 2
        if n == 126:
            while len(buf.buf) < 4:
                buf.fill()
            n, off = struct.unpack("!H", buf.buf[2:4])[0], 4
        elif n == 127:
            while len(buf.buf) < 10:
                buf.fill()
            n, off = struct.unpack("!Q", buf.buf[2:10])[0], 10
        while len(buf.buf) < off + n:
            buf.fill()
        payload = buf.buf[off:off + n]
        buf.buf = buf.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def json(self, timeout=10):
        """The next data message, answering pings on the way."""
        while True:
            fin, op, payload = self.frame(timeout)
            if op == 9:
                self.send_frame(10, payload)
                continue
            if op == 8:
                raise EOFError("closed: %r" % payload)
            assert fin and op == 1, (fin, op, payload)
            return json.loads(payload)

    def expect(self, timeout=10, **fields):
        """Reads messages until one has all of fields; returns it and the
        ones skipped."""
        skipped = []
        deadline = time.time() + timeout * SLOW
        while True:
            m = self.json(max(0.05, deadline - time.time()) / SLOW)
            if all(m.get(k) == v for k, v in fields.items()):
                return m, skipped
            skipped.append(m)

    def close_code(self, timeout=10):
        """Reads until the close frame; returns (code, reason)."""
        while True:
            fin, op, payload = self.frame(timeout)
            if op == 8:
                if len(payload) < 2:
                    return None, ""
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    def nick_as(self, nick):
        self.send({"type": "nick", "nick": nick})
        self.expect(type="ok", nick=nick)
        self.nick = nick

    def join(self, room):
        self.send({"type": "join", "room": room})
        return self.expect(type="ok", room=room)[0]

    def close(self):
        self.http.close()


def tls_client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx

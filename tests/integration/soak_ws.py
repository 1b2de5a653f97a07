"""The soak's WebSocket members (test_soak.py): members of the same rooms
as the chat and IRC members (soak.Member), on the web face's `/chat`
endpoint, with the same stays, lines and checks: every event they receive
(say, join, part, quit) goes into the member's view (soak.Ident), so
their views must agree with every other face's.

The client is raw and non-blocking (the soak's selector loop): the
upgrade request with its Sec-WebSocket-Accept checked, masked client
frames, unmasked server frames parsed as they come, pings answered. It
claims its nick and joins its room in one go after the welcome (the face
answers requests in order); its own join event starts its view, as an
IRC member's JOIN does. It leaves by the JSON `quit` or `part` (then, half
the time, a new nick and another room), a half close, a close with
unread input or a reset, like the others."""

import base64
import hashlib
import json
import os
import struct

from soak import J_, P_, Q_, Failure, Member

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 1, 8, 9, 10


def client_frame(opcode, payload):
    """A masked client frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = os.urandom(4)
    mask = (key * (n // 4 + 1))[:n]
    return head + key + bytes(a ^ b for a, b in zip(payload, mask))


class WsMember(Member):
    def __init__(self, soak, slot, stayer, room):
        super().__init__(soak, "ws", slot, stayer, room)
        self.port_name = "web"

    def start(self):
        self.frames = bytearray()
        super().start()

    def message(self, obj):
        self.send(client_frame(TEXT, json.dumps(obj).encode()))

    # ---- what it sends (Member's hooks)
    def send_say(self, text):
        self.message({"type": "say", "room": self.room, "text": text.decode()})

    def send_quit(self):
        self.message({"type": "quit", "reason": "bye"})

    def send_part(self):
        self.message({"type": "part", "room": self.room})

    def send_switch(self, new):
        self.state = "joining"
        self.message({"type": "nick", "nick": new.nick.decode()})
        self.message({"type": "join", "room": self.room})

    # ---- what it receives
    def on_connected(self):
        self.state = "upgrading"
        self.key = base64.b64encode(os.urandom(16))
        self.send(b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                  b"\r\n" % self.key)

    def on_data(self, data):
        self.frames += data
        if self.state == "upgrading":
            end = self.frames.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.frames[:end])
            del self.frames[:end + 4]
            accept = base64.b64encode(hashlib.sha1(self.key + GUID).digest())
            if (not head.startswith(b"HTTP/1.1 101 ")
                    or b"Sec-WebSocket-Accept: " + accept not in head):
                raise Failure(f"{self}: upgrade refused: {head[:200]!r}")
            self.state = "registering"      # until the welcome
        while len(self.frames) >= 2 and self.sock is not None:
            b0, b1 = self.frames[0], self.frames[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                if len(self.frames) < 4:
                    return
                n, off = struct.unpack("!H", self.frames[2:4])[0], 4
            elif n == 127:
                if len(self.frames) < 10:
                    return
                n, off = struct.unpack("!Q", self.frames[2:10])[0], 10
            if len(self.frames) < off + n:
                return
            if b0 & 0xF0 != 0x80 or b1 & 0x80:
                raise Failure(f"{self}: a bad frame head {b0:#x} {b1:#x}")
            payload = bytes(self.frames[off:off + n])
            del self.frames[:off + n]
            self.frame(b0 & 0x0F, payload)

    def frame(self, opcode, payload):
        if opcode == PING:
            self.send(client_frame(PONG, payload))
        elif opcode == CLOSE:
            if self.state not in ("leaving", "quitting"):
                raise Failure(f"{self}: closed by the server: {payload!r}")
            self.state = "quitting"         # the server closes now
        elif opcode == TEXT:
            self.event(json.loads(payload))
        else:
            raise Failure(f"{self}: unexpected frame {opcode}")

    def event(self, m):
        kind, st, ident = m["type"], self.state, self.ident
        if kind == "error":
            raise Failure(f"{self}: {m}")
        if kind == "welcome" and st == "registering":
            self.state = "joining"
            self.message({"type": "nick", "nick": ident.nick.decode()})
            self.message({"type": "join", "room": self.room})
            return
        if kind in ("ok", "nick"):      # answers; nick changes in no room
            return
        nick = m.get("nick", "").encode()
        if m.get("room") != self.room:
            raise Failure(f"{self}: an event of another room: {m}")
        if st == "joining":
            if kind == "join" and nick == ident.nick:
                self.joined()
                ident.observe(self.soak, J_, nick)
                return
            raise Failure(f"{self}: in no room, got {m}")
        if st not in ("in", "leaving"):
            return
        if kind == "say":
            self.said(nick, m["text"].encode())
        elif kind == "join":
            ident.observe(self.soak, J_, nick)
        elif kind == "part":
            ident.observe(self.soak, P_, nick)
            if nick == ident.nick and st == "leaving" and ident.how == "part":
                self.left(None)
        elif kind == "quit":
            ident.observe(self.soak, Q_, nick)
        else:
            raise Failure(f"{self}: unexpected event {m}")

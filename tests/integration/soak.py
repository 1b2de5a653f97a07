"""The connections of the soak (test_soak.py) but the echo ones: the
selector loop that drives them all and paces the connects, the
non-blocking client socket every kind is built on, and the chat and IRC
members with the checks of every line they receive. The split is by size
(test_soak.py was 1,053 lines) and falls here because the members are half
of it: the echo connections (short, and only bytes) stay in test_soak.py
with the round that holds them all (Soak), the final checks and the
summary line.

The members: 400 chat and IRC members over 20 rooms (ROOMS; room `soakN`
is channel `#soakN`; every room has 5 chat and 5 IRC members that stay the
whole run and 5 + 5 "churning" slots whose members come and go). Members
say numbered lines (`NICK N TEXT`, TEXT derived from NICK and N, so every
byte is checked). Churning members leave at random, by every way there is
(QUIT or /quit, PART or /part and a new nick in another room, a half
close, a close with unread input, a reset) and others take their place.
Each member's RNG is seeded by SOAK_SEED and its slot.

Connections are opened at most MAX_INFLIGHT at a time (one counts until
its first answer: the echo, the chat /join, the IRC 001), well below each
listener's backlog (511) and net.core.somaxconn, so no SYN or accept-queue
overflow turns into second-long retransmits (unpaced, the ramp overflowed
the accept queues some 460 times here; test_soak's summary line counts
them).

Everything here reports to the round it is given (`soak`, a
test_soak.Soak): its loop, server and phase, the counts of open
connections, and what the members said, received and saw (nick ids,
rooms, deliveries, departures)."""

import array
import collections
import errno
import heapq
import os
import random
import re
import selectors
import socket
import struct
import time
import zlib

from percored import SLOW

# Here, not with the other knobs in test_soak.py: the members' RNGs are
# seeded here, and test_soak.py imports it for the echo connections'.
SEED = int(os.environ.get("SOAK_SEED", "20261201"))
ROOMS = 20
MAX_INFLIGHT = 200       # connections opened and not yet answered
SAY_EVERY = (0.5, 3.5)   # seconds between a member's lines
MEMBER_LIFETIME = (1.0, 20.0)     # of a churning member's stay in a room

ALPHABET = ("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789"
            " .,:;!?-_=+()[]{}<>/'\"#%&@~ é ü ß ø 日本語 Ω λ")

L_, J_, P_, Q_ = 0, 1, 2, 3           # kinds of the events in a view
KIND_NAME = "LJPQ"


def text_of(nick, n):
    """The text of line n of nick: 'nick n filler.'; filler from a hash."""
    h = zlib.crc32(b"%s %d" % (nick, n))
    start = (h >> 8) % len(ALPHABET)
    filler = (ALPHABET * 3)[start:start + h % 100]
    return b"%s %d %s." % (nick, n, filler.encode())


class Failure(AssertionError):
    pass


class Loop:
    """One epoll selector, one timer heap, the connect queue."""

    def __init__(self, soak):
        self.soak = soak
        self.sel = selectors.EpollSelector()
        self.timers = []
        self.seq = 0
        self.queue = collections.deque()
        self.inflight = 0

    def at(self, when, fn, *args):
        self.seq += 1
        heapq.heappush(self.timers, (when, self.seq, fn, args))

    def once(self, max_wait=0.05):
        now = time.monotonic()
        wait = max_wait
        if self.timers:
            wait = max(0.0, min(wait, self.timers[0][0] - now))
        for key, mask in self.sel.select(wait):
            key.data.on_event(mask)
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, _, fn, args = heapq.heappop(self.timers)
            fn(*args)
        if self.soak.phase not in ("ramp", "soak"):
            self.queue.clear()
        while self.queue and self.inflight < MAX_INFLIGHT:
            peer = self.queue.popleft()
            self.inflight += 1
            peer.start()
        self.soak.tick()

    def until(self, pred, seconds, what):
        deadline = time.monotonic() + seconds * SLOW
        check = 0
        while True:
            now = time.monotonic()
            if now >= check:      # some predicates cost a few ms
                if pred():
                    return
                check = now + 0.1
            if now > deadline:
                raise Failure(f"timed out ({seconds * SLOW:.0f} s) waiting "
                              f"for {what}: {self.soak.waiting_for(what)}")
            self.once()


class Peer:
    """A non-blocking client socket with an output buffer."""

    port_name = None

    def __init__(self, soak, slot, rng):
        self.soak, self.loop, self.slot, self.rng = soak, soak.loop, slot, rng
        self.sock = None
        self.out = bytearray()
        self.mask = 0
        self.gen = 0
        self.state = "closed"
        self.established = False

    # ---- socket plumbing
    def start(self):
        self.gen += 1
        self.established = False
        self.out.clear()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        self.sock = s
        self.soak.open += 1
        self.soak.peak = max(self.soak.peak, self.soak.open)
        err = s.connect_ex(("127.0.0.1", self.soak.srv.ports[self.port_name]))
        if err not in (0, errno.EINPROGRESS):
            raise Failure(f"connect to {self.port_name}: {os.strerror(err)}")
        self.state = "connecting"
        self.mask = selectors.EVENT_WRITE
        self.loop.sel.register(s, self.mask, self)

    def set_mask(self, mask):
        if mask != self.mask:
            self.mask = mask
            self.loop.sel.modify(self.sock, mask, self)

    def send(self, data):
        if not self.out:
            try:
                n = self.sock.send(data)
            except BlockingIOError:
                n = 0
            if n == len(data):
                return
            data = data[n:]
        self.out += data
        self.set_mask(selectors.EVENT_READ | selectors.EVENT_WRITE)

    def on_event(self, mask):
        if self.sock is None:
            return
        if self.state == "connecting":
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise Failure(f"{self}: connect failed: {os.strerror(err)}")
            self.state = "connected"
            self.set_mask(selectors.EVENT_READ)
            self.on_connected()
            return
        if mask & selectors.EVENT_WRITE and self.out:
            try:
                n = self.sock.send(self.out)
                del self.out[:n]
            except BlockingIOError:
                pass
            if not self.out:
                self.set_mask(selectors.EVENT_READ)
        if mask & selectors.EVENT_READ and self.sock is not None:
            try:
                data = self.sock.recv(1 << 18)
            except BlockingIOError:
                return
            except ConnectionResetError:
                raise Failure(f"{self}: reset by the server in state "
                              f"{self.state}")
            if data:
                self.on_data(data)
            else:
                self.on_eof()

    def close(self, how="close"):
        """how: close (FIN, or RST if input is unread), rst (linger 0)."""
        if how == "rst":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        self.loop.sel.unregister(self.sock)
        self.sock.close()
        self.sock = None
        self.soak.open -= 1
        self.state = "closed"
        self.gen += 1

    def flush_then_shutdown(self):
        """A half close once the output is out."""
        if self.sock is None:
            return
        if self.out:
            self.loop.at(time.monotonic() + 0.01, self.flush_then_shutdown)
            return
        self.sock.shutdown(socket.SHUT_WR)

    def became_established(self):
        if not self.established:
            self.established = True
            self.loop.inflight -= 1

    def reconnect_later(self):
        if self.soak.phase == "soak":
            self.loop.at(time.monotonic() + self.rng.uniform(0.05, 1.0),
                         self.reconnect, self.gen)

    def reconnect(self, gen):
        if gen == self.gen and self.soak.phase == "soak":
            self.loop.queue.append(self)


class Ident:
    """One member's stay in one room under one nick, and what it saw."""

    def __init__(self, soak, member, nick, room):
        self.member, self.nick, self.room = member, nick, room
        self.id = soak.nick_id(nick)
        self.view = array.array("q")
        self.last = {}          # sender id -> last line number seen
        self.gone = set()       # senders seen leaving
        self.joined = set()     # senders seen joining
        self.present = set()    # seen joining, not leaving
        self.sent = 0
        self.how = None         # how it left

    def __repr__(self):
        return f"{self.nick.decode()}@{self.room}"

    def observe(self, soak, kind, nick, n=-1, text=None):
        sid = soak.nick_id(nick)
        if kind == L_:
            if text != text_of(nick, n):
                raise Failure(f"{self} got a wrong line from {nick}: {text!r}")
            if sid in self.gone:
                raise Failure(f"{self} got line {n} of {nick} after it left")
            prev = self.last.get(sid)
            if prev is None:
                if self.member.stayer and n != 0:
                    raise Failure(f"stayer {self} first saw line {n} of "
                                  f"{nick}, not 0")
            elif n != prev + 1:
                raise Failure(f"{self} got line {n} of {nick} after {prev}")
            self.last[sid] = n
            if sid == self.id:
                soak.self_seen[sid] = n
            soak.deliveries[self.member.face] += 1
            self.view.append((sid << 33) | (n << 2) | L_)
            return
        if kind == J_:
            if sid in self.joined or sid in self.gone or sid in self.last:
                raise Failure(f"{self} saw {nick} join again or late")
            self.joined.add(sid)
            self.present.add(sid)
        else:
            if sid in self.gone:
                raise Failure(f"{self} saw {nick} leave twice")
            self.gone.add(sid)
            self.present.discard(sid)
            soak.left_as.setdefault(sid, KIND_NAME[kind])
            if soak.left_as[sid] != KIND_NAME[kind]:
                raise Failure(f"{nick} left as {soak.left_as[sid]} for some "
                              f"and as {KIND_NAME[kind]} for {self}")
        self.view.append((sid << 33) | kind)


class Member(Peer):
    """A chat or IRC member (soak_ws.WsMember: a WebSocket one): a stayer
    or a churning slot."""

    def __init__(self, soak, face, slot, stayer, room):
        super().__init__(soak, slot,
                         random.Random(f"{SEED} {face} {slot}"))
        self.face, self.stayer, self.room = face, stayer, room
        self.port_name = face
        self.sep = b"\n" if face == "chat" else b"\r\n"
        self.buf = b""
        self.ident = None
        self.nicks = 0
        self.end_after_join = False

    def __repr__(self):
        return f"{self.face}{self.slot}({self.state}, {self.ident})"

    def new_ident(self):
        self.nicks += 1
        nick = b"%s%dg%d" % (self.face[0].encode(), self.slot, self.nicks)
        if not self.stayer and self.nicks > 1:
            self.room = f"soak{self.rng.randrange(ROOMS)}"
        self.ident = Ident(self.soak, self, nick, self.room)
        return self.ident

    def start(self):
        self.buf = b""
        self.fresh = True       # until its first join: in chat's lobby
        self.new_ident()
        super().start()

    def on_connected(self):
        nick = self.ident.nick
        if self.face == "chat":
            self.state = "joining"
            self.send(b"/nick %s\n/join %s\n" % (nick, self.room.encode()))
        else:
            self.state = "registering"
            self.send(b"CAP LS 302\r\nCAP REQ :echo-message\r\n"
                      b"NICK %s\r\nUSER %s 0 * :soak tester\r\nCAP END\r\n"
                      % (nick, nick))

    def on_data(self, data):
        self.buf += data
        *lines, self.buf = self.buf.split(self.sep)
        for line in lines:
            if self.sock is None:
                return
            if self.face == "chat":
                self.chat_line(line)
            else:
                self.irc_line(line)

    # ---- chat
    CHAT_SAY = re.compile(rb"([^\s:*][^\s:]*): (.*)")
    CHAT_JOINED = re.compile(rb"\*\*\* (\S+) joined (\S+)")
    CHAT_LEFT = re.compile(rb"\*\*\* (\S+) left (\S+)(?: \(.*\))?")
    CHAT_QUIT = re.compile(rb"\*\*\* (\S+) quit \(.*\)")

    def chat_line(self, line):
        st, ident = self.state, self.ident
        if line.startswith(b"ERR"):
            raise Failure(f"{self}: {line!r}")
        if st == "joining":
            if line == b"OK join " + self.room.encode():
                self.joined()
            elif (not self.fresh and not line.startswith(b"OK nick ")
                  and not line.endswith(b" is now known as " + ident.nick)):
                # Parted, in no room: a room's line here came too late.
                raise Failure(f"{self}: in no room, got {line!r}")
            return   # a new connection: the lobby's lines
        if st not in ("in", "leaving"):
            return
        if line.startswith(b"OK "):
            if st == "leaving" and line in (b"OK bye",
                                            b"OK part " + self.room.encode()):
                self.left(line)
                return
            raise Failure(f"{self}: unexpected {line!r}")
        room = self.room.encode()
        m = self.CHAT_SAY.fullmatch(line)
        if m:
            self.said(m.group(1), m.group(2))
            return
        for kind, pat in ((J_, self.CHAT_JOINED), (P_, self.CHAT_LEFT)):
            m = pat.fullmatch(line)
            if m:
                if m.group(2) != room:
                    raise Failure(f"{self}: notice of another room: {line!r}")
                ident.observe(self.soak, kind, m.group(1))
                return
        m = self.CHAT_QUIT.fullmatch(line)
        if m:
            ident.observe(self.soak, Q_, m.group(1))
            return
        raise Failure(f"{self}: unexpected line {line!r}")

    def said(self, nick, text):
        parts = text.split(b" ", 2)
        if len(parts) < 3 or parts[0] != nick or not parts[1].isdigit():
            raise Failure(f"{self}: line not from its sender: {nick!r}: "
                          f"{text!r}")
        self.ident.observe(self.soak, L_, nick, int(parts[1]), text)

    # ---- irc
    def irc_line(self, line):
        st, ident = self.state, self.ident
        if line.startswith(b"PING"):
            self.send(b"PONG" + line[4:] + b"\r\n")
            return
        if line.startswith(b"ERROR"):
            if st == "leaving" and ident.how == "quit":
                self.left(line)
                return
            raise Failure(f"{self}: {line!r}")
        if not line.startswith(b":"):
            raise Failure(f"{self}: unexpected line {line!r}")
        prefix, _, rest = line[1:].partition(b" ")
        cmd, _, params = rest.partition(b" ")
        nick = prefix.split(b"!", 1)[0]
        if cmd.isdigit():
            if cmd[0] in b"45" and cmd != b"422":     # 422: no MOTD
                raise Failure(f"{self}: {line!r}")
            if cmd == b"001" and st == "registering":
                self.state = "joining"
                self.send(b"JOIN #%s\r\n" % self.room.encode())
            return
        if cmd in (b"CAP", b"NOTICE", b"MODE"):
            return
        chan = b"#" + self.room.encode()
        if cmd == b"NICK":
            if st == "switching" and params.lstrip(b":") == ident.nick:
                self.state = "joining"
                self.send(b"JOIN %s\r\n" % chan)
            return
        if st in ("joining", "switching", "registering"):
            if (st == "joining" and cmd == b"JOIN" and nick == ident.nick
                    and params.lstrip(b":") == chan):
                self.joined()
                ident.observe(self.soak, J_, nick)
                return
            raise Failure(f"{self}: in no channel, got {line!r}")
        if st not in ("in", "leaving"):
            return
        if cmd == b"PRIVMSG":
            target, _, text = params.partition(b" ")
            if target != chan or not text.startswith(b":"):
                raise Failure(f"{self}: unexpected line {line!r}")
            self.said(nick, text[1:])
        elif cmd == b"JOIN":
            if params.lstrip(b":") != chan:
                raise Failure(f"{self}: unexpected line {line!r}")
            ident.observe(self.soak, J_, nick)
        elif cmd == b"PART":
            if params.split(b" ", 1)[0].lstrip(b":") != chan:
                raise Failure(f"{self}: unexpected line {line!r}")
            ident.observe(self.soak, P_, nick)
            if nick == ident.nick and st == "leaving" and ident.how == "part":
                self.left(line)
        elif cmd == b"QUIT":
            ident.observe(self.soak, Q_, nick)
        else:
            raise Failure(f"{self}: unexpected line {line!r}")

    # ---- a stay in a room
    def joined(self):
        self.state = "in"
        self.fresh = False
        self.soak.rooms[self.room]["all"].append(self.ident)
        self.became_established()
        if self.end_after_join:
            self.depart()
            return
        if self.soak.phase == "soak":
            self.schedule()

    def schedule(self):
        now = time.monotonic()
        gen = self.gen
        self.loop.at(now + self.rng.uniform(*SAY_EVERY), self.tick_say, gen,
                     self.ident)
        if not self.stayer:
            self.loop.at(now + self.rng.uniform(*MEMBER_LIFETIME),
                         self.tick_depart, gen, self.ident)

    def tick_say(self, gen, ident):
        if (gen != self.gen or ident is not self.ident or self.state != "in"
                or self.soak.phase != "soak"):
            return
        text = text_of(ident.nick, ident.sent)
        ident.sent += 1
        self.soak.said[self.face] += 1
        self.send_say(text)
        self.loop.at(time.monotonic() + self.rng.uniform(*SAY_EVERY),
                     self.tick_say, gen, ident)

    def tick_depart(self, gen, ident):
        if gen != self.gen or ident is not self.ident or self.state != "in":
            return
        if self.soak.phase == "soak":
            self.depart()

    def depart(self, final=False):
        """Leaves the room one of the ways there are (churners only, or
        everyone at the end with final=True)."""
        ident = self.ident
        ways = ("quit", "part", "halfclose", "close", "rst")
        how = self.rng.choices(ways, (3, 3, 2, 1, 1))[0]
        if final and how == "part":
            how = "quit"
        ident.how = how
        if not final:
            self.soak.departures[how] += 1
        if how in ("close", "rst"):
            self.close(how)
            self.reconnect_later()
            return
        self.state = "leaving"
        if how == "halfclose":
            self.flush_then_shutdown()
        elif how == "quit":
            self.send_quit()
        else:
            self.send_part()

    # ---- what each face sends (soak_faces.WsMember has its own)
    def send_say(self, text):
        if self.face == "chat":
            self.send(text + b"\n")
        else:
            self.send(b"PRIVMSG #%s :%s\r\n" % (self.room.encode(), text))

    def send_quit(self):
        self.send(b"/quit bye\n" if self.face == "chat" else b"QUIT :bye\r\n")

    def send_part(self):
        self.send(b"/part\n" if self.face == "chat"
                  else b"PART #%s\r\n" % self.room.encode())

    def send_switch(self, new):
        """After a part: a new nick (new.nick), then a join of self.room."""
        if self.face == "chat":
            self.state = "joining"
            self.send(b"/nick %s\n/join %s\n" % (new.nick, self.room.encode()))
        else:
            self.state = "switching"
            self.send(b"NICK %s\r\n" % new.nick)

    def left(self, line):
        """The server confirmed the leaving (OK bye/part, ERROR, PART)."""
        if self.ident.how == "quit":
            self.state = "quitting"      # the server closes now
            return
        # parted: a new nick in another room, or gone
        if self.soak.phase == "soak" and self.rng.random() < 0.5:
            self.soak.departures["part+nick+join"] += 1
            self.send_switch(self.new_ident())
            return
        self.close()
        self.reconnect_later()

    def on_eof(self):
        if self.state == "quitting":
            self.close()
            self.reconnect_later()
            return
        if self.state == "leaving" and self.ident.how == "halfclose":
            self.close()
            self.reconnect_later()
            return
        raise Failure(f"{self}: closed by the server; had {self.buf!r}")

    def end(self):
        """Soak over: a churner leaves, at once or right after its join."""
        if self.state == "in":
            self.depart(final=True)
        elif self.state in ("connecting", "connected", "upgrading",
                            "registering", "joining", "switching"):
            self.end_after_join = True

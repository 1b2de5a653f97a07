"""Helpers of the cluster tests: a real redis-server on a free loopback port
(or a Unix socket) started and stopped by the test, percored nodes joined
to it, and chat and IRC clients driven together from one select loop.
Every process here is started by the test and signalled by its own PID."""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import struct
import time

from percored import SLOW, Percored, free_port
from webclient import Ws

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    """A redis-server of the test's own. persist: an append-only file
    fsynced on every write, so a SIGKILL loses nothing acknowledged."""

    def __init__(self, unix=False, persist=False):
        self.dir = tempfile.mkdtemp(prefix="pc-redis-")
        self.unix = os.path.join(self.dir, "redis.sock") if unix else None
        self.port = 0 if unix else free_port()
        self.persist = persist
        self.proc = None

    @property
    def address(self):
        return f"unix:{self.unix}" if self.unix else f"127.0.0.1:{self.port}"

    def start(self):
        args = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--daemonize", "no",
                "--protected-mode", "no", "--logfile",
                os.path.join(self.dir, "redis.log")]
        if self.unix:
            args += ["--unixsocket", self.unix, "--unixsocketperm", "700"]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.command("PING") == "+PONG":
                return self
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def command(self, *words):
        """One command over a fresh connection; the first reply line."""
        s = socket.socket(socket.AF_UNIX if self.unix else socket.AF_INET)
        try:
            s.settimeout(1)
            s.connect(self.unix or ("127.0.0.1", self.port))
            with s:
                s.sendall(("*%d\r\n" % len(words) + "".join(
                    "$%d\r\n%s\r\n" % (len(w.encode()), w) for w in words))
                    .encode())
                return s.recv(65536).decode().split("\r\n")[0]
        except OSError:
            s.close()
            return None

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def cluster_metric(n, name, **labels):
    """The sum of a percore_cluster_* series over workers."""
    want = tuple(sorted(labels.items()))
    return sum(v for (m, lab), v in n.metrics().items()
               if m == name and tuple(x for x in lab if x[0] != "worker")
               == want)


def node(redis, name, workers=2, nick_ttl=2, extra=""):
    """A percored node with a chat and an irc listener in redis's cluster."""
    config = (f"[cluster]\nredis = {redis.address}\nnode = {name}\n"
              f"nick_ttl = {nick_ttl}\ntimeout = {1.0 * SLOW}\n{extra}")
    return Percored(listeners=(("chat", "chat"), ("irc", "irc"),
                               ("web", "web"), ("metrics", "metrics")),
                    workers=workers, config=config).__enter__()


class Client:
    """A connection whose received lines pile up in `lines`."""

    def __init__(self, n, face, nick):
        self.sock = n.connect(face)
        self.sock.setblocking(False)
        self.face, self.nick, self.buf, self.lines = face, nick, b"", []
        self.room = None

    def send(self, line):
        self.sock.setblocking(True)
        self.sock.sendall((line + "\r\n").encode())
        self.sock.setblocking(False)

    def feed(self):
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        self.buf += data
        *done, self.buf = self.buf.split(b"\n")
        self.lines += [d.decode(errors="replace").rstrip("\r") for d in done]

    def close(self):
        self.sock.close()


class Chat(Client):
    def login(self):
        self.send(f"/nick {self.nick}")
        return f"OK nick {self.nick}"

    def join(self, room):
        self.room = room
        self.send(f"/join {room}")
        return f"OK join {room}"

    def say(self, text):
        self.send(text)

    def events(self):
        """('line', text) for room lines, ('missed',) for the notice."""
        out = []
        for l in self.lines:
            if l.startswith("*** some lines of "):
                out.append(("missed",))
            elif ": L " in l and not l.startswith("*"):
                out.append(("line", l.split(": ", 1)[1]))
        return out


class Irc(Client):
    def login(self):
        self.send("CAP REQ :echo-message")
        self.send(f"NICK {self.nick}")
        self.send(f"USER {self.nick} 0 * :{self.nick}")
        self.send("CAP END")
        return f" 001 {self.nick} "

    def join(self, room):
        self.room = room
        self.send(f"JOIN #{room}")
        return f" 366 {self.nick} #{room} "

    def say(self, text):
        self.send(f"PRIVMSG #{self.room} :{text}")

    def events(self):
        out = []
        for l in self.lines:
            if " NOTICE #" in l and "*** some lines of #" in l:
                out.append(("missed",))
            elif f" PRIVMSG #{self.room} :L " in l:
                out.append(("line", l.split(" :", 1)[1]))
        return out


class Web(Client):
    """The web face: JSON over WebSocket (docs/protocols/web.md); each
    message is kept in `lines` as a short text (see norm)."""

    def __init__(self, n, face, nick):
        self.ws = Ws(n.ports["web"])
        self.sock = self.ws.sock
        self.sock.setblocking(False)
        self.face, self.nick, self.lines, self.room = "web", nick, [], None

    def send(self, obj):
        self.sock.setblocking(True)
        self.ws.send(obj)
        self.sock.setblocking(False)

    @staticmethod
    def norm(m):
        t = m.get("type")
        if t == "ok":
            return f"ok {m.get('for')} {m.get('nick') or m.get('room') or ''}"
        if t in ("say", "missed") and m.get("room"):
            return f"{t} {m['room']} {m.get('nick')}: {m.get('text', '')}"
        return json.dumps(m)

    def feed(self):
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        buf = self.ws.http.buf = self.ws.http.buf + data
        while len(buf) >= 2:
            n, off = buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, off = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, off = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < off + n:
                break
            op, payload, buf = buf[0] & 0x0F, buf[off:off + n], buf[off + n:]
            if op == 9:
                self.send_pong(payload)
            elif op == 1:
                self.lines.append(self.norm(json.loads(payload)))
        self.ws.http.buf = buf

    def send_pong(self, payload):
        self.sock.setblocking(True)
        self.ws.send_frame(10, payload)
        self.sock.setblocking(False)

    def login(self):
        self.send({"type": "nick", "nick": self.nick})
        return f"ok nick {self.nick}"

    def join(self, room):
        self.room = room
        self.send({"type": "join", "room": room})
        return f"ok join {room}"

    def say(self, text):
        self.send({"type": "say", "room": self.room, "text": text})

    def events(self):
        out = []
        for l in self.lines:
            if l.startswith("missed "):
                out.append(("missed",))
            elif l.startswith("say ") and ": L " in l:
                out.append(("line", l.split(": ", 1)[1]))
        return out


def pump(clients, until=lambda: False, timeout=10, what="clients"):
    """Reads whatever arrives for every client until `until()` holds."""
    deadline = time.time() + timeout * SLOW
    socks = {c.sock: c for c in clients}
    while True:
        if until():
            return
        left = deadline - time.time()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        ready, _, _ = select.select(list(socks), [], [], min(left, 0.05))
        for s in ready:
            socks[s].feed()


def wait_line(clients, text, timeout=10):
    """Every client has a line containing text (what login/join return)."""
    pump(clients, lambda: all(any(text[c] in l for l in c.lines)
                              for c in clients), timeout, "answers")


def seen(c, text):
    return any(text in l for l in c.lines)


def check_rooms(members, sent, allow_missed=False):
    """members: room -> clients; sent: room -> [(nick, n)] in send order.
    Every member saw one order; each sender's lines in order; every line
    once, unless the member was told some may be missed (allow_missed)."""
    for room, cs in members.items():
        seqs = {c.nick: [e[1] for e in c.events() if e[0] == "line"]
                for c in cs}
        notices = {c.nick: sum(e[0] == "missed" for e in c.events())
                   for c in cs}
        want = {f"L {s} {n}" for s, n in sent[room]}
        ref = max(seqs.values(), key=len)
        pos = {t: i for i, t in enumerate(ref)}
        for nick, seq in seqs.items():
            assert len(seq) == len(set(seq)), f"{nick} in {room}: a repeat"
            assert set(seq) <= want, f"{nick} in {room}: lines never said"
            idx = [pos.get(t, -1) for t in seq]
            if not allow_missed:
                assert seq == ref, f"{nick} in {room}: another order"
                assert set(seq) == want, \
                    f"{nick} in {room}: {len(want - set(seq))} lines lost"
                assert notices[nick] == 0, f"{nick}: a needless notice"
                continue
            # Lines not in the longest sequence would mean two orders.
            assert -1 not in idx and idx == sorted(idx), \
                f"{nick} in {room}: another order"
            assert notices[nick] <= 1, f"{nick}: {notices[nick]} notices"
            if set(seq) != want:
                assert notices[nick] == 1, \
                    f"{nick} in {room}: {len(want - set(seq))} lines lost " \
                    f"with {notices[nick]} notices"
        for nick, seq in seqs.items():
            by = {}
            for t in seq:
                _, s, n = t.split()
                assert int(n) > by.get(s, -1), f"{s}'s lines reordered"
                by[s] = int(n)


def crowd(nodes, rooms, per_room):
    """per_room clients in each room, spread over every node and both
    faces; logged in and joined. Returns room -> clients."""
    members, everyone, k = {}, [], 0
    for r in rooms:
        for i in range(per_room):
            n = nodes[k % len(nodes)]
            cls = (Chat, Irc, Web)[(k // len(nodes)) % 3]
            face = {Chat: "chat", Irc: "irc", Web: "web"}[cls]
            c = cls(n, face, f"u{k}")
            k += 1
            members.setdefault(r, []).append(c)
            everyone.append(c)
    wait_line(everyone, {c: c.login() for c in everyone}, timeout=20)
    wait_line(everyone, {c: c.join(c_room(members, c)) for c in everyone},
              timeout=20)
    return members, everyone


def c_room(members, c):
    for r, cs in members.items():
        if c in cs:
            return r
    return None


def said(members, lines):
    """Expected counts: every member of a room gets each of its lines."""
    return {r: len(cs) * lines for r, cs in members.items()}


def all_delivered(members, lines):
    def done():
        return all(len([e for e in c.events() if e[0] == "line"]) >=
                   len(cs) * lines for cs in members.values() for c in cs)
    return done

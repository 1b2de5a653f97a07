"""Conformance of percored's `irc` face: registration, numerics and error
replies, as tables of command -> expected replies in the manner of the
RFC's tables. The reference is the Modern IRC Client Protocol
(modern.ircdocs.horse), with RFC 2812 where it is silent.

Raw sockets against a real percored with 4 workers; every row opens its
own clients (up to four), which the kernel spreads over the workers, so
the exchanges cross workers. One server for the tables; the password and
the timeout rows get servers of their own.

IRC_SERVER=ngircd runs the same tables against Debian's ngircd
(/usr/sbin/ngircd, or $NGIRCD) on a free loopback port, to prove the
tables. Rows where ngircd legitimately differs from what percored must do
are marked PERCORED_ONLY with the reason; they are skipped there, never
loosened for percored.

A row: (title, setup, steps). A step: who sends, what, the replies the
sender must get (in order, other lines in between allowed), the replies
that must not come, and what other clients must (see=) or must not
(unseen=) receive. Only the numeric or command, the target and the key
parameters are checked, never the free text. After each step every
registered client involved sends a PING and reads up to its PONG, so a
forbidden reply has had its chance to appear, and the connection is
proven still usable.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from percored import SLOW, Percored, free_port

TARGET = os.environ.get("IRC_SERVER", "percored")
NGIRCD = os.environ.get("NGIRCD", "/usr/sbin/ngircd")
WORKERS = 4

WAIT = 2 * SLOW      # for a reply that must come
QUIET = 0.5 * SLOW   # for one that must not, when no PING can sync
GRACE = 0.3 * SLOW   # after our PING's PONG, for replies that trail it

PERCORED_ONLY = "percored"

# The server's own name: percored's `server_name` default. ngircd insists
# on a dot in its name.
SERVER_NAME = "irc.percore.test" if TARGET == "ngircd" else "percore"
PASSWORD = "sekrit"


# ---------------------------------------------------------------- servers

class Ngircd:
    """ngircd in the foreground (-n) on a free 127.0.0.1 port, from a temp
    config: no penalties (MaxPenaltyTime=0), no DNS/ident/PAM, a phrase
    MOTD. `timeouts` sets its smallest ping times (it checks every few
    seconds, so its timeouts take ~6-12 s, not 1)."""

    def __init__(self, password=None, timeouts=False):
        self.dir = tempfile.mkdtemp(prefix="ngircd-")
        self.ports = {"irc": free_port()}
        os.makedirs(os.path.join(self.dir, "conf.d"))
        conf = os.path.join(self.dir, "ngircd.conf")
        with open(conf, "w") as f:
            f.write(f"""[Global]
Name = {SERVER_NAME}
Info = conformance test
AdminInfo1 = test
AdminInfo2 = test
AdminEMail = test@example.invalid
Listen = 127.0.0.1
Ports = {self.ports['irc']}
MotdPhrase = hello
Network = TestNet
{'Password = ' + password if password else ''}
[Limits]
MaxNickLength = 31
MaxConnectionsIP = 0
MaxJoins = 0
MaxPenaltyTime = 0
PingTimeout = {1 if timeouts else 120}
PongTimeout = {1 if timeouts else 20}
[Options]
DNS = no
Ident = no
PAM = no
IncludeDir = {self.dir}/conf.d
""")
        self.args = [NGIRCD, "-n", "-f", conf]
        self.log = tempfile.TemporaryFile("w+")
        self.proc = None

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ngircd exited at start:\n" + self.output())
            if " ready." in self.output():
                return self
            time.sleep(0.02)
        raise RuntimeError("ngircd did not start:\n" + self.output())

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # by its PID, ours
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def irc_server(password=None, timeouts=False, metrics=False):
    if TARGET == "ngircd":
        return Ngircd(password=password, timeouts=timeouts)
    args = []
    if password:
        args += ["--set", f"irc.password={password}"]
    if timeouts:
        args += ["--set", "irc.registration_timeout=1",
                 "--set", "irc.ping_interval=1", "--set", "irc.ping_timeout=1"]
    listeners = (("irc", "irc"),)
    if metrics:  # only to show that the rows ran on every worker
        listeners += (("metrics", "metrics"),)
    return Percored(*args, listeners=listeners, workers=WORKERS)


# ----------------------------------------------------------------- client

class Msg:
    """One parsed line: tags, source, command, params."""

    def __init__(self, raw):
        self.raw = raw
        text = raw.decode("utf-8", "replace")
        self.tags = {}
        if text.startswith("@"):
            tags, _, text = text.partition(" ")
            for t in tags[1:].split(";"):
                k, _, v = t.partition("=")
                self.tags[k] = v
        self.source = ""
        text = text.lstrip(" ")
        if text.startswith(":"):
            self.source, _, text = text[1:].partition(" ")
        words = []
        while True:
            text = text.lstrip(" ")
            if not text:
                break
            if text.startswith(":"):
                words.append(text[1:])
                break
            w, _, text = text.partition(" ")
            words.append(w)
        self.command = words[0].upper() if words else ""
        self.params = words[1:]
        self.nick = self.source.split("!", 1)[0]

    def __repr__(self):
        return self.raw.decode("utf-8", "backslashreplace")


CLOSED_MSG = Msg(b"<closed>")  # what reading a closed connection gives


class Client:
    """A raw IRC connection. Lines go to and from a transcript shared by
    the row's clients, for failure messages. Answers the server's PINGs
    (a server may send them during registration) unless told not to."""

    def __init__(self, port, label, log):
        self.label, self.log = label, log
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=WAIT)
        self.buf = b""
        self.closed = False
        self.registered = False
        self.answer_pings = True
        self.violations = []
        self.tokens = 0

    def send(self, data):
        """A str is a line (CRLF added); bytes go as they are."""
        if isinstance(data, str):
            data = data.encode() + b"\r\n"
        self.log.append((self.label, ">", data.rstrip(b"\r\n")))
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.log.append((self.label, "!", str(e).encode()))

    def read(self, timeout):
        """The next line, None on timeout, CLOSED_MSG once closed."""
        if self.closed:
            return None
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                self.log.append((self.label, "<", b"<closed>"))
                return CLOSED_MSG
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        if not line.endswith(b"\r"):
            self.violations.append(f"line not ended by CRLF: {line!r}")
        line = line.rstrip(b"\r")
        body = line.split(b" ", 1)[1] if line.startswith(b"@") else line
        if len(body) + 2 > 512:
            self.violations.append(f"line over 512 bytes: {len(body) + 2}")
        self.log.append((self.label, "<", line))
        msg = Msg(line)
        if msg.command.isdigit() and len(msg.command) == 3:
            if msg.command == "001":
                self.registered = True
            # numerics come from the server (ngircd sends 341 with the
            # invited user as source: its quirk, not checked there)
            if msg.nick != SERVER_NAME and not (
                    TARGET == "ngircd" and msg.command == "341"):
                self.violations.append(f"numeric from {msg.source!r}: {msg!r}")
        if msg.command == "PING" and self.answer_pings and msg.params:
            self.send("PONG :" + msg.params[-1])
        return msg

    def token(self):
        self.tokens += 1
        return f"sync-{self.label}-{self.tokens}"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ------------------------------------------------------------ expectations

ANY = object()


def fill(text, ctx, escape=False):
    """{me}, {chan}, ... replaced by the row's values (only known keys:
    regular expressions keep their {m,n})."""
    def sub(m):
        if m.group(1) not in ctx:
            return m.group(0)
        v = ctx[m.group(1)]
        return re.escape(v) if escape else v
    return re.sub(r"\{(\w+)\}", sub, text)


class Rx:
    """A parameter that fully matches a regular expression."""

    def __init__(self, pattern):
        self.pattern = pattern

    def test(self, value, ctx):
        return re.fullmatch(fill(self.pattern, ctx, escape=True), value,
                            re.S) is not None

    def show(self, ctx):
        return "/" + fill(self.pattern, ctx) + "/"


class Words:
    """A space-separated list holding exactly these words, in any order."""

    def __init__(self, *words):
        self.words = words

    def test(self, value, ctx):
        return sorted(value.split()) == sorted(fill(w, ctx) for w in self.words)

    def show(self, ctx):
        return "words{" + " ".join(fill(w, ctx) for w in self.words) + "}"


class Has(Words):
    """A space-separated list holding at least these words (`name=value`
    counts as `name`, as in CAP LS 302)."""

    def test(self, value, ctx):
        got = set(value.split()) | {w.split("=", 1)[0] for w in value.split()}
        return all(fill(w, ctx) in got for w in self.words)

    def show(self, ctx):
        return "has{" + " ".join(fill(w, ctx) for w in self.words) + "}"


class R:
    """A reply: command or numeric (a regular expression: "403|479"),
    then its parameters from the first (the target) on; only those given
    are checked. src= the source's nick; tags= message tags."""

    def __init__(self, command, *params, src=None, tags=None):
        self.command, self.params, self.src, self.tags = (
            command, params, src, tags or {})

    def matches(self, msg, ctx):
        if msg is CLOSED_MSG or not re.fullmatch(self.command, msg.command):
            return False
        for i, p in enumerate(self.params):
            if p is ANY:
                continue
            if i >= len(msg.params):
                return False
            if isinstance(p, str):
                if msg.params[i] != fill(p, ctx):
                    return False
            elif not p.test(msg.params[i], ctx):
                return False
        if self.src is not None and msg.nick != fill(self.src, ctx):
            return False
        for k, v in self.tags.items():
            if k not in msg.tags or not v.test(msg.tags[k], ctx):
                return False
        return True

    def show(self, ctx):
        ps = [("*any*" if p is ANY else fill(p, ctx) if isinstance(p, str)
               else p.show(ctx)) for p in self.params]
        s = " ".join([self.command] + ps)
        if self.src:
            s = f":{fill(self.src, ctx)} " + s
        return s


class _Closed(R):
    def __init__(self):
        super().__init__("<closed>")

    def matches(self, msg, ctx):
        return msg is CLOSED_MSG

    def show(self, ctx):
        return "<the server closes the connection>"


CLOSED = _Closed()


class Group:
    """Replies that come in any order among themselves. A member may be a
    list: a sequence kept in order, interleaved with the others."""

    def __init__(self, *items):
        self.items = [list(i) if isinstance(i, list) else [i] for i in items]


class Expectation:
    """An ordered subsequence of replies; a Group's members in any order."""

    def __init__(self, items, ctx):
        self.todo, self.ctx, self.group = list(items), ctx, None

    def feed(self, msg):
        if not self.todo:
            return
        head = self.todo[0]
        if isinstance(head, Group):
            if self.group is None:
                self.group = [list(seq) for seq in head.items]
            for seq in self.group:
                if seq[0].matches(msg, self.ctx):
                    seq.pop(0)
                    break
            self.group = [seq for seq in self.group if seq]
            if not self.group:
                self.todo.pop(0)
                self.group = None
        elif head.matches(msg, self.ctx):
            self.todo.pop(0)

    @property
    def done(self):
        return not self.todo

    def missing(self):
        out = []
        for i, e in enumerate(self.todo):
            if isinstance(e, Group):
                left = self.group if i == 0 and self.group is not None else e.items
                out.append("any order: " + "; ".join(
                    ", then ".join(x.show(self.ctx) for x in seq) for seq in left))
            else:
                out.append(e.show(self.ctx))
        return out


def as_reply(x):
    return R(x) if isinstance(x, str) else x


class Step:
    def __init__(self, by, command, expect=(), never=(), see=None,
                 unseen=None, once=None, check=None):
        self.by, self.check = by, check
        self.commands = command if isinstance(command, list) else [command]
        self.expect = [as_reply(e) for e in expect]
        self.never = [as_reply(e) for e in never]
        self.see = see or {}
        self.unseen = unseen or {}
        self.once = once or {}


class Row:
    def __init__(self, title, setup, *steps, only=None, why=None):
        self.title, self.setup, self.steps = title, setup, steps
        self.only, self.why = only, why


def T(title, setup, by, command, expect=(), never=(), only=None, why=None,
      **kw):
    """A one-step row."""
    return Row(title, setup, Step(by, command, expect, never, **kw),
               only=only, why=why)


class RowFailure(AssertionError):
    pass


# ------------------------------------------------------------------ world

USER = "USER u 0 * :Real Name"


def welcome(who="{me}"):
    return [R("001", who), R("376|422", who)]


class World:
    """The clients of one row, by role, and the names they use."""

    def __init__(self, port, n):
        self.port, self.n = port, n
        self.log = []
        self.clients = {}
        nicks = dict(me=f"me{n}", peer=f"peer{n}", op=f"op{n}",
                     member=f"mem{n}", watcher=f"wat{n}", outsider=f"out{n}",
                     stranger=f"str{n}")
        self.ctx = dict(nicks, chan=f"#c{n}", chan2=f"#d{n}", n=str(n),
                        server=SERVER_NAME, user=USER,
                        PEER=nicks["peer"].upper())

    def connect(self, role):
        c = Client(self.port, role, self.log)
        self.clients[role] = c
        return c

    def collect(self, client, items, sync=None, wait=WAIT):
        """Reads until `items` came (and, when syncing, our PONG); returns
        the lines read. Raises RowFailure with the transcript if not."""
        if sync is None:
            sync = client.registered and not client.closed
        exp = Expectation(items, self.ctx)
        token = None
        if sync:
            token = client.token()
            client.send("PING :" + token)
        got, pong_at = [], None
        start = time.time()
        deadline = start + wait
        if not items and not sync:
            deadline = start + QUIET  # only things that must not come
        while not (exp.done and (not sync or pong_at)):
            now = time.time()
            limit = deadline if pong_at is None else min(deadline, pong_at + GRACE)
            if now >= limit:
                break
            msg = client.read(limit - now)
            if msg is None:
                if client.closed:
                    break
                continue
            if token and msg.command == "PONG" and msg.params[-1:] == [token]:
                pong_at = time.time()
                continue
            got.append(msg)
            exp.feed(msg)
            if msg is CLOSED_MSG:
                break
        if not exp.done:
            self.fail(f"{client.label} did not get: " + " | ".join(exp.missing()))
        if sync and pong_at is None and not client.closed:
            self.fail(f"{client.label} got no PONG to {token}: connection unusable?")
        return got

    def fail(self, why):
        raise RowFailure(why + "\n" + self.transcript())

    def transcript(self):
        out = []
        for label, d, line in self.log:
            text = line.decode("utf-8", "backslashreplace")
            if len(text) > 160:
                text = text[:140] + f"...({len(text)} chars)"
            out.append(f"  {label:>8} {d} {text}")
        return "\n".join(out)

    def register(self, role, nick=None):
        if nick:
            self.ctx[role] = nick
        c = self.connect(role)
        c.send(fill("NICK {%s}" % role, self.ctx))
        c.send(USER)
        self.collect(c, welcome("{%s}" % role), sync=False)
        return c

    def join(self, role, chan="{chan}", watchers=()):
        c = self.clients[role]
        c.send("JOIN " + fill(chan, self.ctx))
        self.collect(c, [R("JOIN", chan, src="{%s}" % role), R("366", ANY, chan)])
        for w in watchers:
            self.collect(self.clients[w], [R("JOIN", chan, src="{%s}" % role)])

    def run(self, step):
        sender = self.clients[step.by]
        for cmd in step.commands:
            if callable(cmd):
                cmd = cmd(self.ctx)
            if isinstance(cmd, bytes):
                cmd = fill(cmd.decode("latin-1"), self.ctx).encode("latin-1")
                sender.send(cmd)
                if not cmd.endswith(b"\n"):
                    time.sleep(0.05)  # a piece of a line: let it go alone
            else:
                sender.send(fill(cmd, self.ctx))
        roles = [step.by] + [r for r in list(step.see) + list(step.unseen) +
                             list(step.once) if r != step.by]
        for role in dict.fromkeys(roles):
            c = self.clients[role]
            if role == step.by:
                items, never = step.expect, step.never + step.unseen.get(role, [])
            else:
                items, never = step.see.get(role, []), step.unseen.get(role, [])
            got = self.collect(c, items)
            if role == step.by and step.check:
                step.check(self, got)
            for bad in never:
                for m in got:
                    if bad.matches(m, self.ctx):
                        self.fail(f"{role} must not get {bad.show(self.ctx)}, got {m!r}")
            for one in step.once.get(role, []):
                k = sum(1 for m in got if one.matches(m, self.ctx))
                if k != 1:
                    self.fail(f"{role} got {one.show(self.ctx)} {k} times, not once")

    def check_clean(self):
        for role, c in self.clients.items():
            if c.violations:
                self.fail(f"{role}: " + "; ".join(c.violations[:5]))

    def close(self):
        for c in self.clients.values():
            c.close()


# ----------------------------------------------------------------- setups
# Each takes the World and makes the clients a row starts from.

def UNREG(w):
    """`me` connected, nothing sent."""
    w.connect("me")


def REG(w):
    """`me` registered."""
    w.register("me")


def PEER(w):
    """`me` and `peer` registered."""
    w.register("me")
    w.register("peer")


def PEER_UNREG(w):
    """`peer` registered, `me` only connected."""
    w.register("peer")
    w.connect("me")


def BRACKETS(w):
    """`peer` registered as b<n>[x]\\y, `me` registered."""
    w.ctx["peer"] = f"b{w.n}[x]\\y"
    w.ctx["PEER_FOLDED"] = f"B{w.n}{{X}}|Y"
    w.register("peer")
    w.register("me")


def CHAN(w):
    """`op` created {chan} and set +nt; `member` and `watcher` joined;
    `outsider` registered, not in it."""
    for role in ("op", "member", "watcher", "outsider"):
        w.register(role)
    w.join("op")
    w.clients["op"].send(fill("MODE {chan} +nt", w.ctx))
    w.collect(w.clients["op"], [])
    w.join("member", watchers=["op"])
    w.join("watcher", watchers=["op", "member"])


def CHAN_STRANGER(w):
    """CHAN, and `stranger` registered too."""
    CHAN(w)
    w.register("stranger")


def SHARED(w):
    """`me` and `peer` share {chan} and {chan2}; `stranger` shares none."""
    for role in ("me", "peer", "stranger"):
        w.register(role)
    w.join("me")
    w.join("me", "{chan2}")
    w.join("peer", watchers=["me"])
    w.join("peer", "{chan2}", watchers=["me"])


# ------------------------------------------------------------------ tables
# title                                    setup  by   command
#     replies to the sender, in order                 never (to the sender)

LONG_NICK = "n" * 33                     # over NICKLEN=32
MAX_NICK = "m" + "x" * 31                # exactly NICKLEN=32
MAX_CHAN = "#" + "c" * 32                # exactly CHANNELLEN=33


def line_of(size):
    """PRIVMSG {peer} :xxx... of `size` bytes with its CRLF."""
    def make(ctx):
        head = f"PRIVMSG {ctx['peer']} :".encode()
        return head + b"x" * (size - 2 - len(head)) + b"\r\n"
    return make


ISO_TIME = Rx(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def burst(who="{me}"):
    """The welcome after NICK and USER: 001-005, LUSERS, MOTD."""
    return [R("001", who), R("002", who), R("003", who),
            R("004", who, "{server}"), R("005", who),
            R("251", who), R("254", who, Rx(r"\d+")), R("255", who),
            R("376|422", who)]


ISUPPORT_TOKENS = ("CHANTYPES", "PREFIX", "NICKLEN", "CHANNELLEN", "TOPICLEN",
                   "CASEMAPPING", "CHANMODES", "NETWORK")
ISUPPORT_VALUES = {"CHANTYPES": "#", "PREFIX": "(ov)@+", "NICKLEN": "32",
                   "CHANNELLEN": "33", "CASEMAPPING": "rfc1459",
                   "CHANMODES": "b,k,l,imnst", "TOPICLEN": Rx(r"\d+"),
                   "NETWORK": Rx(r"\S+")}

NOT_YET = ["JOIN #x", "PART #x", "PRIVMSG someone :hi", "MODE #x",
           "TOPIC #x", "NAMES #x", "WHO #x", "WHOIS someone", "LIST",
           "AWAY :gone", "ISON someone", "USERHOST someone", "KICK #x someone",
           "INVITE someone #x"]

BAD_NICKS = ["9lives",      # RFC 2812: a nick starts with a letter or special
             "-dash",       # ditto
             "#chan",       # starts with a channel type
             "+voice",      # starts with a membership prefix
             "@op",         # ditto
             "$dollar",     # starts with $
             "a,b", "a*b", "a?b", "a!b", "a@b",  # MUST NOT contain these
             LONG_NICK]     # over NICKLEN

REGISTRATION = [
    T("CAP LS lists multi-prefix", UNREG, "me", "CAP LS 302",
      [R("CAP", "*", "LS", Has("multi-prefix"))]),
    T("CAP LS lists multi-prefix, server-time and echo-message", UNREG, "me",
      "CAP LS 302",
      [R("CAP", "*", "LS", Has("multi-prefix", "server-time", "echo-message"))],
      only=PERCORED_ONLY, why="ngircd offers only multi-prefix"),
    Row("CAP REQ of an offered capability is ACKed", UNREG,
        Step("me", "CAP LS 302", [R("CAP", "*", "LS")]),
        Step("me", "CAP REQ :multi-prefix",
             [R("CAP", ANY, "ACK", Rx(r"multi-prefix ?"))], ["NAK"])),
    Row("CAP REQ of an unknown capability is NAKed", UNREG,
        Step("me", "CAP LS 302", [R("CAP", "*", "LS")]),
        Step("me", "CAP REQ :bogus", [R("CAP", ANY, "NAK", Rx(r"bogus ?"))],
             ["ACK"])),
    Row("registration waits for CAP END once CAP LS was sent", UNREG,
        Step("me", "CAP LS 302", [R("CAP", "*", "LS")]),
        Step("me", ["NICK {me}", USER], [], ["001"]),
        Step("me", "CAP END", burst())),
    T("NICK and USER register: 001 to 005, LUSERS, MOTD", UNREG, "me",
      ["NICK {me}", USER], burst()),
    # ngircd sends 252 and 253 only when they are not zero
    T("LUSERS in the welcome is 251 252 253 254 255", UNREG, "me",
      ["NICK {me}", USER],
      [R("001", "{me}")] + [R(c, "{me}") for c in
                            ("251", "252", "253", "254", "255")] +
      [R("376|422", "{me}")],
      only=PERCORED_ONLY, why="ngircd leaves out 252 and 253 when zero"),
    T("ISUPPORT names its tokens", UNREG, "me", ["NICK {me}", USER],
      welcome(), check=lambda w, got: check_isupport(w, got, False)),
    T("ISUPPORT values are percore's", UNREG, "me", ["NICK {me}", USER],
      welcome(), check=lambda w, got: check_isupport(w, got, True),
      only=PERCORED_ONLY,
      why="ngircd: CASEMAPPING=ascii PREFIX=(qaohv)~&@%+ "
          "CHANMODES=beI,k,l,imMnOPQRstVz CHANNELLEN=50 NICKLEN<=31"),
    T("QUIT before registration: ERROR, then the server closes", UNREG, "me",
      "QUIT", [R("ERROR"), CLOSED]),
    T("PING before registration is answered", UNREG, "me", "PING early",
      [R("PONG", "{server}", "early", src="{server}")], ["451"],
      only=PERCORED_ONLY, why="ngircd answers 451 until registered"),
    T("a nick taken is 433 during registration too, target *", PEER_UNREG,
      "me", "NICK {peer}", [R("433", "*", "{peer}")], ["001"]),
    Row("after a 433 during registration another nick registers", PEER_UNREG,
        Step("me", ["NICK {peer}", USER], [R("433", "*", "{peer}")], ["001"]),
        Step("me", "NICK {me}", burst())),
    T("USER twice is 462", REG, "me", USER, [R("462", "{me}")]),
    T("PASS after registration is 462", REG, "me", "PASS whatever",
      [R("462", "{me}")]),
] + [
    T(f"{cmd.split()[0]} before registration is 451", UNREG, "me", cmd,
      [R("451", "*")], ["001"]) for cmd in NOT_YET
]

NICKS = [
    T("NICK without a nickname is 431", REG, "me", "NICK",
      [R("431", "{me}")], ["461"],
      only=PERCORED_ONLY, why="ngircd answers 461"),
] + [
    T(f"NICK {nick[:12]} is 432", REG, "me", f"NICK {nick}",
      [R("432", "{me}", nick)], ["NICK"]) for nick in BAD_NICKS
] + [
    # the nick cannot be echoed as a middle parameter: only the target
    T("NICK with a space in it is 432", REG, "me", "NICK :a b",
      [R("432", "{me}")], ["NICK"]),
    T("a nick of NICKLEN (32) characters is accepted", REG, "me",
      f"NICK {MAX_NICK}", [R("NICK", MAX_NICK, src="{me}")], ["432"],
      only=PERCORED_ONLY, why="ngircd's longest nick is 31"),
    T("a nick in use is 433", PEER, "me", "NICK {peer}",
      [R("433", "{me}", "{peer}")], ["NICK"]),
    T("a nick in use in another case is 433", PEER, "me", "NICK {PEER}",
      [R("433", "{me}", "{PEER}")], ["NICK"]),
    T("rfc1459 casemapping: [ ] \\ are { } | for 433", BRACKETS, "me",
      "NICK {PEER_FOLDED}", [R("433", "{me}", "{PEER_FOLDED}")], ["NICK"],
      only=PERCORED_ONLY, why="ngircd's CASEMAPPING is ascii"),
    T("a NICK change is echoed to the changer", REG, "me", "NICK {me}x",
      [R("NICK", "{me}x", src="{me}")]),
    Row("a NICK change is seen once by a member sharing two channels",
        SHARED,
        Step("me", "NICK {me}x", [R("NICK", "{me}x", src="{me}")],
             see={"peer": [R("NICK", "{me}x", src="{me}")]},
             once={"peer": [R("NICK", "{me}x")]}),
        # a second copy, relayed through the other channel, would come
        # before what is said after the change in that channel
        Step("me", ["PRIVMSG {chan} :after", "PRIVMSG {chan2} :after2"], [],
             see={"peer": [Group(R("PRIVMSG", "{chan}", "after", src="{me}x"),
                                 R("PRIVMSG", "{chan2}", "after2", src="{me}x"))]},
             unseen={"peer": [R("NICK")], "stranger": [R("NICK")]})),
]

COMMANDS = [
    T("an unknown command is 421", REG, "me", "FOO bar",
      [R("421", "{me}", "FOO")]),
    T("PING x is PONG <server> x", REG, "me", "PING x",
      [R("PONG", "{server}", "x", src="{server}")]),
    T("commands are case-insensitive", REG, "me", "ping lower",
      [R("PONG", "{server}", "lower")], ["421"]),
    T("a line of 512 bytes with CRLF is accepted", PEER, "me",
      line_of(512), [], ["417"],
      # relayed with the source in front it may be cut to fit 512
      # (ngircd ends it with "[CUT]")
      see={"peer": [R("PRIVMSG", "{peer}", Rx("x{400,}.*"), src="{me}")]}),
    Row("a line over 512 bytes is 417 and the connection stays", PEER,
        Step("me", line_of(513), [R("417", "{me}")], ["ERROR", CLOSED]),
        Step("me", "PRIVMSG {peer} :after", [],
             see={"peer": [R("PRIVMSG", "{peer}", "after", src="{me}")]},
             unseen={"peer": [R("PRIVMSG", "{peer}", Rx("x+"))]}),
        only=PERCORED_ONLY,
        why="ngircd closes the connection: ERROR :Request too long"),
    Row("a long line arriving in pieces is one 417", PEER,
        Step("me", [b"PRIVMSG {peer} :" + b"y" * 300, b"z" * 300,
                    b"w" * 300 + b"\r\n"],
             [R("417", "{me}")], ["ERROR", CLOSED, "421"],  # the tail is no line
             once={"me": [R("417")]}),
        Step("me", "PRIVMSG {peer} :after", [],
             see={"peer": [R("PRIVMSG", "{peer}", "after", src="{me}")]},
             unseen={"peer": [R("PRIVMSG", "{peer}", Rx("[yzw]+"))]}),
        only=PERCORED_ONLY, why="ngircd closes the connection"),
]

# A reply to a line that cannot be sent: a numeric, a FAIL or a NOTICE.
REFUSED = R(r"\d{3}|FAIL|NOTICE")

CHANNELS = [
    T("JOIN without a channel is 461", REG, "me", "JOIN",
      [R("461", "{me}", "JOIN")]),
    T("JOIN of a name without a channel type is 403 or 479", REG, "me",
      "JOIN nochan{n}", [R("403|479", "{me}", "nochan{n}")], ["JOIN"]),
    # `JOIN #bad name` on the wire is channel #bad with key `name`; a
    # name with a space can only come as a trailing parameter (and cannot
    # be echoed as a middle one: only the target is checked).
    T("JOIN of a name with a space is 403 or 479", REG, "me",
      "JOIN :#bad name{n}", [R("403|479", "{me}")], ["JOIN"]),
    T("JOIN of a name with a BELL is 403 or 479", REG, "me",
      "JOIN #bad\x07{n}", [R("403|479", "{me}", "#bad\x07{n}")], ["JOIN"]),
    # each channel's JOIN, 353, 366 in order; the two channels in any
    # order (their homes may be different workers)
    T("JOIN #a,#b joins both; the creator is @", REG, "me",
      "JOIN {chan},{chan2}",
      [Group(*[[R("JOIN", c, src="{me}"),
                R("353", "{me}", Rx("[=*@]"), c, Words("@{me}")),
                R("366", "{me}", c)] for c in ("{chan}", "{chan2}")])],
      ["403", "479"]),
    T("JOIN of a CHANNELLEN (33) name works", REG, "me", f"JOIN {MAX_CHAN}",
      [R("JOIN", MAX_CHAN, src="{me}"), R("366", "{me}", MAX_CHAN)]),
    T("JOIN is seen by the members; NAMES lists them all", CHAN, "outsider",
      "JOIN {chan}",
      [R("JOIN", "{chan}", src="{outsider}"),
       R("353", "{outsider}", Rx("[=*@]"), "{chan}",
         Words("@{op}", "{member}", "{watcher}", "{outsider}")),
       R("366", "{outsider}", "{chan}")],
      see={"op": [R("JOIN", "{chan}", src="{outsider}")],
           "member": [R("JOIN", "{chan}", src="{outsider}")]}),
    Row("JOIN 0 parts every channel", REG,
        Step("me", "JOIN {chan},{chan2}",
             [Group(R("366", "{me}", "{chan}"), R("366", "{me}", "{chan2}"))]),
        Step("me", "JOIN 0", [Group(R("PART", "{chan}", src="{me}"),
                                    R("PART", "{chan2}", src="{me}"))]),
        Step("me", "WHOIS {me}", [R("318", "{me}", "{me}")], ["319"])),
    T("PART is seen by every member", CHAN, "member", "PART {chan} :later",
      [R("PART", "{chan}", src="{member}")],
      see={"op": [R("PART", "{chan}", src="{member}")],
           "watcher": [R("PART", "{chan}", src="{member}")]}),
    T("PART without a channel is 461", REG, "me", "PART",
      [R("461", "{me}", "PART")]),
    T("PART of a channel one is not in is 442", CHAN, "outsider",
      "PART {chan}", [R("442", "{outsider}", "{chan}")], ["PART"]),
    T("PART of a channel that does not exist is 403", REG, "me",
      "PART #none{n}", [R("403", "{me}", "#none{n}")], ["PART"]),
]

MESSAGES = [
    T("PRIVMSG without a recipient is 411", REG, "me", "PRIVMSG",
      [R("411", "{me}")]),
    T("PRIVMSG without text is 412", PEER, "me", "PRIVMSG {peer}",
      [R("412", "{me}")], unseen={"peer": [R("PRIVMSG")]}),
    T("PRIVMSG to an unknown nick is 401", REG, "me",
      "PRIVMSG nobody{n} :hi", [R("401", "{me}", "nobody{n}")]),
    T("PRIVMSG to an unknown channel is 403 or 401", REG, "me",
      "PRIVMSG #none{n} :hi", [R("403|401", "{me}", "#none{n}")]),
    T("PRIVMSG to a nick arrives", PEER, "me", "PRIVMSG {peer} :hello there",
      [], ["401"],
      see={"peer": [R("PRIVMSG", "{peer}", "hello there", src="{me}")]}),
    T("PRIVMSG to a nick in another case arrives", PEER, "me",
      "PRIVMSG {PEER} :hi", [], ["401"],
      see={"peer": [R("PRIVMSG", ANY, "hi", src="{me}")]}),
    T("NOTICE to an unknown nick is not answered", REG, "me",
      "NOTICE nobody{n} :hi", [], [r"\d{3}"]),
    T("PRIVMSG to a channel reaches the other members", CHAN, "member",
      "PRIVMSG {chan} :hi all", [], ["PRIVMSG", "404"],
      see={"op": [R("PRIVMSG", "{chan}", "hi all", src="{member}")],
           "watcher": [R("PRIVMSG", "{chan}", "hi all", src="{member}")]},
      unseen={"outsider": [R("PRIVMSG")]}),
    T("PRIVMSG to a +n channel from a non-member is 404", CHAN, "outsider",
      "PRIVMSG {chan} :let me in", [R("404", "{outsider}", "{chan}")],
      unseen={"op": [R("PRIVMSG")]}),
    Row("invalid UTF-8 to a channel is refused, not delivered", CHAN,
        Step("member", b"PRIVMSG {chan} :caf\xe9\r\n", [REFUSED], [CLOSED]),
        Step("member", "PRIVMSG {chan} :after", [],
             see={"watcher": [R("PRIVMSG", "{chan}", "after", src="{member}")]},
             unseen={"watcher": [R("PRIVMSG", "{chan}", Rx("caf.*"))],
                     "op": [R("PRIVMSG", "{chan}", Rx("caf.*"))]}),
        only=PERCORED_ONLY, why="ngircd relays the bytes as they are"),
    Row("a NUL byte in a line is refused, not delivered", CHAN,
        Step("member", b"PRIVMSG {chan} :a\x00b\r\n", [REFUSED], [CLOSED]),
        Step("member", "PRIVMSG {chan} :after", [],
             see={"watcher": [R("PRIVMSG", "{chan}", "after", src="{member}")]},
             unseen={"watcher": [R("PRIVMSG", "{chan}", Rx("a.*b|a"))],
                     "op": [R("PRIVMSG", "{chan}", Rx("a.*b|a"))]}),
        only=PERCORED_ONLY,
        why="ngircd stops answering the connection after a NUL"),
]

TOPIC = "the topic"

TOPICS = [
    T("TOPIC of a channel without one is 331", CHAN, "member", "TOPIC {chan}",
      [R("331", "{member}", "{chan}")], ["332"]),
    Row("TOPIC set by an op is seen by all, then 332 and 333", CHAN,
        Step("op", "TOPIC {chan} :" + TOPIC,
             [R("TOPIC", "{chan}", TOPIC, src="{op}")],
             see={"member": [R("TOPIC", "{chan}", TOPIC, src="{op}")],
                  "watcher": [R("TOPIC", "{chan}", TOPIC, src="{op}")]}),
        Step("member", "TOPIC {chan}",
             [R("332", "{member}", "{chan}", TOPIC),
              R("333", "{member}", "{chan}", Rx(r"{op}(!\S+)?"), Rx(r"\d+"))])),
    T("TOPIC by a non-op on a +t channel is 482", CHAN, "member",
      "TOPIC {chan} :mine", [R("482", "{member}", "{chan}")], ["TOPIC"],
      unseen={"op": [R("TOPIC")]}),
    T("TOPIC on a channel one is not in is 442", CHAN, "outsider",
      "TOPIC {chan} :mine", [R("442", "{outsider}", "{chan}")], ["TOPIC"]),
]

MODES = [
    T("MODE #c shows the modes, 324 and 329", CHAN, "member", "MODE {chan}",
      [R("324", "{member}", "{chan}", Rx(r"\+(?=\S*n)(?=\S*t)[a-zA-Z]*")),
       R("329", "{member}", "{chan}", Rx(r"\d+"))]),
    T("MODE #c +o by an op is seen by all", CHAN, "op",
      "MODE {chan} +o {member}", [R("MODE", "{chan}", "+o", "{member}", src="{op}")],
      see={"member": [R("MODE", "{chan}", "+o", "{member}", src="{op}")],
           "watcher": [R("MODE", "{chan}", "+o", "{member}", src="{op}")]}),
    T("MODE #c +o by a non-op is 482", CHAN, "member",
      "MODE {chan} +o {member}", [R("482", "{member}", "{chan}")], ["MODE"],
      unseen={"op": [R("MODE")]}),
    T("MODE #c +o of a non-member is 441", CHAN, "op",
      "MODE {chan} +o {outsider}", [R("441", "{op}", "{outsider}", "{chan}")],
      ["MODE"]),
    T("MODE #c +o of an unknown nick is 401 or 441", CHAN, "op",
      "MODE {chan} +o nobody{n}", [R("401|441", "{op}", "nobody{n}")],
      ["MODE"]),
    T("MODE #c +Z is 472", CHAN, "op", "MODE {chan} +Z",
      [R("472", "{op}", "Z")], ["MODE"]),
    T("MODE #c +b with no mask lists the bans: 368", CHAN, "member",
      "MODE {chan} +b", [R("368", "{member}", "{chan}")], ["367"]),
    Row("a ban is listed with 367, then 368", CHAN,
        Step("op", "MODE {chan} +b {outsider}!*@*",
             [R("MODE", "{chan}", "+b", "{outsider}!*@*", src="{op}")]),
        Step("member", "MODE {chan} +b",
             [R("367", "{member}", "{chan}", "{outsider}!*@*"),
              R("368", "{member}", "{chan}")])),
    Row("a banned user's JOIN is 474", CHAN,
        Step("op", "MODE {chan} +b {outsider}!*@*",
             [R("MODE", "{chan}", "+b", "{outsider}!*@*", src="{op}")]),
        Step("outsider", "JOIN {chan}", [R("474", "{outsider}", "{chan}")],
             ["JOIN"], unseen={"op": [R("JOIN")]})),
    Row("+i: JOIN is 473 until INVITE (341, INVITE to the target)", CHAN,
        Step("op", "MODE {chan} +i", [R("MODE", "{chan}", "+i", src="{op}")]),
        Step("outsider", "JOIN {chan}", [R("473", "{outsider}", "{chan}")],
             ["JOIN"]),
        Step("op", "INVITE {outsider} {chan}",
             [R("341", "{op}", "{outsider}", "{chan}")],
             see={"outsider": [R("INVITE", "{outsider}", "{chan}", src="{op}")]}),
        Step("outsider", "JOIN {chan}", [R("JOIN", "{chan}", src="{outsider}")],
             ["473"], see={"op": [R("JOIN", "{chan}", src="{outsider}")]})),
    Row("+k: JOIN without the key is 475, with it works", CHAN,
        Step("op", "MODE {chan} +k sesame",
             [R("MODE", "{chan}", "+k", "sesame", src="{op}")]),
        Step("outsider", "JOIN {chan}", [R("475", "{outsider}", "{chan}")],
             ["JOIN"]),
        Step("outsider", "JOIN {chan} wrong", [R("475", "{outsider}", "{chan}")],
             ["JOIN"]),
        Step("outsider", "JOIN {chan} sesame",
             [R("JOIN", "{chan}", src="{outsider}")], ["475"])),
    Row("+l 1: JOIN of a full channel is 471", CHAN,
        Step("op", "MODE {chan} +l 1",
             [R("MODE", "{chan}", "+l", "1", src="{op}")]),
        Step("outsider", "JOIN {chan}", [R("471", "{outsider}", "{chan}")],
             ["JOIN"])),
    Row("+m: an unvoiced member's PRIVMSG is 404; after +v it goes through",
        CHAN,
        Step("op", "MODE {chan} +m", [R("MODE", "{chan}", "+m", src="{op}")]),
        Step("member", "PRIVMSG {chan} :muted",
             [R("404", "{member}", "{chan}")]),
        Step("op", "MODE {chan} +v {member}",
             [R("MODE", "{chan}", "+v", "{member}", src="{op}")],
             [R("PRIVMSG", "{chan}", "muted")],
             see={"member": [R("MODE", "{chan}", "+v", "{member}")]}),
        Step("member", "PRIVMSG {chan} :voiced", [], ["404"],
             see={"op": [R("PRIVMSG", "{chan}", "voiced", src="{member}")]},
             unseen={"op": [R("PRIVMSG", "{chan}", "muted")],
                     "watcher": [R("PRIVMSG", "{chan}", "muted")]})),
    T("MODE on my own nick +i, then MODE nick is 221", REG, "me",
      ["MODE {me} +i", "MODE {me}"],
      [R("MODE", "{me}", Rx(r"\+i"), src="{me}"),
       R("221", "{me}", Rx(r"\+[a-zA-Z]*i[a-zA-Z]*"))]),
    T("MODE on another's nick is 502", PEER, "me", "MODE {peer}",
      [R("502", "{me}")]),
    T("MODE +i on another's nick is 502", PEER, "me", "MODE {peer} +i",
      [R("502", "{me}")], unseen={"peer": [R("MODE")]}),
]

OPERATORS = [
    T("KICK by a non-op is 482", CHAN, "member",
      "KICK {chan} {watcher} :out", [R("482", "{member}", "{chan}")],
      ["KICK"], unseen={"watcher": [R("KICK")]}),
    Row("KICK by an op is seen by all; the kicked one leaves NAMES", CHAN,
        Step("op", "KICK {chan} {member} :reason here",
             [R("KICK", "{chan}", "{member}", "reason here", src="{op}")],
             see={"member": [R("KICK", "{chan}", "{member}", "reason here",
                               src="{op}")],
                  "watcher": [R("KICK", "{chan}", "{member}", "reason here",
                                src="{op}")]}),
        Step("op", "NAMES {chan}",
             [R("353", "{op}", ANY, "{chan}", Words("@{op}", "{watcher}")),
              R("366", "{op}", "{chan}")]),
        Step("member", "PRIVMSG {chan} :still here?", [R("404|442", "{member}")],
             unseen={"op": [R("PRIVMSG")]})),
    T("KICK of a non-member is 441", CHAN, "op", "KICK {chan} {outsider}",
      [R("441", "{op}", "{outsider}", "{chan}")], ["KICK"]),
    T("INVITE by a non-member is 442", CHAN_STRANGER, "outsider",
      "INVITE {stranger} {chan}", [R("442", "{outsider}", "{chan}")],
      ["341"]),
    T("INVITE of a member is 443", CHAN, "op", "INVITE {member} {chan}",
      [R("443", "{op}", "{member}", "{chan}")], ["341"]),
]

QUERIES = [
    T("WHO #c is a 352 per member, then 315", CHAN, "member", "WHO {chan}",
      [Group(*[R("352", "{member}", "{chan}", ANY, ANY, "{server}", nick,
                 Rx(flags))
               for nick, flags in (("{op}", r"[HG]\S*@\S*"),
                                   ("{member}", r"[HG][^@]*"),
                                   ("{watcher}", r"[HG][^@]*"))]),
       R("315", "{member}", "{chan}")],
      [R("352", ANY, ANY, ANY, ANY, ANY, "{outsider}")]),
    T("WHOIS nick is 311, 312, 319 with @ for ops, 318", CHAN, "member",
      "WHOIS {op}",
      [R("311", "{member}", "{op}", Rx("~?u"), ANY, "*"),
       Group(R("312", "{member}", "{op}", "{server}"),
             R("319", "{member}", "{op}", Has("@{chan}"))),
       R("318", "{member}", "{op}")]),
    T("WHOIS of an unknown nick is 401, then 318", REG, "me",
      "WHOIS nobody{n}",
      [R("401", "{me}", "nobody{n}"), R("318", "{me}", "nobody{n}")]),
    Row("LIST is a 322 per channel with members and topic, then 323", CHAN,
        Step("op", "TOPIC {chan} :" + TOPIC, [R("TOPIC", "{chan}", TOPIC)]),
        Step("outsider", "LIST",
             [R("322", "{outsider}", "{chan}", "3", TOPIC),
              R("323", "{outsider}")])),
    Row("AWAY is 306, messages to the away get 301, AWAY again is 305", PEER,
        Step("me", "AWAY :gone", [R("306", "{me}")]),
        Step("peer", "PRIVMSG {me} :are you there?",
             [R("301", "{peer}", "{me}", "gone")],
             see={"me": [R("PRIVMSG", "{me}", "are you there?", src="{peer}")]}),
        Step("me", "AWAY", [R("305", "{me}")]),
        Step("peer", "PRIVMSG {me} :back?", [], ["301"],
             see={"me": [R("PRIVMSG", "{me}", "back?", src="{peer}")]})),
    T("ISON is 303 with the nicks online", PEER, "me",
      "ISON {peer} nobody{n} {me}", [R("303", "{me}", Words("{peer}", "{me}"))]),
    T("USERHOST is 302 nick=+user@host", PEER, "me", "USERHOST {peer}",
      [R("302", "{me}", Rx(r"{peer}\*?=[+-]\S+@\S+ ?"))]),
]

CAPS = [
    Row("multi-prefix shows @+ in NAMES; without it, only @", CHAN,
        Step("op", "CAP REQ :multi-prefix",
             [R("CAP", "{op}", "ACK", Rx(r"multi-prefix ?"))]),
        Step("op", "MODE {chan} +v {op}",
             [R("MODE", "{chan}", "+v", "{op}", src="{op}")]),
        Step("op", "NAMES {chan}",
             [R("353", "{op}", ANY, "{chan}", Has("@+{op}"))]),
        Step("member", "NAMES {chan}",
             [R("353", "{member}", ANY, "{chan}", Has("@{op}"))])),
    Row("echo-message: the sender gets its own PRIVMSG back", CHAN,
        Step("member", "CAP REQ :echo-message",
             [R("CAP", "{member}", "ACK", Rx(r"echo-message ?"))]),
        Step("member", "PRIVMSG {chan} :echoed",
             [R("PRIVMSG", "{chan}", "echoed", src="{member}")],
             see={"op": [R("PRIVMSG", "{chan}", "echoed", src="{member}")]}),
        only=PERCORED_ONLY, why="ngircd has no echo-message"),
    Row("server-time: messages carry @time", CHAN,
        Step("member", "CAP REQ :server-time",
             [R("CAP", "{member}", "ACK", Rx(r"server-time ?"))]),
        Step("op", "PRIVMSG {chan} :timed", [],
             see={"member": [R("PRIVMSG", "{chan}", "timed", src="{op}",
                               tags={"time": ISO_TIME})]}),
        only=PERCORED_ONLY, why="ngircd has no server-time"),
]

QUITS = [
    T("QUIT is ERROR to the quitter; the channel sees QUIT", CHAN, "member",
      "QUIT :bye", [R("ERROR"), CLOSED],
      see={"op": [R("QUIT", src="{member}")],
           "watcher": [R("QUIT", src="{member}")]},
      unseen={"outsider": [R("QUIT")]}),
    T("QUIT :bye is seen as 'Quit: bye' or 'bye'", CHAN, "member",
      "QUIT :bye", [CLOSED],
      see={"op": [R("QUIT", Rx("(Quit: )?bye"), src="{member}")]},
      only=PERCORED_ONLY, why='ngircd relays the reason as "bye", quoted'),
]

TABLE = (REGISTRATION + NICKS + COMMANDS + CHANNELS + MESSAGES + TOPICS +
         MODES + OPERATORS + QUERIES + CAPS + QUITS)

PASSWORDS = [
    T("the right PASS registers", UNREG, "me",
      [f"PASS {PASSWORD}", "NICK {me}", USER], welcome()),
    T("no PASS: ERROR, then the server closes", UNREG, "me",
      ["NICK {me}", USER], [R("ERROR"), CLOSED], ["001"]),
    T("a wrong PASS: ERROR, then the server closes", UNREG, "me",
      ["PASS wrong", "NICK {me}", USER], [R("ERROR"), CLOSED], ["001"]),
    T("no PASS is 464 before the ERROR", UNREG, "me",
      ["NICK {me}", USER], [R("464"), R("ERROR"), CLOSED], ["001"],
      only=PERCORED_ONLY, why="ngircd sends only the ERROR"),
    T("a wrong PASS is 464 before the ERROR", UNREG, "me",
      ["PASS wrong", "NICK {me}", USER], [R("464"), R("ERROR"), CLOSED],
      ["001"], only=PERCORED_ONLY, why="ngircd sends only the ERROR"),
]


# ------------------------------------------------------------------ checks

def check_isupport(world, client_lines, values):
    tokens = {}
    for m in client_lines:
        if m.command == "005":
            for t in m.params[1:-1]:
                k, _, v = t.partition("=")
                tokens[k] = v
    for k in ISUPPORT_TOKENS:
        if k not in tokens:
            world.fail(f"005 lacks {k}: has {sorted(tokens)}")
    if values:
        for k, v in ISUPPORT_VALUES.items():
            if isinstance(v, Rx):
                ok, want = v.test(tokens[k], {}), "/" + v.pattern + "/"
            else:
                ok, want = tokens[k] == v, v
            if not ok:
                world.fail(f"005 {k}={tokens[k]}, not {want}")


def run_row(test, port, n, row):
    if row.only and row.only != TARGET:
        test.skipTest(f"{row.only} only: {row.why}")
    w = World(port, n)
    try:
        row.setup(w)
        for step in row.steps:
            w.run(step)
        w.check_clean()
    finally:
        w.close()


def slug(title):
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:70]


def add_rows(cls, rows, start):
    for i, row in enumerate(rows):
        n = start + i

        def test(self, row=row, n=n):
            run_row(self, self.server.ports["irc"], n, row)
        test.__doc__ = row.title
        setattr(cls, f"test_{n:03d}_{slug(row.title)}", test)


class ServerCase(unittest.TestCase):
    server_kw = {}

    @classmethod
    def setUpClass(cls):
        cls.server = irc_server(**cls.server_kw)
        cls.server.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)


class Conformance(ServerCase):
    """The tables against one server."""
    server_kw = {"metrics": TARGET != "ngircd"}

    def test_zzz_the_rows_ran_on_every_worker(self):
        if TARGET == "ngircd":
            self.skipTest("one process")
        accepted = self.server.per_worker(
            "percore_worker_connections_accepted_total")
        self.assertEqual(len(accepted), WORKERS, accepted)
        self.assertTrue(all(v > 0 for v in accepted.values()), accepted)


add_rows(Conformance, TABLE, 1)


class Password(ServerCase):
    """A server with `irc.password`."""
    server_kw = {"password": PASSWORD}


add_rows(Password, PASSWORDS, 500)


class Timeouts(ServerCase):
    """Registration timeout and the server's PING: an unregistered
    connection, a registered one that never answers PING, one that does,
    watched side by side."""
    server_kw = {"timeouts": True}

    def test_unregistered_and_silent_clients_are_closed(self):
        # percored: 1 s each; ngircd checks every ~5 s (PING after ~6 s,
        # close ~6 s later)
        window = (20 if TARGET == "ngircd" else 5) * SLOW
        w = World(self.server.ports["irc"], 900)
        try:
            unreg = w.connect("unreg")
            half = w.connect("half")  # NICK only
            half.send("NICK half900")
            silent = w.register("silent", "silent900")
            silent.answer_pings = False
            alive = w.register("alive", "alive900")  # answers PINGs
            got = {c: [] for c in (unreg, half, silent, alive)}
            start, closed_at = time.time(), {}
            watch = (14 if TARGET == "ngircd" else 3) * SLOW  # at least
            while time.time() - start < window and (
                    len(closed_at) < 3 or time.time() - start < watch):
                for c in got:
                    m = c.read(0.05)
                    if m is not None:
                        got[c].append(m)
                        if m is CLOSED_MSG:
                            closed_at[c.label] = time.time() - start
            for c in (unreg, half, silent):
                if c.label not in closed_at:
                    w.fail(f"{c.label} still open after {window} s")
                if TARGET != "ngircd":  # ngircd closes them silently
                    if not any(m.command == "ERROR" for m in got[c]):
                        w.fail(f"{c.label} closed without ERROR")
            self.assertTrue(any(m.command == "PING" for m in got[silent]),
                            "no PING before the close\n" + w.transcript())
            self.assertTrue(any(m.command == "ERROR" for m in got[silent]),
                            "no ERROR before the close\n" + w.transcript())
            # the one that answers stays, past both timeouts
            self.assertTrue(any(m.command == "PING" for m in got[alive]),
                            "the live client never got a PING\n" + w.transcript())
            self.assertFalse(alive.closed, w.transcript())
            w.collect(alive, [])  # and still answers
            w.check_clean()
        finally:
            w.close()


if __name__ == "__main__":
    unittest.main()

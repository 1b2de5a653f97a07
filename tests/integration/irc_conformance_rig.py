"""The rig of test_irc_conformance: the server under test (percored, or
Debian's ngircd with IRC_SERVER=ngircd), raw clients, and the matchers a
row's expected replies are written with (R, Rx, Words, Has, Group)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

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

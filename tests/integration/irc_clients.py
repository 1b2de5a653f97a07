"""Real IRC clients from Debian driven against a real IRC server, for the
end-to-end tests of the `irc` face (test_irc_clients.py).

- `Ngircd`: Debian's ngircd on a free loopback port, as a reference server
  the tests are proven against.
- `Client`, what every IRC client driver shares; the drivers are
  irc_client_ii.py (`Ii`, suckless ii: FIFOs in, files out) and
  irc_client_tui.py (`Irssi` under tmux: typed with send-keys, read from
  the screen and from irssi's own logs; `Weechat`, weechat-headless:
  commands through its fifo plugin, read from its logger plugin's files).
  Each: connect, wait registered, join, say, act (/me), nick, part, kick,
  quit, and waits on its own transcript.
- `Chat`: a client of the line chat face, to talk with them.

Every process is started here and ended by its PID; tmux runs on a private
socket; every client gets a temporary home. Every wait is bounded (scaled by
SLOW) and a timeout shows the transcript it was reading."""

import atexit
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from percored import SLOW, free_port

NGIRCD = os.environ.get("NGIRCD", "/usr/sbin/ngircd")
TMUX = shutil.which("tmux") or "/usr/bin/tmux"


def missing_programs():
    """The client and server programs this machine lacks (names)."""
    wanted = {"ngircd": NGIRCD, "ii": "ii", "irssi": "irssi",
              "weechat-headless": "weechat-headless", "tmux": TMUX}
    return [name for name, prog in wanted.items()
            if not (shutil.which(prog) or os.access(prog, os.X_OK))]


def die_with_parent():
    """preexec_fn: the child gets SIGTERM if the test process dies (killed
    by a ctest timeout, say) before it could end the child itself."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn(args, out, **kw):
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                            preexec_fn=die_with_parent, **kw)


# tmux servers daemonize (no parent death signal reaches them): ended at
# exit if a test run is interrupted before its cleanups, and so are the
# temporary directories.
live_tmux = set()
_live_dirs = set()


def temp_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _live_dirs.add(d)
    return d


def remove_dir(d):
    shutil.rmtree(d, ignore_errors=True)
    _live_dirs.discard(d)


@atexit.register
def _end_leftovers():
    for t in list(live_tmux):
        t.close()
    for d in list(_live_dirs):
        remove_dir(d)


def stop_process(proc, sig=signal.SIGTERM, timeout=5):
    """Ends a process we started, by its PID: `sig`, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout * SLOW)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    except ProcessLookupError:
        pass


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def poll(get, pattern, timeout, what):
    """Polls get() until `pattern` (a regex, MULTILINE) matches it; returns the
    match. On timeout fails with what it last read."""
    rx = re.compile(pattern, re.MULTILINE)
    deadline = time.time() + timeout * SLOW
    pause = 0.02
    while True:
        text = get()
        m = rx.search(text)
        if m:
            return m
        if time.time() >= deadline:
            tail = text[-4000:]
            raise AssertionError(
                f"timed out after {timeout * SLOW}s waiting for {what}: "
                f"/{pattern}/ in:\n{tail}")
        time.sleep(pause)
        pause = min(0.1, pause * 1.5)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Ngircd:
    """Debian's ngircd, foreground (-n), on a free 127.0.0.1 port, with a
    temporary configuration: no connection limits, no flood penalties, pings
    far apart. Run as root it drops to `nobody` by itself (ServerUID must not
    be root) and does not chroot (no ChrootDir); run as a user it stays."""

    name = "ngircd"

    def __init__(self, server_name="irc.test"):
        self.server_name = server_name
        self.dir = temp_dir("ngircd-")
        self.port = free_port()
        self.conf = os.path.join(self.dir, "ngircd.conf")
        include = os.path.join(self.dir, "conf.d")
        os.mkdir(include)
        with open(self.conf, "w") as f:
            f.write(f"""\
[Global]
Name = {server_name}
Info = percore tests reference server
AdminInfo1 = percore tests
AdminInfo2 = loopback
AdminEMail = nobody@localhost
Listen = 127.0.0.1
Ports = {self.port}
MotdPhrase = reference server for percore's irc tests
PidFile =
HelpFile =
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 31
MaxPenaltyTime = 0
MaxListSize = 1000
IdleTimeout = 0
PingTimeout = 600
PongTimeout = 600
ConnectRetry = 60
[Options]
IncludeDir = {include}
PAM = no
Ident = no
DNS = no
ChrootDir =
MorePrivacy = no
RequireAuthPing = no
ScrubCTCP = no
NoticeBeforeRegistration = no
""")
        self.log = tempfile.TemporaryFile("w+")
        self.proc = None

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        stop_process(self.proc)
        self.log.close()
        remove_dir(self.dir)

    def start(self):
        self.proc = spawn([NGIRCD, "-n", "-f", self.conf], self.log)
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ngircd exited at start:\n" + self.output())
            if "ready." in self.output() and port_open(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError("ngircd did not start:\n" + self.output())

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


class Client:
    """What every driver offers. `nick` is the nick the client asked for and,
    after change_nick(), the one it changed to. Subclasses read their own
    transcripts: channel_log(chan) is the client's view of a channel,
    server_log() its view of the server (status) buffer."""

    kind = "client"

    def __init__(self, nick, port, host="127.0.0.1"):
        self.nick = nick
        self.port = port
        self.host = host
        self.home = temp_dir(f"{self.kind}-{nick}-")

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        remove_dir(self.home)

    def __repr__(self):
        return f"{self.kind}({self.nick})"

    # The transcripts.
    def channel_log(self, chan):
        raise NotImplementedError

    def server_log(self):
        raise NotImplementedError

    def wait_channel(self, chan, pattern, timeout=10, what=None, since=0):
        """`since`: look only past that many characters of the transcript
        (its length before the step whose effect is awaited)."""
        return poll(lambda: self.channel_log(chan)[since:], pattern, timeout,
                    what or f"{self!r} in {chan}")

    def wait_server(self, pattern, timeout=10, what=None, since=0):
        return poll(lambda: self.server_log()[since:], pattern, timeout,
                    what or f"{self!r} on the server buffer")

    # Seeing. A driver's SEES maps each kind of event to where its client
    # shows it ("channel" or "server") and a regex template: {nick},
    # {chan}, {text}, {old}, {new}, {by}, {reason} are filled in escaped,
    # {pattern} (NAMES) and {quit} (quit_reason) as regexes, {T} with the
    # driver's line prefix and {MODE} with a nick's mode prefix.
    SEES = {}
    T = ""
    SAYS = {  # what a wait that timed out was waiting for
        "joined": "sees {nick} join {chan}",
        "names": "sees NAMES {chan} with /{pattern}/",
        "said": "sees {nick} say {text!r} in {chan}",
        "action": "sees {nick}'s action {text!r}",
        "renamed": "sees {old} become {new}",
        "renamed_me": "sees {old} become {new}",
        "kicked": "sees {by} kick {nick}",
        "parted": "sees {nick} part {chan}",
        "quit": "sees {nick} quit",
    }

    def see(self, event, chan, kw, **fields):
        where, template = self.SEES[event]
        values = {k: v if k in ("pattern", "quit") else esc(v)
                  for k, v in fields.items()}
        rx = template.format(T=self.T, MODE=MODE, chan=esc(chan), **values)
        what = f"{self!r} " + self.SAYS[event].format(chan=chan, **fields)
        if where == "server":
            return self.wait_server(rx, what=what, **kw)
        return self.wait_channel(chan, rx, what=what, **kw)

    def wait_joined(self, chan, nick, **kw):
        return self.see("joined", chan, kw, nick=nick)

    def wait_names(self, chan, pattern, **kw):
        return self.see("names", chan, kw, pattern=pattern)

    def wait_said(self, chan, nick, text, **kw):
        return self.see("said", chan, kw, nick=nick, text=text)

    def wait_action(self, chan, nick, text, **kw):
        return self.see("action", chan, kw, nick=nick, text=text)

    def wait_nick_changed(self, chan, old, new, **kw):
        own = old == self.nick or new == self.nick
        return self.see("renamed_me" if own else "renamed", chan, kw,
                        old=old, new=new)

    def wait_kicked(self, chan, nick, by, reason, **kw):
        return self.see("kicked", chan, kw, nick=nick, by=by, reason=reason)

    def wait_parted(self, chan, nick, reason, **kw):
        return self.see("parted", chan, kw, nick=nick, reason=reason)

    def wait_quit(self, chan, nick, reason, **kw):
        return self.see("quit", chan, kw, nick=nick, quit=quit_reason(reason))

    def wait_registered(self, timeout=15):
        """The server's 001 (RPL_WELCOME) text, as the client shows it."""
        return self.wait_server(self.WELCOME, timeout,
                                f"{self!r} registered (001 welcome)")


def esc(text):
    return re.escape(text)


def quit_reason(reason):
    """A QUIT's reason as servers relay it: as given, or decorated the two
    usual ways (ngircd quotes it, ircu-style servers prefix `Quit: `)."""
    return rf'(?:"{esc(reason)}"|(?:Quit: )?{esc(reason)})'


# A nick as clients show it in a channel: with the channel-mode prefix some
# clients put in front (irssi `<@op>`, `< user>`; weechat `@op`).
MODE = r"[~&@%+ ]?"


class Chat:
    """A client of percored's line `chat` protocol over a raw socket. Every
    line received is kept in `lines`; waits read the socket as they go."""

    kind = "chat"

    def __init__(self, port, nick=None, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=10 * SLOW)
        self.sock.setblocking(False)
        self.buf = b""
        self.lines = []
        m = self.wait(r"\*\*\* welcome to percore chat, (\S+);.*",
                      what="the chat greeting")
        self.nick = m.group(1)
        if nick:
            self.command(f"/nick {nick}", rf"OK nick {esc(nick)}")
            self.nick = nick

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"chat({self.nick})"

    def close(self):
        self.sock.close()

    def read(self):
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            if not chunk:
                break
            self.buf += chunk
        *done, self.buf = self.buf.split(b"\n")
        self.lines += [line.decode("utf-8", "replace") for line in done]
        return "\n".join(self.lines)

    def wait(self, pattern, timeout=10, what=None):
        """A whole line matching `pattern` (fullmatch)."""
        return poll(self.read, rf"^(?:{pattern})$", timeout,
                    what or f"{self!r} line /{pattern}/")

    def send(self, line):
        self.sock.setblocking(True)
        try:
            self.sock.sendall((line + "\n").encode())
        finally:
            self.sock.setblocking(False)

    def command(self, line, answer):
        start = len(self.lines)
        self.send(line)
        deadline = time.time() + 10 * SLOW
        rx = re.compile(answer)
        while True:
            self.read()
            for got in self.lines[start:]:
                if rx.fullmatch(got):
                    return got
                if got.startswith("ERR "):
                    raise AssertionError(f"{self!r}: {line!r} got {got!r}")
            if time.time() >= deadline:
                raise AssertionError(f"{self!r}: {line!r} got no /{answer}/:"
                                     "\n" + "\n".join(self.lines[start:]))
            time.sleep(0.02)

    def join(self, room):
        self.command(f"/join {room}", rf"OK join {esc(room)}")

    def dump(self):
        self.read()
        return f"--- {self!r}\n" + "\n".join(self.lines)

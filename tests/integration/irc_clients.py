"""Real IRC clients from Debian driven against a real IRC server, for the
end-to-end tests of the `irc` face (test_irc_clients.py).

- `Ngircd`: Debian's ngircd on a free loopback port, as a reference server
  the tests are proven against.
- `Ii` (suckless ii: FIFOs in, files out), `Irssi` (under tmux: typed with
  send-keys, read from the screen and from irssi's own logs) and `Weechat`
  (weechat-headless: commands through its fifo plugin, read from its logger
  plugin's files). Each: connect, wait registered, join, say, act (/me),
  nick, part, kick, quit, and waits on its own transcript.

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
_live_tmux = set()
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
    for t in list(_live_tmux):
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


class Ii(Client):
    """suckless ii 1.8: `ii -s 127.0.0.1 -p PORT -n NICK -i DIR`. Input is
    written to the `in` FIFOs, the transcript is the `out` files: the
    server's in DIR/127.0.0.1/out, each channel's in DIR/127.0.0.1/#chan/out
    (ii lowercases the directory name). ii knows no CTCP: an action shows as
    the raw `\\x01ACTION text\\x01`, and it has no /me (one sends the raw
    PRIVMSG, as ii users do)."""

    kind = "ii"
    WELCOME = r"^\d+ .*\bWelcome\b"

    def start(self):
        self.log = open(os.path.join(self.home, "ii.stderr"), "w")
        self.proc = spawn(
            ["ii", "-s", self.host, "-p", str(self.port), "-n", self.nick,
             "-f", f"{self.nick} (ii)", "-i", self.home], self.log)
        self.dir = os.path.join(self.home, self.host)

    def close(self):
        stop_process(getattr(self, "proc", None))
        if getattr(self, "log", None):
            self.log.close()
        super().close()

    def chan_dir(self, chan):
        return os.path.join(self.dir, chan.lower())

    def write(self, fifo, line, timeout=10):
        """One line into one of ii's FIFOs, waiting for ii to have it open."""
        data = (line + "\n").encode()
        deadline = time.time() + timeout * SLOW
        while True:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:  # not there yet (ENOENT) or no reader (ENXIO)
                if time.time() >= deadline or self.proc.poll() is not None:
                    raise AssertionError(
                        f"{self!r}: cannot write {line!r} to {fifo}; "
                        f"ii exited {self.proc.poll()}:\n{self.server_log()}")
                time.sleep(0.05)
        try:
            os.set_blocking(fd, True)
            os.write(fd, data)
        finally:
            os.close(fd)

    def command(self, line):
        self.write(os.path.join(self.dir, "in"), line)

    def channel_log(self, chan):
        return read_text(os.path.join(self.chan_dir(chan), "out"))

    def server_log(self):
        return read_text(os.path.join(self.dir, "out"))

    def dump(self):
        out = []
        for root, _, files in os.walk(self.dir):
            if "out" in files:
                out.append(f"--- {root}/out\n" + read_text(
                    os.path.join(root, "out")))
        return "\n".join(out)

    # Doing.
    def join(self, chan):
        self.command(f"/j {chan}")

    def say(self, chan, text):
        self.write(os.path.join(self.chan_dir(chan), "in"), text)

    def act(self, chan, text):
        self.command(f"/PRIVMSG {chan} :\x01ACTION {text}\x01")

    def change_nick(self, new):
        self.command(f"/n {new}")
        self.nick = new

    def part(self, chan, reason):
        self.write(os.path.join(self.chan_dir(chan), "in"), f"/l {reason}")

    def kick(self, chan, nick, reason):
        self.command(f"/KICK {chan} {nick} :{reason}")

    def quit(self, reason):
        self.command(f"/q {reason}")

    # Seeing (ii's formats: `EPOCH <nick> text`, `EPOCH -!- ...`).
    def wait_joined(self, chan, nick, **kw):
        return self.wait_channel(
            chan, rf"^\d+ -!- {esc(nick)}\(.*\) has joined (?i:{esc(chan)})$",
            what=f"{self!r} sees {nick} join {chan}", **kw)

    def wait_names(self, chan, pattern, **kw):
        """The NAMES reply (353) goes to ii's server out: `= #chan nicks`."""
        return self.wait_server(
            rf"^\d+ [=*@] (?i:{esc(chan)}) (.*{pattern}.*)$",
            what=f"{self!r} sees NAMES {chan} with /{pattern}/", **kw)

    def wait_said(self, chan, nick, text, **kw):
        return self.wait_channel(
            chan, rf"^\d+ <{esc(nick)}> {esc(text)}$",
            what=f"{self!r} sees {nick} say {text!r} in {chan}", **kw)

    def wait_action(self, chan, nick, text, **kw):
        return self.wait_channel(
            chan, rf"^\d+ <{esc(nick)}> \x01ACTION {esc(text)}\x01$",
            what=f"{self!r} sees {nick}'s action {text!r}", **kw)

    def wait_nick_changed(self, chan, old, new, **kw):
        # ii writes every NICK, its own and others', to the server's out.
        if old == self.nick or new == self.nick:
            rx = rf'^\d+ -!- changed nick to "{esc(new)}"$'
        else:
            rx = rf"^\d+ -!- {esc(old)} changed nick to {esc(new)}$"
        return self.wait_server(rx, what=f"{self!r} sees {old} become {new}",
                                **kw)

    def wait_kicked(self, chan, nick, by, reason, **kw):
        return self.wait_channel(
            chan, # ii shows the KICK's middle parameters with their spaces.
            rf'^\d+ -!- {esc(by)} kicked {esc(nick)} +\("{esc(reason)}"\)$',
            what=f"{self!r} sees {by} kick {nick}", **kw)

    def wait_parted(self, chan, nick, reason, **kw):
        # ii does not show a part's reason.
        return self.wait_channel(
            chan, rf"^\d+ -!- {esc(nick)}\(.*\) has left (?i:{esc(chan)})$",
            what=f"{self!r} sees {nick} part {chan}", **kw)

    def wait_quit(self, chan, nick, reason, **kw):
        return self.wait_channel(
            chan, rf'^\d+ -!- {esc(nick)}\(.*\) has quit "{quit_reason(reason)}"$',
            what=f"{self!r} sees {nick} quit", **kw)


class Tmux:
    """A tmux server of our own: private socket (-L) in a private
    TMUX_TMPDIR, no user configuration, one session running `command`."""

    def __init__(self, home, name, command, width=200, height=50):
        self.env = dict(os.environ, TMUX_TMPDIR=home, TERM="xterm-256color",
                        LANG="C.UTF-8", LC_ALL="C.UTF-8", HOME=home)
        self.env.pop("TMUX", None)
        self.base = [TMUX, "-L", name, "-f", "/dev/null"]
        self.target = name
        self.server_pid = self.pane_pid = None
        self.run("new-session", "-d", "-x", str(width), "-y", str(height),
                 "-s", name, command)
        _live_tmux.add(self)
        pids = self.run("display-message", "-p", "-t", name,
                        "#{pid} #{pane_pid}").split()
        self.server_pid, self.pane_pid = int(pids[0]), int(pids[1])

    def run(self, *args):
        r = subprocess.run(self.base + list(args), env=self.env,
                           capture_output=True, text=True, timeout=10 * SLOW)
        if r.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def type(self, text):
        """Types `text` literally, then Enter."""
        self.run("send-keys", "-t", self.target, "-l", text)
        self.run("send-keys", "-t", self.target, "Enter")

    def keys(self, *keys):
        self.run("send-keys", "-t", self.target, *keys)

    def screen(self):
        """What the pane shows now (wrapped lines joined)."""
        try:
            return self.run("capture-pane", "-p", "-J", "-t", self.target)
        except (RuntimeError, subprocess.TimeoutExpired):
            return ""

    def pane_alive(self):
        return pid_alive(self.pane_pid)

    def close(self):
        """Ends the pane's program, then the tmux server, by their PIDs."""
        for pid in (self.pane_pid, self.server_pid):
            if pid:
                end_pid(pid)
        _live_tmux.discard(self)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def end_pid(pid, timeout=5):
    """SIGTERM a process that is not our child (tmux's), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not pid_alive(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline and pid_alive(pid):
            time.sleep(0.02)


class Irssi(Client):
    """irssi 1.4 in tmux, typed to with send-keys. Its own logs are the
    transcript: autolog (one file per channel, logs/#chan.log, lowercased)
    and one log of every level of every window (all.log) for the server's
    messages; the screen is there too (wait_screen)."""

    kind = "irssi"
    WELCOME = r"^\d\d:\d\d -!- .*\bWelcome\b"

    def start(self):
        logs = os.path.join(self.home, "logs")
        os.mkdir(logs)
        self.all_log = os.path.join(self.home, "all.log")
        with open(os.path.join(self.home, "config"), "w") as f:
            f.write(f"""\
servers = {self.servers_config()};
chatnets = {{ }};
channels = ( );
aliases = {{ }};
settings = {{
  core = {{
    real_name = "{self.nick} (irssi)"; user_name = "{self.nick[:9]}";
    nick = "{self.nick}"; settings_autosave = "no";
  }};
  "irc/core" = {{ cmd_queue_speed = "0msec"; cmds_max_at_once = "1000"; }};
  "fe-common/core" = {{
    autolog = "yes"; autolog_path = "{logs}/$0.log"; autolog_level = "all";
    beep_msg_level = ""; window_auto_change = "no";
  }};
  "fe-text" = {{ paste_detect_time = "0"; }};
}};
logs = {{ "{self.all_log}" = {{ auto_open = "yes"; level = "all"; }}; }};
""")
        self.tmux = Tmux(
            self.home, f"irssi-{os.getpid()}-{os.path.basename(self.home)}",
            f"exec irssi --home={self.home} -n {self.nick} "
            f"-c {self.host} -p {self.port}")

    def servers_config(self):
        """irssi's `servers` setting: none by default; a subclass may
        describe 127.0.0.1:port there (TLS, say), which `-c ... -p ...`
        then uses."""
        return "( )"

    def close(self):
        if getattr(self, "tmux", None):
            self.tmux.close()
        super().close()

    def channel_log(self, chan):
        return read_text(os.path.join(self.home, "logs", chan.lower() + ".log"))

    def server_log(self):
        return read_text(self.all_log)

    def screen(self):
        return self.tmux.screen()

    def wait_screen(self, pattern, timeout=10, what=None):
        return poll(self.screen, pattern, timeout,
                    what or f"{self!r}'s screen")

    def dump(self):
        return f"--- {self!r} all.log\n{self.server_log()}\n" \
               f"--- {self!r} screen\n{self.screen()}"

    # Doing: typed as a user types.
    def type(self, text):
        self.tmux.type(text)

    def join(self, chan):
        self.type(f"/join {chan}")

    def say(self, chan, text):
        self.type(f"/window goto {chan}")
        self.type(text)

    def act(self, chan, text):
        self.type(f"/window goto {chan}")
        self.type(f"/me {text}")

    # irssi's keys for mIRC formatting: bold, color, underline, reverse,
    # italic and reset are typed as Ctrl-B, -C, -_, -V, -] and -O.
    FORMAT_KEYS = {"\x02": "C-b", "\x03": "C-c", "\x1f": "C-_",
                   "\x16": "C-v", "\x1d": "C-]", "\x0f": "C-o"}

    def say_typed(self, chan, text):
        """Says `text` typing its mIRC codes as an irssi user does."""
        self.type(f"/window goto {chan}")
        for part in re.split("([\x02\x03\x1f\x16\x1d\x0f])", text):
            if part in self.FORMAT_KEYS:
                self.tmux.keys(self.FORMAT_KEYS[part])
            elif part:
                self.tmux.keys("-l", part)
        self.tmux.keys("Enter")

    def change_nick(self, new):
        self.type(f"/nick {new}")
        self.nick = new

    def part(self, chan, reason):
        self.type(f"/part {chan} {reason}")

    def kick(self, chan, nick, reason):
        self.type(f"/window goto {chan}")
        self.type(f"/kick {nick} {reason}")

    def quit(self, reason):
        self.type(f"/quit {reason}")

    # Seeing (irssi's default theme: `HH:MM <@nick> text`, `-!- ...`).
    def wait_joined(self, chan, nick, **kw):
        return self.wait_channel(
            chan, rf"^\d\d:\d\d -!- {esc(nick)} \[.*\] has joined (?i:{esc(chan)})$",
            what=f"{self!r} sees {nick} join {chan}", **kw)

    def wait_names(self, chan, pattern, **kw):
        """irssi prints NAMES in the channel window: `[Users #c]`, then the
        nicks as `[@op] [ user]`."""
        return self.wait_channel(
            chan, rf"^\d\d:\d\d \[Users (?i:{esc(chan)})\]\n\d\d:\d\d (.*{pattern}.*)$",
            what=f"{self!r} sees NAMES {chan} with /{pattern}/", **kw)

    def wait_said(self, chan, nick, text, **kw):
        return self.wait_channel(
            chan, rf"^\d\d:\d\d <{MODE}{esc(nick)}> {esc(text)}$",
            what=f"{self!r} sees {nick} say {text!r} in {chan}", **kw)

    def wait_action(self, chan, nick, text, **kw):
        return self.wait_channel(
            chan, rf"^\d\d:\d\d  \* {esc(nick)} {esc(text)}$",
            what=f"{self!r} sees {nick}'s action {text!r}", **kw)

    def wait_nick_changed(self, chan, old, new, **kw):
        if old == self.nick or new == self.nick:
            rx = rf"^\d\d:\d\d -!- You're now known as {esc(new)}$"
        else:
            rx = rf"^\d\d:\d\d -!- {esc(old)} is now known as {esc(new)}$"
        return self.wait_channel(chan, rx, what=f"{self!r} sees {old} become {new}",
                                 **kw)

    def wait_kicked(self, chan, nick, by, reason, **kw):
        # Its own kick too is logged as `NICK was kicked`.
        rx = (rf"^\d\d:\d\d -!- {esc(nick)} was kicked from (?i:{esc(chan)}) "
              rf"by {esc(by)} \[{esc(reason)}\]$")
        return self.wait_channel(chan, rx, what=f"{self!r} sees {by} kick {nick}",
                                 **kw)

    def wait_parted(self, chan, nick, reason, **kw):
        return self.wait_channel(
            chan, rf"^\d\d:\d\d -!- {esc(nick)} \[.*\] has left (?i:{esc(chan)}) "
                  rf"\[{esc(reason)}\]$",
            what=f"{self!r} sees {nick} part {chan}", **kw)

    def wait_quit(self, chan, nick, reason, **kw):
        return self.wait_channel(
            chan, rf"^\d\d:\d\d -!- {esc(nick)} \[.*\] has quit "
                  rf"\[{quit_reason(reason)}\]$",
            what=f"{self!r} sees {nick} quit", **kw)


class Weechat(Client):
    """weechat-headless 3.8 (this Debian has no curses weechat): WeeChat's
    own irc plugin, no screen. Commands go in through its fifo plugin, as
    they would be typed in a buffer (`irc.t.#chan *text`); the transcript is
    its logger plugin's files, flushed at once (logs/irc.t.#chan.weechatlog,
    logs/irc.server.t.weechatlog). Only the irc, logger and fifo plugins
    load."""

    kind = "weechat"
    WELCOME = r"^[-\d]+ [:\d]+\t--\t.*\bWelcome\b"
    SERVER = "t"

    def start(self):
        self.fifo = os.path.join(self.home, "fifo")
        self.logs = os.path.join(self.home, "logs")
        s = self.SERVER
        setup = [
            "/set logger.file.flush_delay 0",
            f"/set logger.file.path {self.logs}",
            f"/set fifo.file.path {self.fifo}",
            "/set fifo.file.enabled on",
            # Show NAMES (353) on join, like the other clients.
            "/set irc.look.display_join_message 329,332,333,353,366",
            f"/server add {s} {self.host}/{self.port} -notls "
            f"-nicks={self.nick} -username={self.nick[:9]} "
            f'-realname="{self.nick} (weechat)"',
            f"/set irc.server.{s}.anti_flood_prio_high 0",
            f"/set irc.server.{s}.anti_flood_prio_low 0",
            f"/set irc.server.{s}.autoreconnect off",
            f"/connect {s}",
        ]
        self.out = open(os.path.join(self.home, "stdout"), "w")
        self.proc = spawn(
            ["weechat-headless", "--dir", self.home, "-P", "irc,logger,fifo",
             "-s", "--stdout", "-r", ";".join(setup)], self.out,
            env=dict(os.environ, HOME=self.home))

    def close(self):
        stop_process(getattr(self, "proc", None))
        if getattr(self, "out", None):
            self.out.close()
        super().close()

    def buffer(self, chan=None):
        return f"irc.{self.SERVER}.{chan}" if chan else f"irc.server.{self.SERVER}"

    def send(self, buffer, text, timeout=10):
        """`text` as typed into `buffer`, through the fifo."""
        data = f"{buffer} *{text}\n".encode()
        deadline = time.time() + timeout * SLOW
        while True:
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if time.time() >= deadline or self.proc.poll() is not None:
                    raise AssertionError(
                        f"{self!r}: no fifo for {text!r}; weechat exited "
                        f"{self.proc.poll()}:\n{self.server_log()}")
                time.sleep(0.05)
        try:
            os.set_blocking(fd, True)
            os.write(fd, data)
        finally:
            os.close(fd)

    def channel_log(self, chan):
        return read_text(os.path.join(
            self.logs, f"{self.buffer(chan).lower()}.weechatlog"))

    def server_log(self):
        return read_text(os.path.join(self.logs, f"{self.buffer()}.weechatlog"))

    def dump(self):
        out = []
        for name in sorted(os.listdir(self.logs)) if os.path.isdir(self.logs) else []:
            out.append(f"--- {self!r} {name}\n" + read_text(
                os.path.join(self.logs, name)))
        return "\n".join(out)

    # Doing.
    def join(self, chan):
        self.send(self.buffer(), f"/join {chan}")

    def say(self, chan, text):
        self.send(self.buffer(chan), text)

    def act(self, chan, text):
        self.send(self.buffer(chan), f"/me {text}")

    def change_nick(self, new):
        self.send(self.buffer(), f"/nick {new}")
        self.nick = new

    def part(self, chan, reason):
        self.send(self.buffer(chan), f"/part {reason}")

    def kick(self, chan, nick, reason):
        self.send(self.buffer(chan), f"/kick {nick} {reason}")

    def quit(self, reason):
        self.send(self.buffer(), f"/quit {reason}")

    # Seeing (logger lines: `DATE TIME<tab>PREFIX<tab>MESSAGE`).
    T = r"^[-\d]+ [:\d]+\t"

    def wait_joined(self, chan, nick, **kw):
        return self.wait_channel(
            chan, rf"{self.T}-->\t{esc(nick)} \(.*\) has joined (?i:{esc(chan)})$",
            what=f"{self!r} sees {nick} join {chan}", **kw)

    def wait_names(self, chan, pattern, **kw):
        return self.wait_channel(
            chan, rf"{self.T}--\tNicks (?i:{esc(chan)}): \[(.*{pattern}.*)\]$",
            what=f"{self!r} sees NAMES {chan} with /{pattern}/", **kw)

    def wait_said(self, chan, nick, text, **kw):
        return self.wait_channel(
            chan, rf"{self.T}{MODE}{esc(nick)}\t{esc(text)}$",
            what=f"{self!r} sees {nick} say {text!r} in {chan}", **kw)

    def wait_action(self, chan, nick, text, **kw):
        return self.wait_channel(
            chan, rf"{self.T} \*\t{esc(nick)} {esc(text)}$",
            what=f"{self!r} sees {nick}'s action {text!r}", **kw)

    def wait_nick_changed(self, chan, old, new, **kw):
        if old == self.nick or new == self.nick:
            rx = rf"{self.T}--\tYou are now known as {esc(new)}$"
        else:
            rx = rf"{self.T}--\t{esc(old)} is now known as {esc(new)}$"
        return self.wait_channel(chan, rx, what=f"{self!r} sees {old} become {new}",
                                 **kw)

    def wait_kicked(self, chan, nick, by, reason, **kw):
        return self.wait_channel(
            chan, rf"{self.T}<--\t{esc(by)} has kicked {esc(nick)} \({esc(reason)}\)$",
            what=f"{self!r} sees {by} kick {nick}", **kw)

    def wait_parted(self, chan, nick, reason, **kw):
        return self.wait_channel(
            chan, rf"{self.T}<--\t{esc(nick)} \(.*\) has left (?i:{esc(chan)}) "
                  rf"\({esc(reason)}\)$",
            what=f"{self!r} sees {nick} part {chan}", **kw)

    def wait_quit(self, chan, nick, reason, **kw):
        return self.wait_channel(
            chan, rf"{self.T}<--\t{esc(nick)} \(.*\) has quit "
                  rf"\({quit_reason(reason)}\)$",
            what=f"{self!r} sees {nick} quit", **kw)


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

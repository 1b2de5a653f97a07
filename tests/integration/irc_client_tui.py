"""irssi (under tmux) and weechat-headless driven against an IRC server
(irc_clients.Client): every process started here and ended by its PID,
tmux on a private socket, every client in a temporary home."""

import os
import re
import signal
import subprocess
import time

from irc_clients import TMUX, Client, live_tmux, poll, read_text, spawn, \
    stop_process
from percored import SLOW


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
        live_tmux.add(self)
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
        live_tmux.discard(self)


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
    # NAMES is printed in the channel window: `[Users #c]`, then the nicks
    # as `[@op] [ user]`; its own kick too is logged as `NICK was kicked`.
    SEES = {
        "joined": ("channel", r"^\d\d:\d\d -!- {nick} \[.*\] has joined (?i:{chan})$"),
        "names": ("channel", r"^\d\d:\d\d \[Users (?i:{chan})\]\n\d\d:\d\d (.*{pattern}.*)$"),
        "said": ("channel", r"^\d\d:\d\d <{MODE}{nick}> {text}$"),
        "action": ("channel", r"^\d\d:\d\d  \* {nick} {text}$"),
        "renamed_me": ("channel", r"^\d\d:\d\d -!- You're now known as {new}$"),
        "renamed": ("channel", r"^\d\d:\d\d -!- {old} is now known as {new}$"),
        "kicked": ("channel", r"^\d\d:\d\d -!- {nick} was kicked from (?i:{chan}) by {by} \[{reason}\]$"),
        "parted": ("channel", r"^\d\d:\d\d -!- {nick} \[.*\] has left (?i:{chan}) \[{reason}\]$"),
        "quit": ("channel", r"^\d\d:\d\d -!- {nick} \[.*\] has quit \[{quit}\]$"),
    }


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
    SEES = {
        "joined": ("channel", r"{T}-->\t{nick} \(.*\) has joined (?i:{chan})$"),
        "names": ("channel", r"{T}--\tNicks (?i:{chan}): \[(.*{pattern}.*)\]$"),
        "said": ("channel", r"{T}{MODE}{nick}\t{text}$"),
        "action": ("channel", r"{T} \*\t{nick} {text}$"),
        "renamed_me": ("channel", r"{T}--\tYou are now known as {new}$"),
        "renamed": ("channel", r"{T}--\t{old} is now known as {new}$"),
        "kicked": ("channel", r"{T}<--\t{by} has kicked {nick} \({reason}\)$"),
        "parted": ("channel", r"{T}<--\t{nick} \(.*\) has left (?i:{chan}) \({reason}\)$"),
        "quit": ("channel", r"{T}<--\t{nick} \(.*\) has quit \({quit}\)$"),
    }

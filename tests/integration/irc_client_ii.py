"""suckless ii driven against an IRC server: commands written to its
FIFOs, the transcript read from its output files (irc_clients.Client)."""

import os
import time

from irc_clients import Client, read_text, spawn, stop_process
from percored import SLOW


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

    # Seeing (ii's formats: `EPOCH <nick> text`, `EPOCH -!- ...`). The
    # NAMES reply (353: `= #chan nicks`) and every NICK, its own and
    # others', go to the server's out; ii shows a KICK's middle parameters
    # with their spaces and no part's reason.
    SEES = {
        "joined": ("channel", r"^\d+ -!- {nick}\(.*\) has joined (?i:{chan})$"),
        "names": ("server", r"^\d+ [=*@] (?i:{chan}) (.*{pattern}.*)$"),
        "said": ("channel", r"^\d+ <{nick}> {text}$"),
        "action": ("channel", r"^\d+ <{nick}> \x01ACTION {text}\x01$"),
        "renamed_me": ("server", r'^\d+ -!- changed nick to "{new}"$'),
        "renamed": ("server", r"^\d+ -!- {old} changed nick to {new}$"),
        "kicked": ("channel", r'^\d+ -!- {by} kicked {nick} +\("{reason}"\)$'),
        "parted": ("channel", r"^\d+ -!- {nick}\(.*\) has left (?i:{chan})$"),
        "quit": ("channel", r'^\d+ -!- {nick}\(.*\) has quit "{quit}"$'),
    }

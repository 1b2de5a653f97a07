#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (committed; run
again after changing this file). Every seed is a meaningful input: real
client lines (irssi's registration, chat commands), the shipped config,
and whole sessions for fuzz_conn_input in its record format (see the
comment at the top of fuzz_conn_input.c). Names say what each one is."""

import os
import shutil

import corpus_web

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "corpus")

# ---- chat lines --------------------------------------------------------

CHAT_LINES = {
    "help": b"/help",
    "join": b"/join rust",
    "join-key": b"/join  rust   s3cret  ",
    "join-bad-name": b"/join ru st!",
    "join-no-arg": b"/join",
    "nick": b"/nick ann",
    "nick-reserved": b"/nick guest12",
    "nick-bad": b"/nick 9lives",
    "nick-brackets": b"/nick [ann]^_`{|}",
    "msg": b"/msg bob hello there",
    "msg-tab": b"/msg\tbob\t\thello",
    "msg-no-text": b"/msg bob",
    "me": b"/me waves",
    "part": b"/part",
    "part-with-arg": b"/part now",
    "rooms": b"/rooms",
    "who": b"/who",
    "quit": b"/quit",
    "quit-reason": b"/quit gone fishing \xe2\x9b\xb5",
    "unknown": b"/dance wildly",
    "slash": b"/",
    "double-slash": b"//not a command",
    "say": b"hello world",
    "say-tab": b"a\tb\tc",
    "say-utf8": "h\u00e9llo w\u00f6rld \u2713 \U0001d11e".encode(),
    "say-cjk": "\u4f60\u597d\uff0c\u4e16\u754c".encode(),
    "utf8-overlong": b"slash \xc0\xaf overlong",
    "utf8-surrogate": b"\xed\xa0\x80 surrogate",
    "utf8-too-big": b"\xf4\x90\x80\x80 above U+10FFFF",
    "utf8-truncated": b"euro \xe2\x82",
    "utf8-lone-continuation": b"\x80\x80abc",
    "c1-control": b"next line \xc2\x85 C1",
    "c1-boundary": b"\xc2\x9f\xc2\xa0",
    "escape": b"\x1b[31mred\x1b[0m",
    "del": b"rub\x7fout",
    "nul": b"nul\x00byte",
    "crlf-inside": b"a\rb",
    "long-utf8": "\u00e9".encode() * 150,
    "upper-command": b"/JOIN rust",
    "four-byte-cut": "ab\U0001f600\U0001f600\U0001f600".encode(),
}

# ---- IRC lines ---------------------------------------------------------

# irssi 1.4's registration, as it sends it, then what a session does.
IRC_LINES = {
    "irssi-cap-ls": b"CAP LS 302",
    "irssi-nick": b"NICK bob",
    "irssi-user": b"USER bob bob 127.0.0.1 :Bob Dobbs",
    "irssi-cap-req": b"CAP REQ :multi-prefix server-time echo-message",
    "irssi-cap-end": b"CAP END",
    "irssi-mode-i": b"MODE bob +i",
    "irssi-ping": b"PING 127.0.0.1",
    "irssi-join": b"JOIN #rust",
    "irssi-mode-query": b"MODE #rust",
    "irssi-who": b"WHO #rust",
    "irssi-ban-list": b"MODE #rust b",
    "pass": b"PASS :secret word",
    "pong": b"PONG :percore",
    "join-many": b"JOIN #a,#b,#c key1,key2",
    "join-zero": b"JOIN 0",
    "part": b"PART #rust :see you",
    "privmsg": b"PRIVMSG #rust :hello, world",
    "privmsg-nick": b"PRIVMSG alice :psst",
    "privmsg-utf8": "PRIVMSG #rust :gr\u00fc\u00df dich \u2603".encode(),
    "privmsg-invalid-utf8": b"PRIVMSG #rust :bad \xff\xfe",
    "action": b"PRIVMSG #rust :\x01ACTION waves\x01",
    "action-unclosed": b"PRIVMSG #rust :\x01ACTION waves",
    "ctcp-version": b"PRIVMSG bob :\x01VERSION\x01",
    "ctcp-empty": b"PRIVMSG bob :\x01\x01",
    "ctcp-space": b"NOTICE bob :\x01PING 12345 6789\x01",
    "formatting": b"PRIVMSG #rust :\x02bold\x02 \x1ditalic\x1d \x1funder\x1f "
                  b"\x1estrike\x1e \x11mono\x11 \x16rev\x16 \x0freset",
    "colours": b"PRIVMSG #rust :\x0304red \x0304,12on blue \x03,5comma "
               b"\x035,x text \x03 reset \x0399,99x",
    "hex-colours": b"PRIVMSG #rust :\x04ff0000red \x04FF0000,00ff00both "
                   b"\x04ff00 short \x04",
    "notice": b"NOTICE #rust :server going down",
    "topic-set": b"TOPIC #rust :Rust: fearless concurrency",
    "topic-query": b"TOPIC #rust",
    "topic-clear": b"TOPIC #rust :",
    "mode-ops": b"MODE #rust +ov-k+l alice bob key 10",
    "mode-ban": b"MODE #rust +b nick!*@*",
    "mode-ban-host": b"MODE #rust +b *!*@127.0.0.1",
    "mode-ban-short": b"MODE #rust +bbb alice bob@host a.b.c",
    "mode-ban-remove": b"MODE #rust -b *!*@*",
    "mode-key-comma": b"MODE #rust +k a,b",
    "mode-key-unset": b"MODE #rust -k",
    "mode-limit-bad": b"MODE #rust +l 0999",
    "mode-limit-big": b"MODE #rust +l 9999999999",
    "mode-flags": b"MODE #rust +imnst-t",
    "mode-unknown": b"MODE #rust +xyzZ",
    "mode-no-sign": b"MODE #rust ov alice bob",
    "mode-colon-arg": b"MODE #rust +o :alice",
    "kick": b"KICK #rust alice :behave",
    "invite": b"INVITE alice #rust",
    "names": b"NAMES #rust",
    "list": b"LIST",
    "whois": b"WHOIS alice",
    "ison": b"ISON alice bob carol",
    "userhost": b"USERHOST alice bob",
    "away": b"AWAY :lunch",
    "away-back": b"AWAY",
    "lusers": b"LUSERS",
    "motd": b"MOTD",
    "quit": b"QUIT :Leaving",
    "lowercase": b"privmsg #rust :lower case command",
    "tags-source": b"@time=2023-01-01T00:00:00.000Z;+draft/x=y :bob!b@h "
                   b"PRIVMSG #rust :tagged",
    "source-only": b":bob!bob@127.0.0.1",
    "tags-only": b"@a=1",
    "spaces": b"   PRIVMSG    #rust    :  spaced  out  ",
    "only-spaces": b"     ",
    "fifteen-params": b"CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17",
    "fourteen-then-colon": b"CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 :15 16",
    "nul-inside": b"PRIVMSG #rust :before\x00after",
    "mask-match": b"X *a?b*[c]* A1B[C]~x",
    "mask-stars": b"X a*a*a*a*a*b aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "fold-brackets": b"NICK [Bob]\\~",
    "nick-reserved": b"NICK Guest12",
    "mask-forms": b"X nick user@host nick!user a.host ::1 !@ @ ! a@b!c",
    "channel-names": b"JOIN #a.b-c_d#e,#,#toolongtoolongtoolongtoolongtoolong1",
}

# ---- configs -----------------------------------------------------------

CONFIGS = {
    "minimal": b"[listener echo]\nlisten = 127.0.0.1:7007\nprotocol = echo\n",
    "unit-test-good": b"; comment\n[server]\nworkers = 3\ndistribution = "
        b"acceptor\nbalance = least-connections\nlog_level = debug\n\n"
        b"[listener front]\nlisten = [::]:7100\nprotocol = echo\n"
        b"max_output = 2M\nidle_timeout = 1.5\nflush_delay = 5ms\n"
        b"[listener admin]\nlisten = 127.0.0.1:7009\nprotocol = metrics\n"
        b"distribution = reuseport\n"
        b"\0--set server.workers=5\n--set front.backlog=64\n"
        b"--listen extra=echo@unix:/tmp/x.sock\n",
    "chat-irc": b"[server]\nworkers = 2\n[listener chat]\nlisten = "
        b"127.0.0.1:7008\nprotocol = chat\nmax_line = 1K\nsendq = 64K\n"
        b"flood_rate = 0\nflood_burst = 5\ndefault_room = lobby\n"
        b"[listener irc]\nlisten = 127.0.0.1:6667\nprotocol = irc\n"
        b"server_name = irc.example\nnetwork = Example\npassword = pw\n"
        b"registration_timeout = 250ms\nping_interval = 2m\n",
    "bad-workers": b"[server]\nworkers = 0\n",
    "bad-key": b"[server]\nspeed = fast\n",
    "bad-seconds": b"[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
        b"idle_timeout = forever\n",
    "bad-range": b"[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
        b"flush_delay = 2\nmax_input = 1\n",
    "bad-module-key": b"[listener a]\nlisten = 1.2.3.4:5\nprotocol = echo\n"
        b"colour = blue\n",
    "bad-protocol": b"[listener a]\nlisten = 1.2.3.4:5\nprotocol = gopher\n",
    "missing-listen": b"[listener a]\nprotocol = chat\n",
    # F5 (docs/fuzzing.md): the bad listen value is named at line 2.
    "f5-listen-address-line": b"[listener chat]\nprotocol = chat\n"
        b"listen = nued\n",
    "watermarks": b"[listener a]\nlisten = :1\nprotocol = echo\n"
        b"low_watermark = 1M\nhigh_watermark = 64K\nmax_output = 32K\n",
    "bad-section": b"[client]\nx = 1\n",
    "syntax-error": b"[server]\nthis line has no equals sign\n",
    "multiline": b"[listener chat]\nlisten = 127.0.0.1:1\nprotocol = chat\n"
        b"default_room = a\n  continued\n",
    "chat-check": b"[listener chat]\nlisten = 127.0.0.1:1\nprotocol = chat\n"
        b"max_line = 1M\nmax_input = 64K\ndefault_room = not a room\n",
    "irc-check": b"[listener irc]\nlisten = 127.0.0.1:1\nprotocol = irc\n"
        b"server_name = has space\nnetwork =\nmax_input = 100\n",
    "bools-and-sizes": b"[listener m]\nlisten = unix:/run/m.sock\n"
        b"protocol = metrics\nsndbuf = 1G\nrcvbuf = 4kb\nbacklog = 1048577\n",
    "long-line": b"[server]\n;" + b"x" * 250 + b"\nworkers = 1\n",
    "backend": b"[server]\nbackend = io_uring\n",
    "backend-bad": b"[server]\nbackend = kqueue\n",
    "log-level-bad": b"[server]\nlog_level = loud\n",
    "modules": b"[server]\nmodules = /nonexistent/module.so\n",
    "overrides-only": b"\0--listen chat@127.0.0.1:7008\n--listen "
        b"chat@127.0.0.1:7009\n-l irc=irc@[::1]:6667\n"
        b"-s chat-2.max_line=100\n--set server.workers=auto\n",
    "override-bad": b"\0--set nodot=1\n--set server.=x\n--listen @x\n",
    "override-unknown-listener": b"[server]\n\0--set ghost.backlog=5\n",
    "too-many-listeners": b"".join(
        b"[listener l%d]\nlisten = :%d\nprotocol = echo\n" % (i, i)
        for i in range(34)),
    "empty": b"",
    "comments-only": b"; nothing\n# here\n\n",
    "inline-comment": b"[server]\nworkers = 2 ; two\n",
    "listener-empty-name": b"[listener ]\nlisten = :1\nprotocol = echo\n",
    "numbers": b"[server]\nmax_connections = -1\ndrain_timeout = 1e400\n"
        b"max_connections_per_worker = 99999999999999999999\n",
}


# ---- sessions for fuzz_conn_input --------------------------------------

class Session:
    """Builds one fuzz_conn_input input (record format in its header)."""

    def __init__(self, a_irc=False, b_irc=None):
        flags = (1 if a_irc else 0)
        if b_irc is not None:
            flags |= 4 | (2 if b_irc else 0)
        self.data = bytearray([flags])

    def write(self, text, client=0, piece=None):
        if isinstance(text, str):
            text = text.encode()
        while text:
            chunk, text = text[:1023], text[1023:]
            k = 15 if piece is None else piece - 1
            op = len(chunk) >> 8
            self.data += bytes([(client << 7) | (op << 4) | k,
                                len(chunk) & 0xff]) + chunk
        return self

    def read(self, client=0, wait=15):
        self.data.append((client << 7) | (4 << 4) | wait)
        return self

    def half_close(self, client=0):
        self.data.append((client << 7) | (5 << 4))
        return self

    def reset(self, client=0):
        self.data.append((client << 7) | (6 << 4))
        return self

    def pause(self, steps=15, client=0):
        self.data.append((client << 7) | (7 << 4) | steps)
        return self


IRC_REGISTER = ("CAP LS 302\r\nNICK {n}\r\nUSER {n} {n} 127.0.0.1 :{n}\r\n"
                "CAP REQ :multi-prefix server-time echo-message\r\nCAP END\r\n")


def sessions():
    s = {}
    s["chat-help"] = Session().write("/help\n").read()
    s["chat-talk"] = (Session().write("/nick ann\n").read()
                      .write("hello\n/me waves\n/who\n/rooms\n").read())
    s["chat-join-part"] = (Session().write("/join rust\n").read()
                           .write("/part\n/join rust key\n/quit bye\n"))
    s["chat-crlf-split"] = Session().write("/nick ann\r\nhi there\r\n", piece=1)
    s["chat-long-line"] = (Session().write("x" * 300 + "\n").read()
                           .write("y" * 250).pause().write("z\nok\n"))
    s["chat-bad-utf8"] = Session().write(b"\xc3(\n\x1b[2J\nfine\n").read()
    s["chat-no-newline"] = Session().write("half a line")
    s["chat-slow-reader"] = Session().write("/help\n" * 120).pause()
    s["chat-reset"] = Session().write("/join x\nhello\n").reset()
    s["chat-half-close-early"] = (Session().half_close().pause()
                                  .write("never read\n"))
    s["chat-two-members"] = (Session(False, False)
                             .write("/nick ann\n", 0).write("/nick bob\n", 1)
                             .read(0).read(1)
                             .write("hi bob\n", 0).write("/msg ann psst\n", 1)
                             .write("/me leaves\n/quit\n", 1).read(0))
    s["chat-two-nick-race"] = (Session(False, False)
                               .write("/nick same\n", 0)
                               .write("/nick same\n", 1).read(0).read(1))
    s["chat-member-resets"] = (Session(False, False)
                               .write("/join r\n", 0).write("/join r\n", 1)
                               .read(1).reset(1).write("anyone?\n", 0).read(0))
    s["irc-register"] = Session(True).write(IRC_REGISTER.format(n="bob")).read()
    s["irc-session"] = (Session(True).write(IRC_REGISTER.format(n="bob"))
                        .read().write("JOIN #rust\r\nMODE #rust\r\n"
                                      "WHO #rust\r\nTOPIC #rust :hi there\r\n"
                                      "PRIVMSG #rust :hello\r\n"
                                      "PART #rust :bye\r\nQUIT :Leaving\r\n")
                        .read())
    s["irc-modes"] = (Session(True).write(IRC_REGISTER.format(n="op"))
                      .write("JOIN #m\r\nMODE #m +imnst-t\r\nMODE #m +k key\r\n"
                             "MODE #m +l 5\r\nMODE #m +b *!*@*\r\nMODE #m b\r\n"
                             "MODE #m +xyz\r\nMODE #m +o\r\nMODE #m -k\r\n")
                      .read())
    s["irc-long-line"] = (Session(True).write(IRC_REGISTER.format(n="long"))
                          .write("PRIVMSG #x :" + "a" * 600 + "\r\nPING x\r\n")
                          .read())
    s["irc-unregistered"] = (Session(True).write("JOIN #x\r\nPRIVMSG a :b\r\n"
                                                 "PING :x\r\nFOO\r\n").read())
    s["irc-split-bytes"] = Session(True).write(
        IRC_REGISTER.format(n="slow") + "JOIN #s\r\n", piece=1).read()
    s["irc-nul"] = (Session(True).write(IRC_REGISTER.format(n="nul"))
                    .write(b"PRIVMSG #x :a\x00b\r\n\r\n\n").read())
    s["irc-ctcp-format"] = (Session(True).write(IRC_REGISTER.format(n="fmt"))
                            .write(b"JOIN #f\r\nPRIVMSG #f :\x01ACTION "
                                   b"\x02dances\x02\x01\r\nPRIVMSG #f :\x0304,"
                                   b"12colour\x03 \x04ff0000hex\r\n").read())
    s["irc-quit-early"] = (Session(True).write("QUIT :now\r\n")
                           .write("JOIN #after\r\n").read())
    s["chat-and-irc-room"] = (Session(False, True)
                              .write("/join rust\n", 0)
                              .write(IRC_REGISTER.format(n="ircbob"), 1)
                              .write("JOIN #rust\r\n", 1).read(1).read(0)
                              .write("hello irc\n/me waves\n", 0)
                              .write(b"PRIVMSG #rust :\x02hi\x02 chat\r\n"
                                     b"PRIVMSG #rust :\x01ACTION nods\x01\r\n"
                                     b"TOPIC #rust :\x1b[31mred\r\n"
                                     b"KICK #rust guest1 :\x07bell\r\n", 1)
                              .read(0).read(1))
    s["irc-op-kicks-chat"] = (Session(True, False)
                              .write(IRC_REGISTER.format(n="op"), 0)
                              .write("JOIN #k\r\n", 0).read(0)
                              .write("/join k\n", 1).read(1)
                              .write("MODE #k +m\r\nMODE #k +b *!*@*\r\n", 0)
                              .write("can I speak?\n", 1).read(1)
                              .write("KICK #k guest2 :out\r\n", 0)
                              .write("/join k\n", 1).read(0).read(1))
    s["irc-privmsg-chat"] = (Session(False, True)
                             .write("/nick ann\n", 0).read(0)
                             .write(IRC_REGISTER.format(n="bob"), 1)
                             .write(b"PRIVMSG ann :hi \x1fann\x1f\r\n"
                                    b"NOTICE ann :note\r\n"
                                    b"PRIVMSG ann :\x01ACTION pokes\x01\r\n"
                                    b"AWAY :\x16away\r\n"
                                    b"QUIT :\x02gone\x02 \x1b[0m\r\n", 1)
                             .read(0).read(1))
    s["two-irc-invite"] = (Session(True, True)
                           .write(IRC_REGISTER.format(n="a"), 0)
                           .write(IRC_REGISTER.format(n="b"), 1)
                           .write("JOIN #i\r\nMODE #i +i\r\nINVITE b #i\r\n", 0)
                           .read(0).write("JOIN #i\r\nNAMES #i\r\n", 1)
                           .write("WHOIS b\r\nISON a b\r\nUSERHOST b\r\n"
                                  "LIST\r\nLUSERS\r\n", 0)
                           .half_close(1).read(0).read(1))
    s["two-irc-nick-change"] = (Session(True, True)
                                .write(IRC_REGISTER.format(n="x"), 0)
                                .write(IRC_REGISTER.format(n="y"), 1)
                                .write("JOIN #n\r\n", 0).write("JOIN #n\r\n", 1)
                                .read(0).write("NICK z\r\nNICK y\r\n", 0)
                                .read(0).read(1))
    s["slow-reader-room"] = (Session(False, False)
                             .write("/join flood\n", 0).write("/join flood\n", 1)
                             .read(0).read(1)
                             .write(("spam " * 40 + "\n") * 60, 0)
                             .pause(15, 1).read(0))
    # Regression seeds of fuzz findings (docs/fuzzing.md): F3, a bare CR
    # relayed inside IRC lines; F4, PART and QUIT reasons that were not
    # UTF-8 reaching chat members.
    s["f3-irc-bare-cr"] = (Session(True, True)
                           .write(IRC_REGISTER.format(n="alice"), 0)
                           .write(IRC_REGISTER.format(n="bob"), 1)
                           .write("JOIN #x\r\n", 0).write("JOIN #x\r\n", 1)
                           .read(0).read(1)
                           .write("PRIVMSG #x :hi\r:evil 001 bob :forged\r\n"
                                  "PART #x :bye\rQUIT\r\n", 0)
                           .read(0).read(1))
    s["f4-irc-reasons-not-utf8"] = (Session(False, True)
                                    .write("/join x\n", 0).read(0)
                                    .write(IRC_REGISTER.format(n="alice"), 1)
                                    .write("JOIN #x\r\n", 1).read(1).read(0)
                                    .write(b"PART #x :part \xcf\xcf\r\n"
                                           b"JOIN #x\r\n"
                                           b"QUIT :quit \xcf\x02bold\r\n", 1)
                                    .read(1).read(0))
    return s


# ---- dictionaries: the words each target's input is made of -----------

CHAT_WORDS = ["/nick ", "/join ", "/part", "/rooms", "/who", "/msg ", "/me ",
              "/quit", "/help", "//", "guest", "\t", "\xc2\x85", "\xed\xa0\x80",
              "\xf4\x8f\xbf\xbf", "\xef\xbf\xbd", "\x1b["]
IRC_WORDS = ["CAP", "LS", "REQ", "END", "ACK", "PASS", "NICK", "USER", "PING",
             "PONG", "QUIT", "JOIN", "PART", "TOPIC", "NAMES", "LIST", "MODE",
             "KICK", "INVITE", "PRIVMSG", "NOTICE", "WHO", "WHOIS", "AWAY",
             "ISON", "USERHOST", "LUSERS", "MOTD", "multi-prefix",
             "server-time", "echo-message", "ACTION", "VERSION", "\x01",
             "\x02", "\x03", "\x04", "\x0f", "\x11", "\x16", "\x1d", "\x1e",
             "\x1f", "\r\n", " :", "@time=", "+o", "-o", "+v", "+b", "-b",
             "+k", "-k", "+l", "-l", "+i", "+m", "+n", "+s", "+t", "!", "@",
             "*!*@*", "#", "#rust", "[", "]", "\\", "~", "{", "}", "|", "^",
             "999999999", "1000000000"]
CONFIG_WORDS = ["[server]", "[listener ", "]", " = ", "\n", "\x00", "--set ",
                "--listen ", "-l ", "-s ", "server.", "workers", "auto",
                "distribution", "reuseport", "acceptor", "balance",
                "round-robin", "least-connections", "backend", "epoll",
                "io_uring", "poll", "select", "max_connections",
                "max_connections_per_worker", "drain_timeout", "log_level",
                "debug", "modules", "listen", "protocol", "echo", "chat", "irc",
                "metrics", "backlog", "idle_timeout", "flush_delay",
                "max_input", "max_output", "high_watermark", "low_watermark",
                "sndbuf", "rcvbuf", "max_line", "sendq", "flood_rate",
                "flood_burst", "default_room", "server_name", "network",
                "password", "motd", "registration_timeout", "ping_interval",
                "ping_timeout", "127.0.0.1:", "[::1]:", "unix:/", "@", "K", "M",
                "G", "ms", "s", "yes", "off", "1e9", ";", "#"]


def write_dict(name, words):
    d = os.path.join(HERE, "dict")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name + ".dict"), "w") as f:
        f.write("# libFuzzer dictionary, written by tests/fuzz/corpus.py\n")
        for w in words:
            # Printable ASCII as itself, every other byte as \xNN (words
            # are byte strings written as latin-1 str).
            f.write('"%s"\n' % "".join(
                c if " " <= c <= "~" and c not in '"\\' else "\\x%02x" % ord(c)
                for c in w))


def write_corpus(name, seeds):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for seed, data in seeds.items():
        with open(os.path.join(d, seed), "wb") as f:
            f.write(bytes(data))


def main():
    write_corpus("fuzz_chat_line", CHAT_LINES)
    write_corpus("fuzz_irc_message", IRC_LINES)
    configs = dict(CONFIGS)
    with open(os.path.join(ROOT, "deploy", "percored.ini"), "rb") as f:
        shipped = f.read()
    configs["deploy-percored.ini"] = shipped
    configs["deploy-percored.ini-overrides"] = (
        shipped + b"\0--set server.workers=4\n--set echo.idle_timeout=60\n"
        b"--listen chat@127.0.0.1:7008\n--listen irc@127.0.0.1:6667\n")
    write_corpus("fuzz_config", configs)
    write_corpus("fuzz_conn_input", {k: v.data for k, v in sessions().items()})
    write_dict("fuzz_chat_line", CHAT_WORDS)
    write_dict("fuzz_irc_message", IRC_WORDS)
    write_dict("fuzz_config", CONFIG_WORDS)
    write_dict("fuzz_conn_input", CHAT_WORDS + IRC_WORDS)
    write_corpus("fuzz_web_input", corpus_web.sessions())
    write_dict("fuzz_web_input", [w.decode("latin-1") for w in corpus_web.WORDS])


if __name__ == "__main__":
    main()

"""The tables of test_irc_conformance: one row per exchange, grouped by
family (registration, nicks, commands, channels, messages, topics, modes,
operators, queries, capabilities, quits, passwords)."""

from irc_conformance_rig import (ANY, CLOSED, Group, Has, PASSWORD,
                                 PERCORED_ONLY, R, Row, Rx, Step, T, Words)
from irc_conformance_world import (BRACKETS, CHAN, CHAN_STRANGER, PEER,
                                   PEER_UNREG, REG, SHARED, UNREG, USER,
                                   welcome)


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

"""Real IRC clients from Debian (ii, irssi, weechat) against percored's `irc`
face, end to end: registration, channels, lines, actions, nick changes,
kicks, parts and quits, each asserted in every client's own transcript; and,
on percored only, a line `chat` client sharing room x with channel #x.

IRC_SERVER=ngircd runs the same IRC scenarios against Debian's ngircd, the
reference they were proven on; unset or `percored`, against percored with 4
workers, connections handed out round robin so that the clients of a test
each land on a different worker.

    IRC_SERVER=ngircd python3 -m unittest -v test_irc_clients
    IRC_TRANSCRIPTS=1 ...   prints every client's transcript after each test
"""

import os
import sys
import unittest

from irc_client_ii import Ii
from irc_client_tui import Irssi, Weechat
from irc_clients import (Chat, MODE, Ngircd, esc, missing_programs,
                         quit_reason)
from percored import SLOW, Percored, free_port, run, wait_for

SERVER = os.environ.get("IRC_SERVER", "percored") or "percored"
ON_PERCORED = SERVER == "percored"
CHAN = "#percore"
WORKERS = 4


def why_not_runnable():
    if SERVER not in ("percored", "ngircd"):
        return f"IRC_SERVER={SERVER!r}: use percored or ngircd"
    missing = missing_programs()
    if missing:
        return "missing " + ", ".join(missing) + " (deploy/install-deps)"
    if ON_PERCORED:
        r = run(["-t", "--listen", f"irc@127.0.0.1:{free_port()}"])
        if "unknown protocol 'irc'" in r.stderr:
            return "this percored has no irc protocol yet"
    return None


class IrcTestCase(unittest.TestCase):
    """Each test: its own server, its own clients, all ended by cleanups
    (which run even when the test fails, and show the transcripts then)."""

    @classmethod
    def setUpClass(cls):
        reason = why_not_runnable()
        if reason:
            raise unittest.SkipTest(reason)

    def setUp(self):
        self.clients = []
        if ON_PERCORED:
            self.server = Percored(
                "--distribution", "acceptor", "--balance", "round-robin",
                listeners=(("irc", "irc"), ("chat", "chat"),
                           ("metrics", "metrics")),
                workers=WORKERS)
            self.server.__enter__()
            self.addCleanup(self.server.__exit__, None, None, None)
            self.port = self.server.ports["irc"]
        else:
            self.server = Ngircd()
            self.server.__enter__()
            self.addCleanup(self.server.__exit__, None, None, None)
            self.port = self.server.port

    # Clients.
    def client(self, cls, nick):
        c = cls(nick, self.port)
        self.addCleanup(c.close)
        # Runs before close (cleanups are last in, first out).
        self.addCleanup(self.show_transcript, c)
        self.clients.append(c)
        c.start()
        return c

    def chat(self, nick):
        c = Chat(self.server.ports["chat"], nick)
        self.addCleanup(c.close)
        self.addCleanup(self.show_transcript, c)
        self.clients.append(c)
        return c

    def show_transcript(self, c):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        failed = any(t is self for t, _ in getattr(result, "failures", []) +
                     getattr(result, "errors", []))
        if failed or os.environ.get("IRC_TRANSCRIPTS"):
            print(f"\n===== {self.id()}: {c!r}\n{c.dump()}", file=sys.stderr)

    def three(self):
        """ii, irssi and weechat, connected at once, each registered."""
        ann = self.client(Ii, "ann_ii")
        bob = self.client(Irssi, "bob_irssi")
        cat = self.client(Weechat, "cat_wee")
        for c in (ann, bob, cat):
            c.wait_registered()
        return ann, bob, cat

    def three_in(self, chan):
        """The three in `chan`: irssi (bob) first, so bob is its op; then ii
        (ann), then weechat (cat), each join seen before the next."""
        ann, bob, cat = self.three()
        bob.join(chan)
        bob.wait_joined(chan, bob.nick)
        bob.wait_names(chan, rf"\[@{esc(bob.nick)}\]")
        ann.join(chan)
        for c in (ann, bob):
            c.wait_joined(chan, ann.nick)
        cat.join(chan)
        for c in (ann, bob, cat):
            c.wait_joined(chan, cat.nick)
        return ann, bob, cat


class IrcClients(IrcTestCase):
    """The IRC scenarios: the same on percored and on ngircd."""

    # Registration and channels.
    def test_ii_irssi_and_weechat_each_register_and_show_the_welcome(self):
        ann, bob, cat = self.three()
        # irssi's status bar shows the nick the server registered.
        bob.wait_screen(rf"\[{MODE}{esc(bob.nick)}[(\]]",
                        what="irssi's status bar with its nick")
        if ON_PERCORED:
            busy = [w for w, n in self.server.per_worker(
                "percore_worker_connections").items() if n > 0]
            self.assertGreaterEqual(len(busy), 3, "clients share workers")

    def test_the_first_joiner_is_op_and_every_member_sees_the_others(self):
        ann, bob, cat = self.three_in(CHAN)
        # Everyone's NAMES shows bob as op and the members before them.
        ann.wait_names(CHAN, rf"@{esc(bob.nick)}\b")
        ann.wait_names(CHAN, rf"(?<![@+\w]){esc(ann.nick)}\b")
        cat.wait_names(CHAN, rf"@{esc(bob.nick)}\b")
        cat.wait_names(CHAN, rf"(?<![@+\w]){esc(ann.nick)}\b")
        cat.wait_names(CHAN, rf"(?<![@+\w]){esc(cat.nick)}\b")
        bob.wait_screen(rf"\[@{esc(bob.nick)}[(\]]",
                        what="irssi's status bar showing it is op")

    # Talking.
    def test_a_line_said_by_each_client_reaches_every_member_with_its_nick(self):
        ann, bob, cat = self.three_in(CHAN)
        said = {ann: "hello from ii", bob: "hello from irssi",
                cat: "hello from weechat"}
        for c, text in said.items():
            c.say(CHAN, text)
        for viewer in (ann, bob, cat):
            for c, text in said.items():
                viewer.wait_said(CHAN, c.nick, text)
        # What the irssi user sees on the screen.
        bob.wait_screen(rf"<{MODE}{esc(ann.nick)}> hello from ii")

    def test_an_action_from_each_client_reaches_the_others_as_ctcp_action(self):
        ann, bob, cat = self.three_in(CHAN)
        bob.act(CHAN, "waves from irssi")
        cat.act(CHAN, "nods from weechat")
        ann.act(CHAN, "jumps from ii")
        for viewer in (ann, cat):
            viewer.wait_action(CHAN, bob.nick, "waves from irssi")
        for viewer in (ann, bob):
            viewer.wait_action(CHAN, cat.nick, "nods from weechat")
        for viewer in (bob, cat):
            viewer.wait_action(CHAN, ann.nick, "jumps from ii")
        bob.wait_screen(rf"^\d\d:\d\d  \* {esc(cat.nick)} nods from weechat")

    def test_formatting_typed_in_irssi_reaches_irc_clients_unchanged(self):
        # IRC relays mIRC codes as they are; only chat members get them
        # stripped (see the chat tests).
        ann, bob, cat = self.three_in(CHAN)
        text = "plain \x02bold\x02 \x034,1red\x03 \x1funder\x1f"
        bob.say_typed(CHAN, text)
        ann.wait_said(CHAN, bob.nick, text)
        # What weechat and irssi show, their logs without the codes.
        cat.wait_said(CHAN, bob.nick, "plain bold red under")
        bob.wait_said(CHAN, bob.nick, "plain bold red under")

    # Nicks, kicks, parts, quits.
    def test_a_nick_change_is_seen_by_every_member(self):
        ann, bob, cat = self.three_in(CHAN)
        old = bob.nick
        bob.change_nick("rob_irssi")
        for c in (ann, bob, cat):
            c.wait_nick_changed(CHAN, old, "rob_irssi")
        # The new nick is the one the others see speak.
        bob.say(CHAN, "same person, new name")
        for c in (ann, cat):
            c.wait_said(CHAN, "rob_irssi", "same person, new name")
        old = cat.nick
        cat.change_nick("kit_wee")
        for c in (ann, bob, cat):
            c.wait_nick_changed(CHAN, old, "kit_wee")

    def test_an_op_kicks_members_and_each_kicked_client_shows_the_reason(self):
        ann, bob, cat = self.three_in(CHAN)
        bob.kick(CHAN, ann.nick, "out you go, ann")
        for c in (ann, bob, cat):
            c.wait_kicked(CHAN, ann.nick, bob.nick, "out you go, ann")
        bob.kick(CHAN, cat.nick, "you too, cat")
        for c in (bob, cat):
            c.wait_kicked(CHAN, cat.nick, bob.nick, "you too, cat")
        # Kicked means out: the server's NAMES, asked after a line said,
        # holds bob alone, and the line reached neither of the others.
        bob.say(CHAN, "alone now")
        since = len(bob.channel_log(CHAN))
        bob.type(f"/names {CHAN}")
        names = bob.wait_names(CHAN, r"", since=since).group(1)
        self.assertEqual(names.split(), [f"[@{bob.nick}]"])
        for c in (ann, cat):
            self.assertNotIn("alone now", c.channel_log(CHAN))
        # And irssi kicked: cat creates #second, so cat is its op there.
        cat.join("#second")
        cat.wait_names("#second", rf"@{esc(cat.nick)}\b")
        bob.join("#second")
        cat.wait_joined("#second", bob.nick)
        cat.kick("#second", bob.nick, "your turn, bob")
        for c in (bob, cat):
            c.wait_kicked("#second", bob.nick, cat.nick, "your turn, bob")
        bob.wait_screen(rf"-!- {esc(bob.nick)} was kicked from #second by "
                        rf"{esc(cat.nick)} \[your turn, bob\]")

    def test_a_member_that_kicks_without_op_is_refused(self):
        ann, bob, cat = self.three_in(CHAN)
        since = len(cat.channel_log(CHAN))
        cat.kick(CHAN, bob.nick, "coup")
        # 482 ERR_CHANOPRIVSNEEDED, as weechat shows it on the channel (the
        # text is the server's: RFC 2812 "You're not channel operator",
        # ngircd "Your privileges are too low").
        cat.wait_channel(
            CHAN, rf"\t--\t(?i:{esc(CHAN)}): .*(?i:operator|privileges)",
            what="weechat showing 482 (not channel operator)", since=since)
        bob.say(CHAN, "still here")
        cat.wait_said(CHAN, bob.nick, "still here")
        self.assertNotIn("coup", bob.channel_log(CHAN))

    def test_a_part_reason_reaches_the_others(self):
        ann, bob, cat = self.three_in(CHAN)
        cat.part(CHAN, "weechat leaves now")
        for c in (ann, bob, cat):
            c.wait_parted(CHAN, cat.nick, "weechat leaves now")
        bob.part(CHAN, "irssi leaves too")
        ann.wait_parted(CHAN, bob.nick, "irssi leaves too")

    def test_a_quit_reason_reaches_the_others_and_the_client_exits(self):
        ann, bob, cat = self.three_in(CHAN)
        ann.quit("ii signs off")
        for c in (bob, cat):
            c.wait_quit(CHAN, ann.nick, "ii signs off")
        bob.quit("irssi signs off")
        cat.wait_quit(CHAN, bob.nick, "irssi signs off")
        cat.quit("weechat signs off")
        # Each client ends by itself once the server has closed it.
        ann.proc.wait(10 * SLOW)
        cat.proc.wait(10 * SLOW)
        wait_for(lambda: not bob.tmux.pane_alive(), what="irssi to exit")


@unittest.skipUnless(ON_PERCORED, "a chat face exists on percored only")
class ChatAndIrc(IrcTestCase):
    """Room x of the chat protocol is channel #x of the irc face."""

    ROOM = "x"
    CH = "#x"

    def together(self):
        """carol (chat) in room x first, then bob (irssi), ann (ii) and cat
        (weechat) join #x."""
        carol = self.chat("carol")
        carol.join(self.ROOM)
        ann, bob, cat = self.three()
        for c in (bob, ann, cat):
            c.join(self.CH)
            c.wait_joined(self.CH, c.nick)
        return carol, ann, bob, cat

    def test_chat_and_irc_clients_talk_in_room_x_and_channel_x(self):
        carol, ann, bob, cat = self.together()
        carol.send("hello from chat")
        for c in (ann, bob, cat):
            c.wait_said(self.CH, "carol", "hello from chat")
        carol.wait(r"carol: hello from chat")
        bob.say(self.CH, "hello from irssi")
        ann.say(self.CH, "hello from ii")
        cat.say(self.CH, "hello from weechat")
        carol.wait(rf"{esc(bob.nick)}: hello from irssi")
        carol.wait(rf"{esc(ann.nick)}: hello from ii")
        carol.wait(rf"{esc(cat.nick)}: hello from weechat")
        bob.wait_said(self.CH, ann.nick, "hello from ii")

    def test_chat_me_reaches_irc_clients_as_a_ctcp_action(self):
        carol, ann, bob, cat = self.together()
        carol.send("/me waves")
        carol.wait(r"\* carol waves")
        bob.wait_action(self.CH, "carol", "waves")
        bob.wait_screen(r"^\d\d:\d\d  \* carol waves")
        cat.wait_action(self.CH, "carol", "waves")
        ann.wait_action(self.CH, "carol", "waves")

    def test_irc_me_reaches_chat_as_an_action_line(self):
        carol, ann, bob, cat = self.together()
        bob.act(self.CH, "dances")
        carol.wait(rf"\* {esc(bob.nick)} dances")
        cat.act(self.CH, "sings")
        carol.wait(rf"\* {esc(cat.nick)} sings")
        ann.act(self.CH, "bows")
        carol.wait(rf"\* {esc(ann.nick)} bows")

    def test_mirc_bold_typed_in_irssi_arrives_stripped_at_chat(self):
        carol, ann, bob, cat = self.together()
        bob.say_typed(self.CH, "plain \x02bold\x02 text")
        carol.wait(rf"{esc(bob.nick)}: plain bold text")
        # IRC members still get the bold.
        ann.wait_said(self.CH, bob.nick, "plain \x02bold\x02 text")

    def test_mirc_colors_and_other_codes_arrive_stripped_at_chat(self):
        carol, ann, bob, cat = self.together()
        ann.say(self.CH, "\x0304,01red\x03 \x0312blue\x03 \x1funder\x1f "
                         "\x1ditalic\x1d \x16rev\x16 \x0fend")
        carol.wait(rf"{esc(ann.nick)}: red blue under italic rev end")

    def chat_and_irssi(self):
        """carol (chat) in room x, then bob (irssi) in #x."""
        carol = self.chat("carol")
        carol.join(self.ROOM)
        bob = self.client(Irssi, "bob_irssi")
        bob.wait_registered()
        bob.join(self.CH)
        bob.wait_joined(self.CH, bob.nick)
        return carol, bob

    def test_joins_cross_between_chat_and_irc(self):
        carol, bob = self.chat_and_irssi()
        # The IRC join is a chat notice; the chat member is in NAMES.
        carol.wait(rf"\*\*\* {esc(bob.nick)} joined {self.ROOM}")
        bob.wait_names(self.CH, r"(?<![\w])carol\b")
        # A chat member's arrival is an IRC JOIN.
        dave = self.chat("dave")
        dave.join(self.ROOM)
        bob.wait_joined(self.CH, "dave")

    def test_nick_changes_cross_between_chat_and_irc(self):
        carol, bob = self.chat_and_irssi()
        # A chat /nick is an IRC NICK, an IRC NICK a chat notice.
        carol.command("/nick carla", r"OK nick carla")
        bob.wait_nick_changed(self.CH, "carol", "carla")
        bob.change_nick("rob_irssi")
        carol.wait(r"\*\*\* bob_irssi is now known as rob_irssi")

    def test_quits_cross_between_chat_and_irc(self):
        carol, bob = self.chat_and_irssi()
        dave = self.chat("dave")
        dave.join(self.ROOM)
        bob.wait_joined(self.CH, "dave")
        # A chat /quit is an IRC QUIT with its reason, and back.
        dave.command("/quit time for bed", r"OK bye")
        bob.wait_quit(self.CH, "dave", "time for bed")
        bob.quit("irssi signs off")
        carol.wait(rf"\*\*\* bob_irssi quit \({quit_reason('irssi signs off')}\)")

if __name__ == "__main__":
    unittest.main()

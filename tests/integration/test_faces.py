"""One room core behind two faces: chat and irc members of the same rooms
on a real percored with 4 workers, over real sockets. One order per room
for every member of every face, nicks unique across faces, what each face
makes of the other's lines, modes set on IRC holding for chat members,
and a slow IRC reader cut after its last whole line."""

import re
import socket
import threading
import unittest

from line_client import LineClient, gather_numbered
from percored import SLOW, Percored, wait_for
from test_chat import Client as ChatClient

WORKERS = 4


class IrcClient(LineClient):
    """A raw IRC client: registers and reads CR LF lines."""

    EOL = b"\r\n"

    def __init__(self, server, nick, caps=(), rcvbuf=None):
        super().__init__(server.ports["irc"], rcvbuf)
        getattr(server, "clients", []).append(self.sock)
        self.nick = nick
        if caps:
            self.send("CAP LS 302")
            self.send("CAP REQ :" + " ".join(caps))
            self.expect(r":\S+ CAP \S+ ACK .*")
            self.send("CAP END")
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick} the tester")
        self.expect(r":\S+ 001 .*")
        self.expect(r":\S+ (376|422) .*")

    def send(self, text):
        data = text.encode() if isinstance(text, str) else text
        self.sock.sendall(data + b"\r\n")

    def join(self, channel):
        self.send(f"JOIN {channel}")
        self.expect(rf":\S+ 366 {re.escape(self.nick)} {re.escape(channel)} .*")


class FacesServer(Percored):
    """Closes the IRC clients a test left open before stopping, so the
    stop does not wait out the drain for them."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.clients = []

    def stop(self, timeout=30):
        for sock in self.clients:
            sock.close()
        return super().stop(timeout)


def faces_server(*extra):
    return FacesServer("--set", "chat.flood_rate=0", "--set",
                       "irc.flood_rate=0", *extra,
                       listeners=(("chat", "chat"), ("irc", "irc"),
                                  ("metrics", "metrics")),
                       workers=WORKERS)


class OneOrderAcrossFaces(unittest.TestCase):
    def test_every_member_of_every_face_sees_one_order(self):
        rooms, per_face, lines = 3, 20, 10 if SLOW == 1 else 4
        with faces_server() as srv:
            chats = [ChatClient(srv) for _ in range(rooms * per_face)]
            ircs = [IrcClient(srv, f"irc{i}", caps=("echo-message",))
                    for i in range(rooms * per_face)]
            for i, c in enumerate(chats):
                c.room = f"room{i % rooms}"
                c.join(c.room)
            for i, c in enumerate(ircs):
                c.room = f"room{i % rooms}"
                c.join("#" + c.room)
            members = chats + ircs

            def send_all():
                for n in range(lines):
                    for c in chats:
                        c.send(f"{c.nick} {n}\n")
                    for c in ircs:
                        c.send(f"PRIVMSG #{c.room} :{c.nick} {n}")
            sender = threading.Thread(target=send_all)
            sender.start()
            expected = 2 * per_face * lines
            chat_line = re.compile(rb"(\S+): (\S+) (\d+)")
            irc_line = re.compile(rb":(\S+?)!\S+ PRIVMSG #\S+ :(\S+) (\d+)")
            got, pending = gather_numbered(
                members, lambda c: irc_line if isinstance(c, IrcClient)
                else chat_line, expected)
            sender.join()
            self.assertFalse(pending, "members still missing lines")
            for r in range(rooms):
                room = [c for c in members if c.room == f"room{r}"]
                first = got[room[0]]
                self.assertEqual(len(set(first)), expected)
                for c in room:
                    mine = [n for nick, n in first if nick == c.nick.encode()]
                    self.assertEqual(mine, list(range(lines)))
                for c in room[1:]:
                    self.assertEqual(got[c], first,
                                     f"{c.nick} saw room{r} in another order")
            for c in members:
                c.close()


class BetweenFaces(unittest.TestCase):
    def test_chat_and_irc_meet_in_one_room_and_render_each_other(self):
        with faces_server() as srv:
            irc = IrcClient(srv, "ircy")
            irc.join("#meet")
            chat = ChatClient(srv)
            chat.command("/nick chatty", "OK nick chatty")
            chat.join("meet")
            irc.expect(r":chatty!chat@127\.0\.0\.1 JOIN #meet")
            chat.send("hello irc\n")
            irc.expect(r":chatty!\S+ PRIVMSG #meet :hello irc")
            chat.send("/me waves\n")
            irc.expect(":chatty!\\S+ PRIVMSG #meet :\x01ACTION waves\x01")
            irc.send("PRIVMSG #meet :\x02bold\x02 and \x0304red\x03 text")
            chat.expect(r"ircy: bold and red text")
            irc.send("PRIVMSG #meet :\x01ACTION dances\x01")
            chat.expect(r"\* ircy dances")
            # a CTCP other than ACTION does not reach chat; the next line does
            irc.send("PRIVMSG #meet :\x01VERSION\x01")
            irc.send("PRIVMSG #meet :after")
            m, skipped = chat.expect(r"ircy: after")
            self.assertFalse(any("VERSION" in s for s in skipped), skipped)
            # each face lists the other's members
            irc.send("NAMES #meet")
            m, _ = irc.expect(r":\S+ 353 ircy = #meet :(.*)")
            self.assertEqual(sorted(m.group(1).split()), ["@ircy", "chatty"])
            chat.command("/who", re.escape("OK who meet 2: chatty ircy"))
            irc.send("WHO #meet")
            m, _ = irc.expect(r":\S+ 352 ircy #meet chat 127\.0\.0\.1 \S+ "
                              r"chatty H :0 ")
            # private lines both ways
            chat.command("/msg ircy psst", "OK msg ircy")
            irc.expect(r":chatty!\S+ PRIVMSG ircy :psst")
            irc.send("PRIVMSG chatty :back")
            chat.expect(r"ircy -> chatty: back")

    def test_nicks_are_unique_across_faces_whatever_the_case(self):
        with faces_server() as srv:
            alice = IrcClient(srv, "Alice")
            chat = ChatClient(srv)
            chat.command("/nick alice", "ERR nick alice is taken")
            chat.command("/nick ALICE", "ERR nick ALICE is taken")
            chat.command("/nick bob", "OK nick bob")
            s = socket.create_connection(("127.0.0.1", srv.ports["irc"]))
            s.sendall(b"NICK BoB\r\nUSER x 0 * :x\r\n")
            data = b""
            while b" 433 " not in data:
                data += s.recv(4096)
            self.assertIn(b"433 * BoB :Nickname is already in use", data)
            s.close()
            alice.close()

    def test_modes_set_on_irc_hold_for_chat_members(self):
        with faces_server() as srv:
            op = IrcClient(srv, "op")
            op.join("#mod")
            chat = ChatClient(srv)
            chat.join("mod")
            op.send("MODE #mod +m")
            op.expect(r":op!\S+ MODE #mod \+m")
            chat.expect(r"\*\*\* op sets mode \+m on mod")
            chat.send("may I?\n")
            chat.expect(r"ERR you cannot speak in mod now")
            op.send(f"MODE #mod +v {chat.nick}")
            chat.expect(rf"\*\*\* op sets mode \+v {chat.nick} on mod")
            chat.send("thanks\n")
            op.expect(rf":{chat.nick}!\S+ PRIVMSG #mod :thanks")
            op.send(f"KICK #mod {chat.nick} :enough")
            chat.expect(rf"\*\*\* {chat.nick} was kicked from mod by op "
                        r"\(enough\)")
            chat.send("still here?\n")
            chat.expect(r"ERR you are not in a room.*")
            op.send("MODE #mod +b *!chat@*")
            op.expect(r":op!\S+ MODE #mod \+b \*!chat@\*")
            chat.command("/join mod", r"ERR you are banned from mod")


class NickAndQuitAcrossWorkers(unittest.TestCase):
    def test_every_nick_change_and_quit_reaches_every_member_once(self):
        with faces_server() as srv:
            users = [IrcClient(srv, f"u{i}") for i in range(8)]
            for u in users:
                u.join("#q")
                u.join("#r")  # two shared channels: still once each
            for u in users:  # every JOIN seen before the changes start
                u.send("PING sync")
                u.expect(r":\S+ PONG \S+ :sync")
            for i, u in enumerate(users):
                u.send(f"NICK n{i}")
                for other in users:
                    m, skipped = other.expect(rf":u{i}!\S+ NICK :n{i}")
                    self.assertFalse([s for s in skipped if " NICK " in s],
                                     skipped)
                u.nick = f"n{i}"
            for u in users:  # a duplicate would come before the PONG
                u.send("PING again")
                _, skipped = u.expect(r":\S+ PONG \S+ :again")
                self.assertFalse([s for s in skipped if " NICK " in s],
                                 skipped)
            for i, u in enumerate(users[:-1]):
                u.send(f"QUIT :bye {i}")
                for other in users[i + 1:]:
                    other.expect(rf":n{i}!\S+ QUIT :Quit: bye {i}")
            last = users[-1]
            last.send("PING end")
            _, skipped = last.expect(r":\S+ PONG \S+ :end")
            self.assertFalse([s for s in skipped if " QUIT " in s], skipped)
            for u in users:
                u.close()


class IrcEdges(unittest.TestCase):
    def test_generated_nicks_are_nobodys_to_claim(self):
        with faces_server() as srv:
            s = socket.create_connection(("127.0.0.1", srv.ports["irc"]))
            s.sendall(b"NICK Guest1\r\n")
            data = b""
            while b"\r\n" not in data:
                data += s.recv(4096)
            self.assertRegex(data, rb":\S+ 432 \* Guest1 :")
            s.close()

    def test_a_bare_cr_or_bad_utf8_in_any_line_is_refused_not_relayed(self):
        with faces_server() as srv:
            a, b = IrcClient(srv, "ann"), IrcClient(srv, "ben")
            a.join("#c")
            b.join("#c")
            a.send(b"PRIVMSG #c :hi\r:op!x@y PRIVMSG #c :forged")
            a.expect(r"FAIL \* INVALID_TEXT .*")
            a.send(b"TOPIC #c :\xff\xfe")
            a.expect(r"FAIL \* INVALID_UTF8 .*")
            a.send("PRIVMSG #c :after")
            _, skipped = b.expect(r":ann!\S+ PRIVMSG #c :after")
            self.assertFalse([x for x in skipped if "forged" in x or
                              "TOPIC" in x], skipped)

    def test_a_mode_line_keeps_every_long_mask_whole(self):
        with faces_server() as srv:
            op = IrcClient(srv, "op")
            op.join("#m")
            masks = [f"n{i}!~someuser{i}@2001:db8:1234:5678:9abc:def0:{i:04x}:1"
                     for i in range(8)]
            op.send("MODE #m +bbbbbbbb " + " ".join(masks))
            m, _ = op.expect(r":op!\S+ MODE #m (\S+) (.*)")
            self.assertEqual(m.group(1), "+bbbbbbbb")
            self.assertEqual(m.group(2).split(), masks)
            op.send("MODE #m +b")
            listed = []
            while len(listed) < 8:
                m, _ = op.expect(r":\S+ 367 op #m (\S+) .*")
                listed.append(m.group(1))
            self.assertEqual(sorted(listed), sorted(masks))

    def test_invite_names_the_inviter_in_full(self):
        with faces_server() as srv:
            op, guest = IrcClient(srv, "op"), IrcClient(srv, "visitor")
            op.join("#i")
            op.send("INVITE visitor #i")
            op.expect(r":\S+ 341 op visitor #i")
            guest.expect(r":op!~op@127\.0\.0\.1 INVITE visitor #i")

    def test_echo_message_echoes_private_lines_too(self):
        with faces_server() as srv:
            a = IrcClient(srv, "echoer", caps=("echo-message",))
            IrcClient(srv, "hearer").close()
            b = IrcClient(srv, "hearer2")
            a.send("PRIVMSG hearer2 :just you")
            a.expect(r":echoer!\S+ PRIVMSG hearer2 :just you")
            b.expect(r":echoer!\S+ PRIVMSG hearer2 :just you")

    def test_a_user_is_in_at_most_chanlimit_channels(self):
        with faces_server() as srv:
            u = IrcClient(srv, "joiner")
            for start in range(0, 64, 8):  # 8 targets a JOIN (MAXTARGETS)
                names = [f"#c{i}" for i in range(start, start + 8)]
                u.send("JOIN " + ",".join(names))
                done = set()
                while len(done) < 8:  # homes on other workers: any order
                    m, _ = u.expect(r":\S+ 366 joiner (#c\d+) .*")
                    done.add(m.group(1))
            u.send("JOIN #one-too-many")
            u.expect(r":\S+ 405 joiner #one-too-many :.*")


class SlowIrcReader(unittest.TestCase):
    def test_a_slow_irc_reader_gets_whole_lines_then_error(self):
        line = "x" * 400
        # A fixed kernel send buffer: autotuned, it sometimes grew to take
        # all 800 KB for the slow client, whose sendq then never filled.
        with faces_server("--set", "irc.sendq=64K",
                          "--set", "irc.sndbuf=16K") as srv:
            slow = IrcClient(srv, "slow", rcvbuf=4096)
            talker = IrcClient(srv, "talker")
            slow.join("#busy")
            talker.join("#busy")
            # The slow client keeps talking while it does not read (as a
            # client answering PINGs would): input the server has not read
            # when it closes must not turn the close into a reset.
            for i in range(2000):  # 800 KB: far past the sendq
                talker.send(f"PRIVMSG #busy :{i} {line}")
                if i % 20 == 0:
                    slow.send(f"PING :still-here-{i}")
            # Once the cut is made, the slow client reads: it must get the
            # rest of the line in flight, then ERROR, then the server's FIN
            # (a peer that still did not read would be closed at the 5 s
            # linger, torn). Its close then sends the room its QUIT.
            wait_for(lambda: srv.total("percore_room_sendq_cutoffs_total") >= 1,
                     timeout=30, what="the sendq cut")
            rest = slow.read_to_end()
            slow.sock.close()
            talker.expect(r":slow!\S+ QUIT :SendQ exceeded", timeout=30)
            self.assertTrue(rest.endswith(b"\r\n"), rest[-100:])
            lines = rest.decode().split("\r\n")[:-1]
            self.assertRegex(lines[-1],
                             r"ERROR :Closing Link: \S+ \(SendQ exceeded\)")
            for text in lines[:-1]:
                self.assertRegex(text, r"(:talker!\S+ PRIVMSG #busy :\d+ x{400}"
                                       r"|:\S+ \d{3} .*|:\S+ (JOIN|PONG) .*)")


if __name__ == "__main__":
    unittest.main()

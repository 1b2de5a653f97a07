"""The chat module against a real percored with 4 workers, over real
sockets: one order per room across workers, nick races, private messages,
notices, bad lines, slow readers, flood control, reload."""

import re
import signal
import socket
import threading
import time
import unittest

from line_client import LineClient, gather_numbered
from percored import SANITIZED, SLOW, Percored, wait_for

WORKERS = 4


class Client(LineClient):
    """A line client. The server's generated nick guestK tells the worker:
    K mod the worker count."""

    def __init__(self, server, name="chat", rcvbuf=None):
        super().__init__(server.ports[name], rcvbuf)
        welcome = self.line()
        m = re.match(r"\*\*\* welcome to percore chat, (guest(\d+));", welcome)
        assert m, welcome
        self.nick = m.group(1)
        self.worker = int(m.group(2)) % WORKERS

    def send(self, text):
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def command(self, text, pattern):
        self.send(text + "\n")
        return self.expect(pattern)[0]

    def join(self, room):
        self.command(f"/join {room}", re.escape(f"OK join {room}"))


def on_workers(server, wanted):
    """Clients on distinct workers: one per worker in `wanted` order."""
    found, extra = {}, []
    while len(found) < len(wanted):
        c = Client(server)
        if c.worker in wanted and c.worker not in found:
            found[c.worker] = c
        else:
            extra.append(c)
        assert len(extra) < 200, "the kernel never spread connections"
    for c in extra:
        c.close()
    return [found[w] for w in wanted]


def chat_server(*extra, **kw):
    return Percored("--set", "chat.flood_rate=0", *extra,
                    listeners=(("chat", "chat"), ("metrics", "metrics")),
                    workers=WORKERS, **kw)


class RoomOrder(unittest.TestCase):
    def test_every_member_sees_one_order(self):
        self.check_one_order()

    def test_one_order_with_output_coalesced(self):
        # flush_delay batches each member's output: same guarantees.
        self.check_one_order("--set", "chat.flush_delay=5ms")

    def check_one_order(self, *args):
        rooms, per_room, lines = 5, 40, 15 if SLOW == 1 else 6
        with chat_server(*args) as srv:
            clients = [Client(srv) for _ in range(rooms * per_room)]
            self.assertEqual({c.worker for c in clients}, set(range(WORKERS)))
            for i, c in enumerate(clients):
                c.room = f"room{i % rooms}"
                c.join(c.room)
            # Every sender's lines go out interleaved with everyone else's.
            def send_all():
                for n in range(lines):
                    for c in clients:
                        c.send(f"{c.nick} {n}\n")
            sender = threading.Thread(target=send_all)
            sender.start()
            expected = per_room * lines
            numbered = re.compile(rb"(guest\d+): (guest\d+) (\d+)")
            got, pending = gather_numbered(clients, lambda c: numbered,
                                           expected)
            sender.join()
            self.assertFalse(pending, "members still missing lines")
            for r in range(rooms):
                members = [c for c in clients if c.room == f"room{r}"]
                first = got[members[0]]
                self.assertEqual(len(first), expected)
                # every message exactly once, each sender's numbers in order
                self.assertEqual(len(set(first)), expected)
                for c in members:
                    mine = [n for nick, n in first if nick == c.nick.encode()]
                    self.assertEqual(mine, list(range(lines)))
                for c in members[1:]:
                    self.assertEqual(got[c], first,
                                     f"{c.nick} saw room{r} in another order")
            # the room spanned workers for real
            for r in range(rooms):
                self.assertGreater(len({c.worker for c in clients
                                        if c.room == f"room{r}"}), 1)
            for c in clients:
                c.close()

    def test_notices_are_ordered_with_messages(self):
        with chat_server() as srv:
            m1, m2, a, b, c = on_workers(srv, [1, 2, 0, 3, 1][:4]) + [Client(srv)]
            for x in (m1, m2, a, b, c):
                x.join("hall")
            # Without waiting for each other: notices and lines race
            # between workers, yet both listeners must see one sequence.
            a.send("/nick ann\n")
            b.send("one\n")
            c.send("/part\n")
            b.send("two\n")
            a.send("/me waves\n/quit gone fishing\n")
            c.send("/join hall\nback\n")
            c.expect(rf"{c.nick}: back")
            b.send("end\n")
            wants = (f"*** {a.nick} is now known as ann", f"{b.nick}: one",
                     f"*** {c.nick} left hall", f"{b.nick}: two",
                     "* ann waves", "*** ann quit (gone fishing)",
                     f"*** {c.nick} joined hall", f"{c.nick}: back",
                     f"{b.nick}: end")
            seqs = []
            for m in (m1, m2):
                m.expect(rf"\*\*\* {c.nick} joined hall")  # the first join
                # Nothing orders ann's quit before "end" (other workers,
                # no causal link): read until every line has come.
                seq = []
                while not all(w in seq for w in wants):
                    seq.append(m.line())
                seqs.append(seq)
            self.assertEqual(seqs[0], seqs[1])
            # each sender's own order holds
            s = seqs[0]
            self.assertLess(s.index(f"{b.nick}: one"), s.index(f"{b.nick}: two"))
            self.assertLess(s.index("* ann waves"),
                            s.index("*** ann quit (gone fishing)"))
            self.assertLess(s.index(f"*** {c.nick} left hall"),
                            s.index(f"{c.nick}: back"))
            for x in (m1, m2, a, b, c):
                x.close()


class Leaving(unittest.TestCase):
    def test_a_leaver_gets_every_line_before_its_leave(self):
        with chat_server() as srv:
            a, b = on_workers(srv, [0, 1])
            for k in range(12):  # rooms with homes on every worker
                room = f"p{k}"
                a.join(room)
                b.join(room)
                a.send(f"mine {k}\n/part\n")
                m, skipped = a.expect(re.escape(f"OK part {room}"))
                self.assertIn(f"{a.nick}: mine {k}", skipped)
                b.expect(re.escape(f"*** {a.nick} left {room}"))

    def test_join_and_part_back_to_back_are_all_answered(self):
        with chat_server() as srv:
            a = Client(srv)
            a.send("/join r1\n/part\n/join r2\n/join r3\n/part\n")
            answers = [a.expect(r"OK (join|part) .*")[0].group(0)
                       for _ in range(5)]
            self.assertEqual(answers, ["OK join r1", "OK part r1", "OK join r2",
                                       "OK join r3", "OK part r3"])
            a.close()

    def test_rooms_sorted_by_name_and_cut_text_stays_utf8(self):
        with chat_server("--set", "chat.default_room=") as srv:
            a, b, c = Client(srv), Client(srv), Client(srv)
            a.join("a#")
            b.join("a")
            c.command("/rooms", re.escape("OK rooms 2: a(1) a#(1)"))
            c.join("a")
            # a reason cut to 200 bytes must not end inside a character
            b.send("/quit " + "x" * 199 + "\u00e9\n")
            m, _ = c.expect(rf"\*\*\* {b.nick} quit \((x+)\)")
            self.assertEqual(len(m.group(1)), 199)
            a.send("/" + "\u00e9" * 40 + "\n")
            a.expect(r"ERR unknown command /\u00e9+ \(/help lists them\)")
            a.close()
            c.close()


class Nicks(unittest.TestCase):
    def test_racing_for_one_nick_exactly_one_wins(self):
        with chat_server() as srv:
            for round_ in range(10):
                a, b = on_workers(srv, [round_ % WORKERS,
                                        (round_ + 1) % WORKERS])
                nick = f"racer{round_}"
                a.send(f"/nick {nick}\n")
                b.send(f"/nick {nick}\n")
                answers = []
                for x in (a, b):
                    m, _ = x.expect(r"(OK nick|ERR nick) .*")
                    answers.append(m.group(0))
                self.assertEqual(sorted(answers),
                                 [f"ERR nick {nick} is taken", f"OK nick {nick}"])
                # the loser may take it once the winner leaves
                winner, loser = (a, b) if answers[0].startswith("OK") else (b, a)
                winner.close()
                wait_for(lambda: loser.command(f"/nick {nick}", r"(OK|ERR) nick.*")
                         .group(0).startswith("OK"), what="nick released")
                loser.close()

    def test_bad_and_reserved_nicks(self):
        with chat_server() as srv:
            a = Client(srv)
            a.command("/nick 9lives", r"ERR invalid nick.*")
            a.command("/nick a b", r"ERR invalid nick.*")
            a.command("/nick guest999", r"ERR nick guest999 is reserved.*")
            a.command("/nick", re.escape("ERR usage: /nick NAME"))
            a.command("/nick ok_nick", "OK nick ok_nick")
            a.close()

    def test_private_message_across_workers(self):
        with chat_server() as srv:
            a, b = on_workers(srv, [1, 3])
            a.command("/nick alice", "OK nick alice")
            b.command("/nick bob", "OK nick bob")
            a.command("/msg bob hello there", "OK msg bob")
            b.expect(re.escape("alice -> bob: hello there"))
            a.command("/msg nobody hi", "ERR no such nick nobody")
            a.command("/msg bob", re.escape("ERR usage: /msg NICK TEXT"))
            # a line after /nick goes out under the new name
            b.send("/nick bobby\n/msg alice renamed\n")
            a.expect(re.escape("bobby -> alice: renamed"))
            a.close()
            b.close()

    def test_who_and_rooms_span_workers(self):
        with chat_server("--set", "chat.default_room=") as srv:
            clients = on_workers(srv, [0, 1, 2, 3])
            for i, c in enumerate(clients):
                c.command(f"/nick n{i}", f"OK nick n{i}")
            for c in clients[:3]:
                c.join("blue")
            clients[3].join("green")
            clients[3].command("/rooms", re.escape("OK rooms 2: blue(3) green(1)"))
            clients[0].command("/who", re.escape("OK who blue 3: n0 n1 n2"))
            clients[3].command("/part", "OK part green")
            clients[3].command("/who", r"ERR you are not in a room.*")
            clients[3].command("hello?", r"ERR you are not in a room.*")
            clients[3].command("/rooms", re.escape("OK rooms 1: blue(3)"))
            for c in clients:
                c.close()


class BadInput(unittest.TestCase):
    def test_long_lines_and_bad_bytes_keep_the_connection(self):
        with chat_server() as srv:
            a, b = on_workers(srv, [0, 1])
            a.join("x")
            b.join("x")
            a.send(b"A" * 5000 + b"\n")
            a.expect(re.escape("ERR line too long (max 4096 bytes)"))
            # a long line arriving in pieces is refused once, as a whole
            for _ in range(10):
                a.send(b"B" * 1000)
                time.sleep(0.01)
            a.send(b"tail\n")
            a.expect(re.escape("ERR line too long (max 4096 bytes)"))
            a.send(b"C" * 4096 + b"\r\n")  # exactly the limit is fine
            a.send(b"\x1b[2Jgotcha\n")
            a.expect("ERR control characters are not allowed")
            a.send(b"\xc2\x9b31m\n")
            a.expect("ERR control characters are not allowed")
            a.send(b"caf\xe9\n")
            a.expect("ERR invalid UTF-8")
            a.send("caf\u00e9 \u2713\tok\n".encode())
            a.send(b"/frobnicate\n")
            a.expect(r"ERR unknown command /frobnicate.*")
            a.send(b"//slash\n")
            lines = []
            while not lines or not lines[-1].endswith("/slash"):
                lines.append(b.line())
            said = [l for l in lines if l.startswith(a.nick + ":")]
            self.assertEqual(said, [f"{a.nick}: " + "C" * 4096,
                                    f"{a.nick}: caf\u00e9 \u2713\tok",
                                    f"{a.nick}: /slash"])
            a.close()
            b.close()


class SlowAndFast(unittest.TestCase):
    def test_a_reader_that_never_reads_is_cut_off(self):
        # by the chat's own sendq
        self.check_cut_off("--set", "chat.sendq=256K")

    def test_the_framework_output_limit_cuts_off_too(self):
        # by the listener's max_output, below the chat's sendq
        self.check_cut_off("--set", "chat.max_output=300K")

    def check_cut_off(self, *args):
        line = "x" * 1000
        count = 12000  # 12 MB through the room
        with chat_server(*args) as srv:
            slow = Client(srv, rcvbuf=4096)
            fast, talker = Client(srv), Client(srv)
            for c in (slow, fast, talker):
                c.join("busy")
            rss_before = srv.rss_kib()
            readers = (fast, talker)  # the talker hears itself too
            got = {r: 0 for r in readers}

            notices = []

            def read(r):
                while got[r] < count:
                    text = r.line(30)
                    if text.endswith(line):
                        got[r] += 1
                    elif r is fast:
                        notices.append(text)
            threads = [threading.Thread(target=read, args=(r,))
                       for r in readers]
            for t in threads:
                t.start()
            # The readers keep up (at most 64 lines behind, far below
            # sendq); the one that never reads falls behind for good.
            for i in range(count):
                while i - min(got.values()) > 64 and all(
                        t.is_alive() for t in threads):
                    time.sleep(0.001)
                talker.send(line + "\n")
            for t in threads:
                t.join(120 * SLOW)
            self.assertEqual(list(got.values()), [count, count],
                             "a reading member lost lines")
            # The member that was cut off, reading now (within the
            # server's linger), gets whole lines to the last byte, then
            # why it was disconnected, then the end of the stream.
            rest = slow.read_to_end()
            self.assertTrue(rest.endswith(b"\n"), rest[-200:])
            last = rest.decode().splitlines()[-1]
            self.assertEqual(last, "*** disconnected: sendq exceeded")
            for text in rest.decode().splitlines()[1:-1]:
                self.assertTrue(text.endswith(line) or text.startswith("***")
                                or text.startswith("OK "), text[:80])

            def cut():
                return srv.total("percore_connections_closed_total",
                                 listener="chat", reason="output_limit")
            wait_for(lambda: cut() == 1.0, what="the cut member closed")
            # the room heard why
            while f"*** {slow.nick} quit (sendq exceeded)" not in notices:
                notices.append(fast.line())
            # Queued output peaked near one sendq, never near the 12 MB
            # that went through the room; RSS agrees (sanitizers' shadow
            # memory makes RSS meaningless there).
            peak = max(srv.per_worker("percore_worker_output_queued_peak_bytes").values())
            self.assertLess(peak, 300 * 1024 + 256 * 1024)
            if not SANITIZED:
                self.assertLess(srv.rss_kib() - rss_before, 8 * 1024)
            for c in (slow, fast, talker):
                c.close()


class FanOutMemory(unittest.TestCase):
    def test_a_line_held_by_slow_members_is_stored_once_per_worker(self):
        members = 200 if SANITIZED else 1000  # x2 fds: under the 20,000 cap
        lines, size = 50, 2000
        # A small kernel buffer per member, so the lines wait in percored
        # rather than in the kernel.
        with chat_server("--set", "chat.sndbuf=4K") as srv:
            slow = []
            for _ in range(members):
                c = Client(srv, rcvbuf=4096)  # and it never reads
                c.join("big")
                slow.append(c)
            self.assertEqual({c.worker for c in slow}, set(range(WORKERS)))
            talker = Client(srv)
            talker.join("big")
            def totals():
                m = srv.metrics()
                return (sum(v for k, v in m.items()
                            if k[0] == "percore_worker_output_queued_bytes"),
                        sum(v for k, v in m.items()
                            if k[0] == "percore_worker_shared_buffer_bytes"))

            def settle():
                last = [None]

                def settled():
                    now = totals()
                    done, last[0] = now == last[0], now
                    return done
                wait_for(settled, what="queues to settle")
                return last[0]
            # The members' join notices wait for them too: count from here.
            queued0, shared0 = settle()
            rss_before = srv.rss_kib()
            text = "y" * size
            for _ in range(lines):
                talker.send(text + "\n")
            for _ in range(lines):
                talker.expect(rf"{talker.nick}: y+")
            queued1, shared1 = settle()
            queued, shared = queued1 - queued0, shared1 - shared0
            line = size + len(talker.nick) + 3
            # What waits for the members is many references to few copies:
            # at most one copy of each line per worker holding members.
            self.assertGreaterEqual(shared, lines * line)
            self.assertLessEqual(shared, WORKERS * lines * line)
            self.assertGreater(queued, members / 10 * shared,
                               "queued output is not shared references")
            if not SANITIZED:
                # ~80 MB is queued for the members; memory grew by copies
                # per worker and reference blocks, not by a copy per member
                self.assertLess(srv.rss_kib() - rss_before, 24 * 1024)
            for c in slow + [talker]:
                c.close()


class Flood(unittest.TestCase):
    def test_a_fast_sender_is_delayed_never_dropped(self):
        with Percored("--set", "chat.flood_rate=10", "--set",
                      "chat.flood_burst=5",
                      listeners=(("chat", "chat"),), workers=2) as srv:
            a, b = Client(srv), Client(srv)
            a.join("f")
            b.join("f")
            start = time.time()
            a.send("".join(f"n {i}\n" for i in range(25)))
            seen = []
            while len(seen) < 25:
                m, _ = b.expect(rf"{a.nick}: n (\d+)", timeout=30)
                seen.append(int(m.group(1)))
            elapsed = time.time() - start
            self.assertEqual(seen, list(range(25)))
            # 5 at once, then 20 at 10 per second: at least about 2 s
            self.assertGreaterEqual(elapsed, 1.8)
            a.close()
            b.close()

    def test_reload_lifts_flood_control(self):
        cfg = ("[listener chat]\nlisten = 127.0.0.1:{port}\nprotocol = chat\n"
               "flood_rate = 1\nflood_burst = 1\n")
        srv = Percored(listeners=(), workers=2, config="")
        port = __import__("percored").free_port()
        with open(srv.config.name, "w") as f:
            f.write(cfg.format(port=port))
        srv.ports["chat"] = port
        with srv:
            a = Client(srv)
            a.join("r")
            a.send("one\ntwo\nthree\n")
            a.expect(rf"{a.nick}: one")
            with self.assertRaises((socket.timeout, TimeoutError)):
                a.expect(rf"{a.nick}: three", timeout=0.5 / SLOW)
            with open(srv.config.name, "w") as f:
                f.write(cfg.format(port=port).replace("flood_rate = 1",
                                                      "flood_rate = 0"))
            srv.signal(signal.SIGHUP)
            wait_for(lambda: "reloaded" in srv.output(), what="reload")
            a.expect(rf"{a.nick}: three", timeout=5)
            a.send("".join(f"m {i}\n" for i in range(100)))
            # at 1 line/s this would take 100 s
            a.expect(rf"{a.nick}: m 99", timeout=10)
            a.close()


class Lifecycle(unittest.TestCase):
    def test_stop_with_members_on_every_worker(self):
        with chat_server() as srv:
            clients = on_workers(srv, [0, 1, 2, 3])
            for c in clients:
                c.join("last")
            clients[0].send("bye all\n")
            for c in clients:
                c.expect(rf"{clients[0].nick}: bye all")
            out = srv.stop()
            self.assertIn("stopped", out)
            for c in clients:
                c.close()


if __name__ == "__main__":
    unittest.main()

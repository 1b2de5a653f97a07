"""Stopping under heavy traffic ends every member's stream on a whole line:
when the drain timeout runs out (or a second SIGTERM comes), output a
write has begun is finished, the rest dropped, the face's goodbye sent,
then the close. Real percored, chat and irc members reading slowly."""

import re
import signal
import socket
import threading
import time
import unittest

from percored import SLOW, Percored, recv_exactly as read_exactly

LINE = "y" * 300


class Reader(threading.Thread):
    """Reads a member's whole stream, a little at a time, until EOF."""

    def __init__(self, sock, pace):
        super().__init__(daemon=True)
        self.sock, self.pace, self.data = sock, pace, b""

    def run(self):
        self.sock.settimeout(30 * SLOW)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.data += chunk
                time.sleep(self.pace)
        except OSError:
            self.data += b"<error>"
        # As a client does at EOF: the server then need not wait for it.
        self.sock.close()


def chat_member(port, room):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"/join {room}\n".encode())
    return s


def irc_member(port, nick, channel):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :x\r\nJOIN {channel}\r\n"
              .encode())
    return s


def talk(sock, stop, chat):
    n = 0
    try:
        while not stop.is_set():
            if chat:
                sock.sendall(f"{n} {LINE}\n".encode())
            else:
                sock.sendall(f"PRIVMSG #loud :{n} {LINE}\r\n".encode())
            n += 1
    except OSError:
        pass


class StopUnderLoad(unittest.TestCase):
    def run_stop(self, *args, twice=False):
        with Percored("--set", "chat.flood_rate=0", "--set", "irc.flood_rate=0",
                      "--set", "chat.sendq=256M", "--set", "irc.sendq=256M",
                      "--set", "chat.max_output=512M",
                      "--set", "irc.max_output=512M", *args,
                      listeners=(("chat", "chat"), ("irc", "irc")),
                      workers=2) as srv:
            members, readers = [], []
            # Readers that keep reading, slower than the room talks: their
            # output piles up in the server, none of them ever stops (a
            # peer that stops reading for good is the linger's business).
            for i in range(3):
                c = chat_member(srv.ports["chat"], "loud")
                irc = irc_member(srv.ports["irc"], f"r{i}", "#loud")
                members += [(c, "chat"), (irc, "irc")]
            time.sleep(0.5 * SLOW)  # joined
            for s, face in members:
                r = Reader(s, 0.001)
                r.face = face
                r.start()
                readers.append(r)
            stop = threading.Event()
            talkers = [chat_member(srv.ports["chat"], "loud"),
                       irc_member(srv.ports["irc"], "talker", "#loud")]
            threads = [threading.Thread(target=talk, args=(t, stop, i == 0),
                                        daemon=True)
                       for i, t in enumerate(talkers)]
            for t in threads:
                t.start()
            time.sleep(1.5 * SLOW)  # output piles up behind the readers
            srv.signal(signal.SIGTERM)
            if twice:
                time.sleep(0.2)
                srv.signal(signal.SIGTERM)
            for r in readers:
                r.join(60 * SLOW)
            stop.set()
            for t, sock in zip(threads, talkers):
                t.join(10 * SLOW)
                sock.close()
            out = srv.stop()
            self.assertIn("stopped", out)
            torn = 0
            for r in readers:
                self.assertFalse(r.is_alive(), "a member was never closed")
                self.assertNotIn(b"<error>", r.data)
                if r.face == "chat":
                    self.assertTrue(r.data.endswith(b"\n"), r.data[-120:])
                    lines = r.data.decode().split("\n")[:-1]
                    self.assertEqual(lines[-1], "*** server shutting down")
                    body = re.compile(rf"\S+: \d+ {LINE}|\*\*\* .*|OK .*")
                else:
                    self.assertTrue(r.data.endswith(b"\r\n"), r.data[-120:])
                    lines = r.data.decode().split("\r\n")[:-1]
                    self.assertRegex(lines[-1], r"ERROR :Closing Link: \S+ "
                                                r"\(Server shutting down\)")
                    body = re.compile(rf":\S+ PRIVMSG #loud :\d+ {LINE}"
                                      r"|:\S+ \d{3} .*|:\S+ (JOIN|PART|QUIT) "
                                      r".*|:\S+ (CAP|MODE) .*")
                for text in lines[:-1]:
                    if not body.fullmatch(text):
                        torn += 1
            self.assertEqual(torn, 0, "a member received a torn line")

    def test_drain_timeout_ends_every_stream_on_a_whole_line(self):
        self.run_stop("--set", "server.drain_timeout=0.3")

    def test_second_sigterm_ends_every_stream_on_a_whole_line(self):
        self.run_stop("--set", "server.drain_timeout=30", twice=True)

    def test_every_backend_with_the_acceptor_ends_streams_on_whole_lines(self):
        from test_backends import fault_backends
        for backend in fault_backends():
            with self.subTest(backend=backend):
                self.run_stop("--set", "server.drain_timeout=0.3",
                              "--backend", backend,
                              "--distribution", "acceptor")


def read_to_eof(sock, timeout=10):
    sock.settimeout(timeout * SLOW)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


class StopSessions(unittest.TestCase):
    def test_sessions_are_told_at_once_and_the_rest_drains(self):
        """At SIGTERM, sessions that would never end by themselves are
        ended at once with their goodbye (chat, irc, WebSocket 1001), an
        idle HTTP connection is closed and one with a request under way
        gets its answer with Connection: close; an echo connection is
        left to finish, however long the drain_timeout."""
        from webclient import Http, Ws
        with Percored("--set", "server.drain_timeout=600",
                      listeners=(("chat", "chat"), ("irc", "irc"),
                                 ("web", "web"), ("echo", "echo")),
                      workers=2) as srv:
            chat = chat_member(srv.ports["chat"], "end")
            irc = irc_member(srv.ports["irc"], "ender", "#end")
            ws = Ws(srv.ports["web"])
            idle = Http(srv.ports["web"])
            idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(idle.response()[0], 200)
            busy = Http(srv.ports["web"])
            busy.send("GET / HTTP/1.1\r\nHost: x\r\n")  # not finished
            echo = srv.connect("echo")
            time.sleep(0.5 * SLOW)
            srv.signal(signal.SIGTERM)
            self.assertTrue(read_to_eof(chat).endswith(
                b"*** server shutting down\n"))
            self.assertRegex(read_to_eof(irc).decode(),
                             r"ERROR :Closing Link: \S+ \(Server shutting "
                             r"down\)\r\n$")
            self.assertEqual(ws.close_code(), (1001, "server shutting down"))
            self.assertTrue(idle.closed())
            busy.send("\r\n")
            status, headers, _ = busy.response()
            self.assertEqual((status, headers["connection"]), (200, "close"))
            self.assertTrue(busy.closed())
            echo.sendall(b"still here\n")  # the drain waits for it
            self.assertEqual(read_exactly(echo, 11), b"still here\n")
            for s in (chat, irc, ws, echo):
                s.close()
            srv.wait_exit()  # the last connection gone: the drain is over


    def test_a_member_that_half_closes_still_gets_all_and_the_goodbye(self):
        """A member with output queued, ended by the stop, that shuts its
        sending side before reading: what was queued still comes whole,
        then the goodbye, then EOF (its EOF does not end the sending)."""
        with Percored("--set", "server.drain_timeout=600",
                      "--set", "chat.flood_rate=0", "--set", "chat.sendq=64M",
                      "--set", "chat.max_output=128M",
                      "--set", "chat.sndbuf=16K",  # the queue stays ours
                      listeners=(("chat", "chat"),), workers=2) as srv:
            m = socket.socket()
            m.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            m.connect(("127.0.0.1", srv.ports["chat"]))
            m.sendall(b"/join pile\n")
            talker = chat_member(srv.ports["chat"], "pile")
            echoes = Reader(talker, 0)  # its own lines: it reads them
            echoes.start()
            time.sleep(0.5 * SLOW)
            count = 3000
            talker.sendall(b"".join(f"{i} {LINE}\n".encode()
                                    for i in range(count)))
            time.sleep(1 * SLOW)  # queued behind m's full window
            srv.signal(signal.SIGTERM)
            time.sleep(0.3 * SLOW)
            m.shutdown(socket.SHUT_WR)
            data = read_to_eof(m, 30).decode()
            got = [int(x) for x in re.findall(rf": (\d+) {LINE}\n", data)]
            self.assertEqual(got, list(range(count)))
            self.assertTrue(data.endswith("*** server shutting down\n"),
                            data[-200:])
            echoes.join(10 * SLOW)
            m.close()
            srv.wait_exit()


class SignalStorm(unittest.TestCase):
    def test_sigterms_until_the_end_still_exit_cleanly(self):
        """SIGTERM after SIGTERM until the process is gone: the later ones
        cut the drain short, none kills the process while it tidies up
        (exit status 0, not death by signal)."""
        for _ in range(3):
            with Percored(listeners=(("chat", "chat"),), workers=2) as srv:
                readers = [Reader(chat_member(srv.ports["chat"], "bye"), 0)
                           for _ in range(4)]
                time.sleep(0.3 * SLOW)
                for r in readers:
                    r.start()  # each closes at EOF, as a client does
                deadline = time.time() + 30 * SLOW
                while srv.proc.poll() is None and time.time() < deadline:
                    srv.proc.send_signal(signal.SIGTERM)
                    time.sleep(0.0005)
                srv.wait_exit()  # status 0, no sanitizer report
                for r in readers:
                    r.join(10 * SLOW)
                    self.assertTrue(r.data.endswith(
                        b"*** server shutting down\n"), r.data[-200:])

    def test_reloads_and_stats_during_traffic_lose_no_line(self):
        """200 SIGHUPs and SIGUSR1s while a room talks: every member gets
        every line, in order, and the server stops cleanly."""
        with Percored("--set", "chat.flood_rate=0", "--set",
                      "irc.flood_rate=0",
                      listeners=(("chat", "chat"), ("irc", "irc")),
                      workers=2) as srv:
            members = [chat_member(srv.ports["chat"], "storm")
                       for _ in range(3)]
            ircs = [irc_member(srv.ports["irc"], f"s{i}", "#storm")
                    for i in range(3)]
            time.sleep(0.5 * SLOW)
            readers = [Reader(m, 0) for m in members + ircs]
            for r in readers:
                r.start()
            talker = chat_member(srv.ports["chat"], "storm")
            time.sleep(0.3 * SLOW)
            count = 3000
            for i in range(count):
                talker.sendall(f"{i} {LINE}\n".encode())
                if i % 15 == 0:
                    srv.signal(signal.SIGHUP if i % 30 else signal.SIGUSR1)
            time.sleep(2 * SLOW)
            for m in members + ircs + [talker]:
                m.shutdown(socket.SHUT_WR)
            for r in readers:
                r.join(30 * SLOW)
            srv.stop()  # exit 0, no sanitizer report
            for r in readers:
                got = [int(x) for x in re.findall(
                    rb"(?:: |:)(\d+) " + LINE.encode() + rb"\r?\n", r.data)]
                self.assertEqual(got, list(range(count)))
            for m in members + ircs + [talker]:
                m.close()


if __name__ == "__main__":
    unittest.main()

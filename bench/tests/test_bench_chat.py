"""percore-bench's chat family against real servers (chat: percored's
chat face, redis, nats, irc to percored and ngircd; ws: percored's web
face), each briefly, every line delivered in order, and the checks that
catch a server relaying wrong. The other modes are in test_bench.py.
Run by ctest (bench/CMakeLists.txt) with PERCORED and PERCORE_BENCH
set."""

import os
import shutil
import subprocess
import threading
import unittest

from bench_support import BenchTest, FakeServer, bench, wait_port
from percored import BINARY as PERCORED, SLOW, Percored, free_port

import ircbench  # bench/run's ngircd config
import webbench  # bench/run's web case

CHAT = ("--set", "chat.flood_rate=0", "--set", "chat.default_room=")


def percored_speaks_irc():
    """Whether this percored has the irc face: its config check takes
    an irc listener."""
    try:
        p = subprocess.run([PERCORED, "-t", "--listen",
                            f"irc@127.0.0.1:{free_port()}"],
                           capture_output=True, timeout=10 * SLOW)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0


PERCORED_IRC = percored_speaks_irc()


class ChatModesTest(BenchTest):

    # ---- chat -----------------------------------------------------------

    def test_chat_against_percore_delivers_every_line_in_order(self):
        with Percored(*CHAT, listeners=(("chat", "chat"),), workers=2) as srv:
            status, r = bench("chat", "-a", f":{srv.ports['chat']}",
                              "--members", 40, "--senders", 2, "-p", 2,
                              "--rooms", 2, "-t", 2, "-d", 1,
                              "--server-pid", srv.proc.pid)
        self.check_report(status, r, "chat")
        chat = r["chat"]
        self.assertGreater(chat["sent"], 0)
        self.assertEqual(chat["received"], chat["expected"])
        self.assertEqual(chat["expected"], chat["sent"] * 40)

    def test_chat_stalled_members_are_cut_and_the_rest_served(self):
        # Small buffers (sendq and the kernel's) and 1 KB lines, so the
        # members that stop reading pass sendq within a few dozen lines,
        # even in a sanitizer build. Open loop at a pace the members that
        # read keep up with (a closed loop only bounds what the senders
        # themselves have not heard back). 150 lines/s: a reading member
        # may fall a third of a second behind (a loaded machine, a
        # sanitizer) before sendq cuts it; a stalled one passes sendq and
        # the kernel's buffers (about 180 KB) in about 1.2 s of the 3.
        with Percored(*CHAT, "--set", "chat.sendq=48K", "--set",
                      "chat.sndbuf=4K", listeners=(("chat", "chat"),),
                      workers=2) as srv:
            status, r = bench("chat", "-a", f":{srv.ports['chat']}",
                              "--members", 30, "--senders", 2, "-r", 150,
                              "-s", 1000, "--stalled", 3, "--rooms", 2,
                              "-t", 2, "-d", 3, "-w", "0.2")
        self.check_report(status, r, "chat")
        chat = r["chat"]
        self.assertEqual(chat["stalled"], 6)
        self.assertEqual(chat["stalled_cut"], 6)
        # every member that kept reading got every line
        self.assertEqual(chat["expected"], chat["sent"] * 27)
        self.assertEqual(chat["received"], chat["expected"])

    def test_chat_open_loop_against_percore(self):
        with Percored(*CHAT, listeners=(("chat", "chat"),), workers=2) as srv:
            status, r = bench("chat", "-a", f":{srv.ports['chat']}",
                              "--members", 20, "--senders", 2, "-r", 200,
                              "-d", 1)
        self.check_report(status, r, "chat")
        self.assertGreater(r["chat"]["sent"], 150)

    # ---- ws ---------------------------------------------------------------

    def test_ws_against_percored_web_delivers_every_line_in_order(self):
        # Two workers: the members' nicks must be unique across them, and
        # the room's one order holds for every member on either.
        with Percored(*webbench.web_args(), listeners=(("web", "web"),),
                      workers=2) as srv:
            status, r = bench("ws", "-a", f":{srv.ports['web']}",
                              "--members", 40, "--senders", 2, "-p", 4,
                              "-t", 2, "-d", 1, "-w", "0.2",
                              "--server-pid", srv.proc.pid)
        self.check_report(status, r, "ws")
        self.assertEqual(r["config"]["target"], "web")
        self.assertEqual(r["connections"]["opened"], 40)
        chat = r["chat"]
        self.assertGreater(chat["sent"], 0)
        self.assertEqual(chat["expected"], chat["sent"] * 40)
        self.assertEqual(chat["received"], chat["expected"])
        self.assertGreater(r["server"]["cpu_s"], 0)

    def _external(self, binary, argv_of, target):
        if not shutil.which(binary):
            self.skipTest(f"{binary} is not installed (bench/run installs it)")
        port = free_port()
        p = subprocess.Popen(argv_of(port), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            wait_port(port, p)
            status, r = bench("chat", "--target", target, "-a", f":{port}",
                              "--members", 30, "--senders", 2, "-p", 2,
                              "-d", 1)
        finally:
            p.terminate()
            p.wait(10)
        self.check_report(status, r, "chat")
        self.assertEqual(r["chat"]["received"], r["chat"]["expected"])

    def test_chat_speaks_redis_pubsub(self):
        self._external("redis-server", lambda port: [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no"], "redis")

    def test_chat_speaks_nats(self):
        self._external("nats-server", lambda port: [
            "nats-server", "-a", "127.0.0.1", "-p", str(port)], "nats")

    # ---- irc ------------------------------------------------------------

    def _irc(self, port, pid):
        """Two channels of 15 on two threads, 2 senders each, closed loop:
        every line reaches the other 14 members, never its sender."""
        status, r = bench("chat", "--target", "irc", "-a", f":{port}",
                          "--rooms", 2, "--members", 15, "--senders", 2,
                          "-p", 2, "-t", 2, "-d", 1, "-w", 0.2,
                          "--server-pid", pid, timeout=30)
        self.check_report(status, r, "chat")
        chat = r["chat"]
        self.assertEqual(r["config"]["target"], "irc")
        self.assertEqual(r["connections"]["opened"], 30)
        self.assertGreater(chat["sent"], 0)
        self.assertEqual(chat["per_line"], 14)
        self.assertEqual(chat["expected"], chat["sent"] * 14)
        self.assertEqual(chat["received"], chat["expected"])
        self.assertEqual(r["errors"]["lost"], 0)
        self.assertGreater(r["server"]["cpu_s"], 0)

    def test_chat_speaks_irc_to_ngircd(self):
        if not os.access(ircbench.NGIRCD, os.X_OK):
            self.skipTest(f"{ircbench.NGIRCD} is not installed "
                          "(apt-get install ngircd)")
        port = free_port()
        ng = ircbench.Ngircd(port)
        p = subprocess.Popen(ng.argv(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            wait_port(port, p)
            self._irc(port, p.pid)
        finally:
            p.terminate()
            p.wait(10)
            ng.remove()

    @unittest.skipUnless(PERCORED_IRC, "this percored has no irc face yet "
                         "(percored -t --listen irc@... fails)")
    def test_chat_speaks_irc_to_percored(self):
        with Percored("--set", "irc.flood_rate=0",
                      listeners=(("irc", "irc"),), workers=2) as srv:
            self._irc(srv.ports["irc"], srv.proc.pid)

    def test_irc_sender_hearing_its_own_line_is_an_error(self):
        """A 'server' that relays every PRIVMSG to every member, its
        sender too: the echo is counted, never taken for a delivery."""
        members = []
        lock = threading.Lock()

        def irc(conn):
            nick = None
            for line in conn.makefile("rb"):
                word = line.split()
                if word[0] == b"NICK":
                    nick = word[1]
                    conn.sendall(b":fake 001 " + nick + b" :hi\r\n")
                elif word[0] == b"JOIN":
                    conn.sendall(b":" + nick + b"!u@h JOIN :" + word[1] +
                                 b"\r\n:fake 366 " + nick + b" " + word[1] +
                                 b" :End\r\n")
                    with lock:
                        members.append(conn)
                elif word[0] == b"PRIVMSG":
                    with lock:
                        for m in members:
                            m.sendall(b":" + nick + b"!u@h " + line)
        with FakeServer(irc) as fake:
            status, r = bench("chat", "--target", "irc", "-a",
                              f":{fake.port}", "--members", 3, "-r", 20,
                              "-d", 0.5, "--drain", 1)
        self.assertGreater(r["chat"]["sent"], 0)
        self.assertEqual(r["errors"]["protocol"], r["chat"]["sent"])
        self.assertEqual(r["chat"]["received"], r["chat"]["expected"])
        self.assertEqual(status, 1)
    def test_chat_lines_out_of_order_are_counted(self):
        """A 'chat server' that swaps every two lines it relays."""
        members = []
        lock = threading.Lock()

        def chat(conn):
            f = conn.makefile("rb")
            held = None
            for line in f:
                if line.startswith(b"/join "):
                    room = line[6:].strip()
                    conn.sendall(b"*** hello\nOK join " + room + b"\n")
                    with lock:
                        members.append(conn)
                    continue
                out = b"someone: " + line
                if held is None:
                    held = out
                    continue
                with lock:
                    for m in members:
                        m.sendall(out + held)
                held = None
        with FakeServer(chat) as fake:
            status, r = bench("chat", "-a", f":{fake.port}", "--members", 3,
                              "--senders", 1, "-p", 2, "-d", 0.5,
                              "--drain", 1)
        self.assertGreater(r["errors"]["order"], 0)
        self.assertEqual(status, 1)


if __name__ == "__main__":
    unittest.main()

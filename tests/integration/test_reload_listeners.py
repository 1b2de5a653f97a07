"""A reload adds, moves and removes listeners while clients stay
connected (issue 15): with 2 and 4 workers, in both distributions, echo
and chat clients keep talking byte-exact through a reload that adds a
listener, one that moves one to another port, one that removes one, and
one that cannot bind and so changes nothing."""

import os
import re
import signal
import socket
import unittest

from percored import SLOW, Percored, free_port, recv_exactly, wait_for
from test_chat import Client


def listener(name, proto, port):
    return f"[listener {name}]\nlisten = 127.0.0.1:{port}\nprotocol = {proto}\n"


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2 * SLOW).close()
        return False
    except ConnectionRefusedError:
        return True


class ReloadListeners(unittest.TestCase):
    def reload(self, srv, text, done="reloaded"):
        """Writes the config, sends SIGHUP, waits for the outcome line."""
        with open(srv.config.name, "w") as f:
            f.write(text)
        before = srv.output().count(done)
        srv.signal(signal.SIGHUP)
        wait_for(lambda: srv.output().count(done) > before, what=done)

    def echo(self, socks, rounds=2):
        for r in range(rounds):
            for s in socks:
                data = os.urandom(3000 + r)
                s.sendall(data)
                self.assertEqual(recv_exactly(s, len(data)), data)

    def chat(self, a, b, text):
        """a says text in the room both are in; both read it exactly."""
        a.send(text + "\n")
        for c in (a, b):
            c.expect(re.escape(f"{a.nick}: {text}"))

    def check(self, workers, distribution):
        pa, pb, pb2, pc, pd = (free_port() for _ in range(5))
        server = f"[server]\ndistribution = {distribution}\n"
        first = server + listener("A", "echo", pa) + listener("B", "chat", pb)
        with Percored(config=first, listeners=(), workers=workers) as srv:
            srv.ports.update(A=pa, B=pb, C=pc)
            echoes = [srv.connect("A") for _ in range(2 * workers)]
            b1, b2 = Client(srv, "B"), Client(srv, "B")
            b1.join("r")
            b2.join("r")
            self.echo(echoes)
            self.chat(b1, b2, "before")

            # 1. C is added: served at once, nothing else moves.
            added = first + listener("C", "echo", pc)
            self.reload(srv, added)
            with srv.connect("C") as c:
                self.echo([c])
            self.echo(echoes)
            self.chat(b2, b1, "after add")
            self.assertIn(f"listener C added on 127.0.0.1:{pc}", srv.output())

            # 2. B moves: its clients stay, the new port serves, the old
            # one is refused.
            moved = (server + listener("A", "echo", pa) +
                     listener("B", "chat", pb2) + listener("C", "echo", pc))
            self.reload(srv, moved)
            self.chat(b1, b2, "after move")
            srv.ports["B"] = pb2
            b3 = Client(srv, "B")
            b3.join("r")
            self.chat(b3, b1, "new port")
            b2.expect(re.escape(f"{b3.nick}: new port"))
            wait_for(lambda: refused(pb), what="the old port refused")
            self.echo(echoes)

            # 3. A is removed: its clients keep echoing until they close,
            # new ones are refused.
            removed = (server + listener("B", "chat", pb2) +
                       listener("C", "echo", pc))
            self.reload(srv, removed)
            wait_for(lambda: refused(pa), what="the removed port refused")
            self.echo(echoes, rounds=3)
            self.chat(b2, b3, "after remove")
            for s in echoes:
                s.close()
            self.assertRegex(srv.output(), r"listener A removed from "
                             rf"127\.0\.0\.1:{pa}: new connections are "
                             rf"refused, its {2 * workers} open ones")

            # 4. D's port is taken: the whole reload is refused, so C (which
            # it would also remove) and B stay.
            pe = free_port()
            with socket.socket() as holder:
                # With SO_REUSEPORT, as percored's own sockets: only its
                # check that nobody else holds the port can refuse D, and a
                # socket percored bound anyway would share the port.
                holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                holder.bind(("127.0.0.1", pd))
                holder.listen()
                # E comes first and binds: the refusal must close it again.
                bad = (server + listener("B", "chat", pb2) +
                       listener("E", "echo", pe) + listener("D", "echo", pd))
                self.reload(srv, bad, done="reload refused")
                self.assertRegex(srv.output(), r"reload refused, keeping the "
                                 r"running config and listeners: \[listener "
                                 rf"D\] \(.*\): cannot listen on 127\.0\.0\.1:"
                                 rf"{pd}: Address already in use")
                with srv.connect("C") as c:
                    self.echo([c])
                self.chat(b1, b3, "after refusal")
                self.assertTrue(refused(pe), "E's socket was left open")
                # The held port is still only ours: every connection comes
                # to the holder.
                holder.settimeout(5 * SLOW)
                for _ in range(8):
                    probe = socket.create_connection(("127.0.0.1", pd))
                    holder.accept()[0].close()
                    probe.close()
            # The config on disk still names D: fix it and reload again.
            self.reload(srv, removed)
            for c in (b1, b2, b3):
                c.close()
            out = srv.stop()
        self.assertNotIn("needs a restart", out)

    def test_reuseport_2_workers(self):
        self.check(2, "reuseport")

    def test_reuseport_4_workers(self):
        self.check(4, "reuseport")

    def test_acceptor_2_workers(self):
        self.check(2, "acceptor")

    def test_acceptor_4_workers(self):
        self.check(4, "acceptor")


class ReloadSockets(unittest.TestCase):
    def test_two_listeners_swap_ports_and_a_module_changes_under_one(self):
        """Sockets follow addresses: swapping two listeners' ports, or
        changing the module on a port, needs no bind beside a running
        socket."""
        p1, p2 = free_port(), free_port()
        text = ("[listener X]\nlisten = 127.0.0.1:%d\nprotocol = echo\n"
                "[listener Y]\nlisten = 127.0.0.1:%d\nprotocol = %s\n")
        with Percored(config=text % (p1, p2, "echo"), listeners=(),
                      workers=2) as srv:
            kept = socket.create_connection(("127.0.0.1", p1))
            # Served by X before the reload (one still in the socket's
            # queue would be Y's: the socket passes to Y with its queue).
            kept.sendall(b"X")
            self.assertEqual(recv_exactly(kept, 1), b"X")
            with open(srv.config.name, "w") as f:
                f.write(text % (p2, p1, "chat"))
            srv.signal(signal.SIGHUP)
            wait_for(lambda: "reloaded" in srv.output(), what="reload")
            self.assertNotIn("reload refused", srv.output())
            # p1 now belongs to Y, which speaks chat, on every worker once
            # each has taken the reload ("reloaded" is main's word, logged
            # as the workers are told).
            def chat_on_p1():
                with socket.create_connection(("127.0.0.1", p1)) as s:
                    s.settimeout(0.5 * SLOW)
                    try:
                        return s.recv(100).startswith(b"*** welcome")
                    except socket.timeout:
                        return False  # still X's echo on this worker
            wait_for(lambda: all(chat_on_p1() for _ in range(8)),
                     what="chat on p1 from every worker")
            with socket.create_connection(("127.0.0.1", p2)) as s:
                s.sendall(b"x")
                self.assertEqual(recv_exactly(s, 1), b"x")
            kept.sendall(b"still X")
            self.assertEqual(recv_exactly(kept, 7), b"still X")
            kept.close()

    def test_a_unix_listener_moves_to_a_new_path(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            one, two = os.path.join(d, "one.sock"), os.path.join(d, "two.sock")
            text = "[listener U]\nlisten = unix:%s\nprotocol = echo\n"
            with Percored(config=text % one, listeners=(), workers=2) as srv:
                old = socket.socket(socket.AF_UNIX)
                old.connect(one)
                with open(srv.config.name, "w") as f:
                    f.write(text % two)
                srv.signal(signal.SIGHUP)
                wait_for(lambda: "reloaded" in srv.output(), what="reload")
                wait_for(lambda: not os.path.exists(one),
                         what="the old path unlinked")
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(two)
                    s.sendall(b"new")
                    self.assertEqual(recv_exactly(s, 3), b"new")
                old.sendall(b"old")
                self.assertEqual(recv_exactly(old, 3), b"old")
                old.close()
            self.assertFalse(os.path.exists(two))


class ReloadFailures(unittest.TestCase):
    def test_a_module_that_fails_on_one_worker_leaves_no_stale_socket(self):
        """A module that does not start on worker 1 at a reload: that
        worker takes none of the listener's connections, and the socket it
        gave up stays its own until the listener goes, so a later reload
        that hands the address on, then removes it, touches no other
        connection (it once closed an echo client's reused fd)."""
        import tempfile
        from test_modules import build_module
        here = os.path.dirname(os.path.abspath(__file__))
        with tempfile.TemporaryDirectory() as d:
            so = build_module(os.path.join(here, "balky.c"), d)
            pe, pf = free_port(), free_port()
            head = (f"[server]\nmodules = {so}\n" +
                    listener("E", "echo", pe))
            with Percored(config=head, listeners=(), workers=2) as srv:
                srv.ports["E"] = pe
                self.reload(srv, head + listener("F", "balky", pf) +
                            "refuse_on = 1\n")
                wait_for(lambda: "takes no connections here" in
                         srv.output(), what="worker 1 refusing F")
                for _ in range(6):  # F's connections reach worker 0 only
                    with socket.create_connection(("127.0.0.1", pf),
                                                  timeout=5 * SLOW) as f:
                        f.sendall(b"f")
                        self.assertEqual(recv_exactly(f, 1), b"f")
                echoes = [srv.connect("E") for _ in range(6)]
                self.reload(srv, head + listener("G", "echo", pf))
                ReloadListeners.echo(self, echoes)
                self.reload(srv, head)
                ReloadListeners.echo(self, echoes)
                for e in echoes:
                    e.close()
                self.assertNotIn("drain timeout", srv.stop())

    reload = ReloadListeners.reload


class ReloadFaces(unittest.TestCase):
    def test_removing_the_first_face_leaves_the_rooms_working(self):
        """The room core is shared by every face listener of a worker: a
        reload removing the first of them (and that listener's last
        connections closing) leaves the other faces' rooms working
        across workers."""
        pa, pb, pc = free_port(), free_port(), free_port()
        first = listener("A", "chat", pa) + listener("B", "irc", pb)
        with Percored(config=first, listeners=(), workers=4) as srv:
            srv.ports.update(A=pa, C=pc)
            gone = [Client(srv, "A") for _ in range(4)]
            ircs = []
            for i in range(6):
                s = socket.create_connection(("127.0.0.1", pb),
                                             timeout=10 * SLOW)
                s.sendall(f"NICK i{i}\r\nUSER i{i} 0 * :x\r\n"
                          "JOIN #r\r\n".encode())
                ircs.append([s, b""])
            # B stays, C (chat) comes: A's clients leave, its copies go.
            self.reload(srv, listener("B", "irc", pb) +
                        listener("C", "chat", pc))
            for c in gone:
                c.close()
            chat = Client(srv, "C")
            chat.join("r")  # the channel #r
            for i, (s, _) in enumerate(ircs):
                s.sendall(f"PRIVMSG #r :from i{i}\r\n".encode())
            chat.send("from chat\n")
            for me, entry in enumerate(ircs):  # IRC echoes no own line
                for text in [f"from i{i}" for i in range(6) if i != me] + \
                        ["from chat"]:
                    entry[1] = self.read_until(entry[0], entry[1],
                                               text.encode())
            heard = set()  # in the room's order, not in i's
            while len(heard) < 6:
                m, _ = chat.expect(r"i(\d): from i\1")
                heard.add(m.group(1))
            for s, _ in ircs:
                s.close()
            chat.close()

    def read_until(self, s, buf, text):
        while text not in buf:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                self.fail(f"no {text!r} in {buf[-400:]!r}")
            self.assertTrue(chunk, f"closed before {text!r}: {buf[-300:]!r}")
            buf += chunk
        return buf

    reload = ReloadListeners.reload


if __name__ == "__main__":
    unittest.main()

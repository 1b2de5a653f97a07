"""Rooms across percored nodes sequenced by a real Redis (docs/scaling.md):
one order for every member on every node and face (chat, irc, web), nicks
unique across nodes, private lines between nodes, and the [cluster]
section's checks."""

import os
import socket
import time
import unittest

from cluster import (Chat, Irc, Redis, all_delivered, check_rooms,
                     cluster_metric, crowd, node, pump, seen, wait_line)
from percored import SLOW, run

# Sized for CI's three runs (plain, TSan, ASan); PC_CLUSTER_CLIENTS=300
# runs the full 300 clients.
CLIENTS = int(os.environ.get("PC_CLUSTER_CLIENTS", "45"))
ROOMS = 5
LINES = 8


def ask_until(case, c, command, answer, timeout=5):
    """Asks again until the answer is there: another node's members reach
    Redis a moment after that node answered its own joiner."""
    deadline = time.time() + timeout * SLOW
    while True:
        mark = len(c.lines)
        c.send(command)
        pump([c], lambda: len(c.lines) > mark, timeout=timeout)
        if any(answer in l for l in c.lines[mark:]):
            return
        case.assertLess(time.time(), deadline, f"{command}: {c.lines[mark:]}")
        time.sleep(0.1)


def publications(buf):
    """(messages, lines) of a room's channel as a raw subscriber got it:
    each message "FIRST EPOCH COUNT LEN,... PAYLOADS" holds COUNT lines
    (a payload has 13 tabs before its text)."""
    messages, lines = 0, 0
    parts = buf.split(b"\r\n")
    for i, p in enumerate(parts):  # *3 $7 message $N channel $N data
        if p == b"message" and i + 4 < len(parts):
            head = parts[i + 4].split(b" ")
            if len(head) > 3 and head[0].isdigit() and \
                    parts[i + 4].count(b"\t") >= 13:
                messages += 1
                lines += int(head[2])
    return messages, lines


class ClusterCase(unittest.TestCase):
    unix = False

    def setUp(self):
        self.redis = Redis(unix=self.unix).start()
        self.nodes = []
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        for n in self.nodes:
            if n.proc.poll() is None:
                n.stop()
            n.__exit__(None, None, None)
        self.redis.stop()

    def start_nodes(self, count=3, **kw):
        self.nodes = [node(self.redis, f"n{i}", **kw) for i in range(count)]
        return self.nodes


class TestClusterOrder(ClusterCase):
    def test_cluster_room_order_is_same_for_all_members_on_all_nodes(self):
        nodes = self.start_nodes()
        rooms = [f"r{i}" for i in range(ROOMS)]
        members, everyone = crowd(nodes, rooms, CLIENTS // ROOMS)
        self.clients = everyone
        sent = {r: [] for r in rooms}
        for n in range(LINES):
            for c in everyone:
                c.say(f"L {c.nick} {n}")
                sent[c.room].append((c.nick, n))
        pump(everyone, all_delivered(members, LINES), timeout=30,
             what="every line at every member")
        check_rooms(members, sent)
        # Each room's members are on every node: the lines crossed nodes.
        for r, cs in members.items():
            self.assertEqual(len({id(c.sock) for c in cs}), len(cs))
        time.sleep(1.2)  # the series follow the counters once a second
        for n in nodes:
            self.assertIn("Redis link up", n.output())
            self.assertEqual(cluster_metric(n, "percore_cluster_link_up"), 2)
            self.assertGreater(cluster_metric(
                n, "percore_cluster_delivered_total", **{"from": "other_node"}),
                0)
            self.assertGreater(cluster_metric(
                n, "percore_cluster_published_total", result="ok"), 0)

    def test_cluster_nicks_are_unique_across_nodes(self):
        a, b, c = self.start_nodes()
        x = Chat(a, "chat", "ann")
        y = Irc(b, "irc", "bob")
        z = Chat(c, "chat", "carl")
        self.clients = [x, y, z]
        wait_line(self.clients, {x: x.login(), y: y.login(), z: z.login()})
        z.send("/nick ANN")  # rfc1459 folding: the same nick as ann
        pump(self.clients, lambda: seen(z, "ERR nick ANN is taken"))
        y.send("NICK Ann")
        pump(self.clients, lambda: seen(y, " 433 "))
        # A freed nick can be taken on another node at once.
        x.send("/nick ann2")
        pump(self.clients, lambda: seen(x, "OK nick ann2"))
        z.send("/nick ann")
        pump(self.clients, lambda: seen(z, "OK nick ann"))

    def test_cluster_private_lines_cross_nodes_both_faces(self):
        a, b = self.start_nodes(2)
        x = Chat(a, "chat", "ann")
        y = Irc(b, "irc", "bob")
        self.clients = [x, y]
        wait_line(self.clients, {x: x.login(), y: y.login()})
        x.send("/msg bob hello from a")
        pump(self.clients, lambda: seen(y, "PRIVMSG bob :hello from a")
             and seen(x, "OK msg bob"))
        y.send("PRIVMSG ann :hello from b")
        pump(self.clients, lambda: seen(x, "bob -> ann: hello from b"))
        x.send("/msg nobody hi")
        pump(self.clients, lambda: seen(x, "ERR no such nick nobody"))
        y.send("PRIVMSG nobody :hi")
        pump(self.clients, lambda: seen(y, " 401 bob nobody "))

    def test_cluster_who_names_and_rooms_list_every_node(self):
        a, b, c = self.start_nodes()
        x, y, z = Chat(a, "chat", "ann"), Irc(b, "irc", "bob"), \
            Chat(c, "chat", "cid")
        self.clients = [x, y, z]
        wait_line(self.clients, {x: x.login(), y: y.login(), z: z.login()})
        wait_line(self.clients, {x: x.join("w"), y: y.join("w"),
                                 z: z.join("w2")})
        ask_until(self, x, "/who", "OK who w 2: ann bob")
        y.send("NAMES #w")
        pump(self.clients, lambda: seen(y, " 353 bob = #w :ann bob")
             or seen(y, " 353 bob = #w :@ann @bob"))
        y.send("WHO #w")
        pump(self.clients, lambda: seen(y, " 352 bob #w ") and
             seen(y, " ann ") and seen(y, " 315 "))
        z.send("/rooms")
        pump(self.clients, lambda: seen(z, "OK rooms"))
        rooms = [l for l in z.lines if l.startswith("OK rooms")][-1]
        self.assertIn(" w(2)", rooms)
        self.assertIn(" w2(1)", rooms)
        # The 353 right after a JOIN lists every node's members too.
        d = Irc(c, "irc", "dan")
        self.clients.append(d)
        wait_line([d], {d: d.login()})
        wait_line([d], {d: d.join("w")})
        names = [l for l in d.lines if " 353 dan = #w :" in l]
        self.assertEqual(len(names), 1, d.lines)
        self.assertEqual(
            sorted(n.lstrip("@+") for n in names[0].split(" :", 1)[1].split()),
            ["ann", "bob", "dan"])

    def test_cluster_node_killed_frees_its_nicks_and_members_within_the_ttl(self):
        a, b = self.start_nodes(2, nick_ttl=2)
        x = Chat(a, "chat", "ann")
        y = Chat(b, "chat", "zed")
        self.clients = [x, y]
        wait_line(self.clients, {x: x.login(), y: y.login()})
        wait_line(self.clients, {x: x.join("k"), y: y.join("k")})
        ask_until(self, x, "/who", "OK who k 2: ann zed")
        x.send("/nick zed")
        pump(self.clients, lambda: seen(x, "ERR nick zed is taken"))
        b.proc.kill()  # SIGKILL, by its PID
        b.proc.wait()
        killed = time.time()
        x.lines.clear()
        while not (seen(x, "OK who k 1: ann") and seen(x, "OK rooms 1: k(1)")):
            self.assertLess(time.time() - killed, 2 + 2,
                            f"zed still in k: {x.lines}")
            x.lines.clear()
            x.send("/who")
            x.send("/rooms")
            pump([x], lambda: seen(x, "OK rooms"), timeout=5)
            time.sleep(0.1)
        while not seen(x, "OK nick zed"):
            self.assertLess(time.time() - killed, 2 + 2, "still taken")
            x.send("/nick zed")
            pump([x], lambda: seen(x, "zed"), timeout=5)
            if not seen(x, "OK nick zed"):
                x.lines.clear()
                time.sleep(0.2)
        self.nodes.remove(b)
        b.__exit__(None, None, None)


class TestClusterBatches(ClusterCase):
    def test_cluster_lines_said_together_share_one_publish_in_one_order(self):
        # batch_delay: a home sends a room's lines of 50 ms in one script
        # call, published as one message; every member still gets every
        # line once, in the one order.
        nodes = self.start_nodes(2, extra="batch_delay = 0.05\n")
        members, everyone = crowd(nodes, ["batch"], 4)
        self.clients = everyone
        sub = socket.create_connection(("127.0.0.1", self.redis.port))
        self.addCleanup(sub.close)
        sub.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$13\r\npcr:{batch}:c\r\n")
        got = b""
        while got.count(b"\r\n") < 6:  # the confirmation
            got += sub.recv(4096)
        # A malformed message on the room's channel is dropped whole by
        # every node, nothing else lost (its offsets come again as lines).
        for bad in ("1 e 2 3,x abc", "1 e 99 3 abc", "x e 1 3 abc",
                    "1 e 1 -3 abc", "1 e 1 4 abc", "1 e 0  "):
            self.assertEqual(self.redis.command(
                "PUBLISH", "pcr:{batch}:c", bad), ":3")  # 2 nodes and us
        sent = {"batch": []}
        for n in range(LINES):  # every member, two of each node's faces
            for c in everyone:
                c.say(f"L {c.nick} {n}")
                sent["batch"].append((c.nick, n))
        pump(everyone, all_delivered(members, LINES), timeout=30,
             what="every line at every member")
        check_rooms(members, sent)
        # What went through Redis: fewer messages than lines (the joins'
        # events, sent 50 ms late too, may be among them).
        sub.settimeout(2 * SLOW)
        messages, lines = publications(got)
        while lines < len(everyone) * LINES:
            got += sub.recv(1 << 16)
            messages, lines = publications(got)
        self.assertLessEqual(messages, lines // 4)


class TestClusterUnixSocket(ClusterCase):
    unix = True

    def test_cluster_over_a_unix_socket_keeps_one_order(self):
        nodes = self.start_nodes()
        members, everyone = crowd(nodes, ["u0", "u1"], 6)
        self.clients = everyone
        sent = {r: [] for r in members}
        for n in range(LINES):
            for c in everyone:
                c.say(f"L {c.nick} {n}")
                sent[c.room].append((c.nick, n))
        pump(everyone, all_delivered(members, LINES), timeout=30,
             what="every line")
        check_rooms(members, sent)


class TestClusterConfig(unittest.TestCase):
    def check(self, body):
        path = f"/tmp/pc-cluster-{os.getpid()}.ini"
        with open(path, "w") as f:
            f.write(body + "\n[listener chat]\nprotocol = chat\n"
                    "listen = 127.0.0.1:1\n")
        try:
            return run(["-t", "-c", path])
        finally:
            os.unlink(path)

    def test_cluster_config_is_checked_with_file_line_and_key(self):
        r = self.check("[cluster]\nredis = 127.0.0.1:99999")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(":2: [cluster] redis: '127.0.0.1:99999': the port must "
                      "be 1 to 65535", r.stderr)
        r = self.check("[cluster]\nnode = a")
        self.assertIn(":2: [cluster]: redis: required", r.stderr)
        r = self.check("[cluster]\nredis = unix:/x\ntls = yes")
        self.assertIn("no TLS", r.stderr)
        r = self.check("[cluster]\nredis = unix:/x\nbogus = 1")
        self.assertIn("[cluster] bogus: unknown key", r.stderr)
        r = self.check("[cluster]\nredis = unix:/x\nbatch_delay = 1")
        self.assertIn(":3: [cluster] batch_delay: 1 is out of range", r.stderr)
        r = self.check("[cluster]\nredis = unix:/run/redis.sock\n"
                       "history = 50\nnick_ttl = 10\nbatch_delay = 0.5ms")
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()

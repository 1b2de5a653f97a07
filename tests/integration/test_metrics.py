"""The metrics endpoint: a Prometheus exposition promtool accepts with 1, 4
and 400 workers under traffic, complete however many workers there are;
counters that move by exactly the traffic sent, the scrapes' own traffic
kept under the metrics listener; module metrics (the room core's, and one
from examples/) with their labels; percored --stats as a table."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

from percored import (Percored, SANITIZED, SLOW, free_port, recv_exactly,
                      run, wait_for)
from test_modules import ROOT, build_module

PROMTOOL = shutil.which("promtool")
REQUEST = b"GET /metrics HTTP/1.0\r\n\r\n"


def scrape(port):
    """(head, body) of one GET /metrics."""
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=30 * SLOW) as s:
        s.sendall(REQUEST)
        data = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode(), body


def parse(body):
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("#") or not line:
            continue
        key, value = line.rsplit(" ", 1)
        m = re.match(r"([\w:]+)(?:\{(.*)\})?$", key)
        labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")))
        out[(m.group(1), labels)] = float(value)
    return out


def value(metrics, name, **labels):
    """Sum of name's series whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (k, ls), v in metrics.items()
               if k == name and want <= set(ls))


def promtool_check(test, body):
    if not PROMTOOL:
        test.fail("promtool not found: install the Debian package "
                  "prometheus (deploy/install-deps does)")
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=body,
                       capture_output=True, timeout=60)
    test.assertEqual((r.returncode, r.stdout + r.stderr), (0, b""),
                     "promtool check metrics complained")


class EchoTraffic:
    """Echo round trips on new connections until stopped, every byte
    checked, from a thread of its own."""

    def __init__(self, port):
        self.port, self.rounds, self.errors = port, 0, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self):
        while not self.stop.is_set() and self.rounds < 100000:
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              timeout=10 * SLOW) as s:
                    s.sendall(b"x" * 1000)
                    if recv_exactly(s, 1000) != b"x" * 1000:
                        self.errors.append("echo lost bytes")
                self.rounds += 1
            except OSError as e:
                self.errors.append(str(e))
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def upper_config(so, workers, *extra_listeners):
    ports = {"shout": free_port(), "echo": free_port(), "chat": free_port(),
             "metrics": free_port()}
    text = (f"[server]\nworkers = {workers}\nmodules = {so}\n"
            f"[listener shout]\nlisten = 127.0.0.1:{ports['shout']}\n"
            "protocol = upper\nmax_line = 16\n"
            f"[listener echo]\nlisten = 127.0.0.1:{ports['echo']}\n"
            "protocol = echo\n"
            f"[listener chat]\nlisten = 127.0.0.1:{ports['chat']}\n"
            "protocol = chat\nflood_rate = 0\ndefault_room =\n"
            f"[listener metrics]\nlisten = 127.0.0.1:{ports['metrics']}\n"
            "protocol = metrics\n")
    return text, ports


class Exposition(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.so = build_module(os.path.join(ROOT, "examples", "upper.c"),
                              cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    def server(self, workers):
        config, ports = upper_config(self.so, workers)
        srv = Percored(listeners=(), config=config, workers=workers)
        srv.ports.update(ports)
        return srv

    def check_scrapes_under_traffic(self, workers):
        with self.server(workers) as srv, EchoTraffic(srv.ports["echo"]) as t:
            wait_for(lambda: t.rounds > 0 or t.errors, what="traffic")
            for _ in range(3):
                head, body = scrape(srv.ports["metrics"])
                self.assertTrue(head.startswith("HTTP/1.0 200"), head)
                length = int(re.search(r"Content-Length: (\d+)", head)[1])
                self.assertEqual(length, len(body))
                self.assertTrue(body.endswith(b"\n"), body[-80:])
                self.assertNotIn(b"\0", body)
                promtool_check(self, body)
                m = parse(body)
                self.assertEqual(value(m, "percore_workers"), workers)
                # Every worker is there, the last one too.
                for name in ("percore_worker_connections",
                             "percore_worker_loop_iterations_total"):
                    self.assertEqual(
                        {dict(ls)["worker"] for (k, ls) in m if k == name},
                        {str(i) for i in range(workers)}, name)
                self.assertGreater(value(m, "percore_connections_accepted_"
                                         "total", listener="echo"), 0)
            self.assertEqual(t.errors, [])
            return m

    def test_promtool_accepts_the_exposition_with_1_worker(self):
        m = self.check_scrapes_under_traffic(1)
        info = [ls for (k, ls) in m if k == "percore_build_info"]
        self.assertEqual(len(info), 1)
        self.assertEqual({k for k, _ in info[0]}, {"version", "abi", "backend"})
        self.assertEqual(dict(info[0])["version"], "0.1.0")
        self.assertRegex(dict(info[0])["abi"], r"^0x[0-9a-f]{8}$")
        for name in ("percore_start_time_seconds", "process_cpu_seconds_total",
                     "process_resident_memory_bytes", "process_open_fds",
                     "process_max_fds", "process_start_time_seconds",
                     "percore_config_max_connections"):
            self.assertIn((name, ()), m)
        self.assertGreater(m[("process_open_fds", ())], 5)
        self.assertEqual(m[("percore_config_listener_max_output_bytes",
                            (("listener", "echo"), ("protocol", "echo")))],
                         4 << 20)
        if not SANITIZED:  # sanitizer builds use the libc allocator
            self.assertGreater(m[("percore_jemalloc_allocated_bytes", ())], 0)
            self.assertGreater(m[("percore_worker_jemalloc_resident_bytes",
                                  (("worker", "0"),))], 0)

    def test_promtool_accepts_the_exposition_with_4_workers(self):
        self.check_scrapes_under_traffic(4)

    def test_the_exposition_is_whole_with_400_workers(self):
        # Larger than the 256 KiB the old fixed buffer held.
        self.check_scrapes_under_traffic(400)

    def test_counters_move_by_exactly_the_traffic_sent(self):
        with self.server(4) as srv:
            port = srv.ports["metrics"]
            before = parse(scrape(port)[1])
            sizes = [1, 100, 5000, 70000, 3, 4096, 65536, 2]
            for n in sizes:
                with srv.connect("echo") as s:
                    s.sendall(b"e" * n)
                    self.assertEqual(recv_exactly(s, n), b"e" * n)
            last = []

            def all_closed():
                last[:] = scrape(port)
                return value(parse(last[1]), "percore_connections_closed_"
                             "total", listener="echo") == len(sizes)
            wait_for(all_closed, what="the echo connections closed")
            head1, body1 = last
            after = parse(scrape(port)[1])
            between = parse(body1)  # the scrape just before `after`

            def moved(name, **labels):
                return value(after, name, **labels) - value(before, name,
                                                            **labels)
            echo = {"listener": "echo"}
            self.assertEqual(moved("percore_connections_accepted_total",
                                   **echo), len(sizes))
            self.assertEqual(moved("percore_received_bytes_total", **echo),
                             sum(sizes))
            self.assertEqual(moved("percore_sent_bytes_total", **echo),
                             sum(sizes))
            self.assertEqual(moved("percore_connections_closed_total",
                                   reason="peer", **echo), len(sizes))
            self.assertEqual(moved("percore_connections_closed_total",
                                   **echo), len(sizes))
            self.assertEqual(value(after, "percore_connections_open", **echo),
                             0)
            for name in ("percore_connections_accepted_total",
                         "percore_received_bytes_total",
                         "percore_sent_bytes_total"):
                self.assertEqual(moved(name, listener="shout"), 0)
                self.assertEqual(moved(name, listener="chat"), 0)
            # The scrapes are the metrics listener's traffic, and only its:
            # between two scrapes, the second's connection and request
            # and the first's whole answer; nothing else moved.
            mine = {"listener": "metrics"}

            def step(name, **labels):
                return value(after, name, **labels) - value(between, name,
                                                            **labels)
            self.assertEqual(step("percore_connections_accepted_total",
                                  **mine), 1)
            self.assertEqual(step("percore_received_bytes_total", **mine),
                             len(REQUEST))
            self.assertEqual(step("percore_sent_bytes_total", **mine),
                             len(head1) + 4 + len(body1))
            for name in ("percore_connections_accepted_total",
                         "percore_received_bytes_total",
                         "percore_sent_bytes_total"):
                self.assertEqual(step(name), step(name, **mine), name)
            self.assertEqual(
                sum(value(after, "percore_worker_received_bytes_total",
                          worker=str(i)) for i in range(4)),
                value(after, "percore_received_bytes_total"))

    def test_the_example_modules_counter_appears_with_its_labels(self):
        with self.server(2) as srv:
            for _ in range(2):  # a connection on each worker, likely
                with srv.connect("shout") as s:
                    s.sendall(b"hello\nworld\n")
                    self.assertEqual(recv_exactly(s, 12), b"HELLO\nWORLD\n")
                    s.sendall(b"this line is far too long\n")
                    self.assertEqual(recv_exactly(s, 18),
                                     b"ERR line too long\n")
                    s.sendall(b"quit\n")
                    self.assertEqual(recv_exactly(s, 4), b"BYE\n")
            _, body = scrape(srv.ports["metrics"])
            promtool_check(self, body)
            m = parse(body)
            labels = (("listener", "shout"), ("protocol", "upper"))
            for result, n in (("upper", 4), ("too_long", 2), ("quit", 2)):
                self.assertEqual(
                    m[("percore_upper_lines_total",
                       labels + (("result", result),))], n, result)
            self.assertIn(b"# TYPE percore_upper_lines_total counter\n", body)

    def test_chat_counts_rooms_members_lines_and_deliveries(self):
        with self.server(4) as srv:
            members, seen = [], {}

            def see(s, text, times=1):
                while seen.get(s, b"").count(text) < times:
                    seen[s] = seen.get(s, b"") + s.recv(4096)
                seen[s] = seen[s].replace(text, b"", times)

            for nick in ("ann", "bob", "cat"):
                s = srv.connect("chat")
                s.sendall(f"/nick {nick}\n/join metrics\n".encode())
                members.append(s)
                for m in members:  # every join delivered before the next
                    see(m, f"{nick} joined metrics".encode())
            m0 = parse(scrape(srv.ports["metrics"])[1])
            self.assertEqual(value(m0, "percore_room_rooms"), 1)
            self.assertEqual(value(m0, "percore_room_members"), 3)
            for i in range(5):
                members[0].sendall(b"line %d\n" % i)
            for s in members:  # the speaker sees its own lines too
                see(s, b"ann: line", 5)
            m1 = parse(scrape(srv.ports["metrics"])[1])
            chat = {"listener": "chat", "protocol": "chat"}
            self.assertEqual(value(m1, "percore_room_lines_total", to="room")
                             - value(m0, "percore_room_lines_total",
                                     to="room"), 5)
            self.assertEqual(value(m1, "percore_room_deliveries_total", **chat)
                             - value(m0, "percore_room_deliveries_total",
                                     **chat), 15)
            self.assertEqual(value(m1, "percore_room_sendq_cutoffs_total",
                                   **chat), 0)
            for s in members:
                s.close()
            wait_for(lambda: srv.total("percore_room_members") == 0,
                     what="the room emptied")
            self.assertEqual(srv.total("percore_room_rooms"), 0)

    def test_stats_prints_one_row_a_worker_and_a_total(self):
        with self.server(3) as srv:
            for _ in range(4):
                with srv.connect("echo") as s:
                    s.sendall(b"abc")
                    self.assertEqual(recv_exactly(s, 3), b"abc")
            wait_for(lambda: srv.total("percore_connections_open",
                                       listener="echo") == 0,
                     what="the echo connections closed")
            r = run(["--stats", "-c", srv.config.name])
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.splitlines()
            self.assertRegex(lines[0], r"^percored 0\.1\.0, 3 workers, "
                             r"backend \w+, up \d+s$")
            header = lines[2].split()
            self.assertEqual(header[:5], ["worker", "open", "accepted",
                                          "bytes", "in"])
            rows = [l.split() for l in lines[3:7]]
            self.assertEqual([r[0] for r in rows], ["0", "1", "2", "total"])
            # accepted: the 4 echo connections and the scrapes so far
            self.assertGreaterEqual(int(rows[3][2]), 5)
            self.assertEqual(sum(int(r[2]) for r in rows[:3]), int(rows[3][2]))
            listeners = {l.split()[0]: l.split() for l in lines[8:]}
            # open, accepted, refused, bytes in, bytes out
            self.assertEqual(listeners["echo"][1:7],
                             ["(echo)", "0", "4", "0", "12", "12"])
            self.assertEqual(listeners["metrics"][2], "1")  # --stats's own

    def test_stats_without_a_metrics_listener_says_so(self):
        r = run(["--stats", "--listen", f"echo@127.0.0.1:{free_port()}"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("--stats needs a listener with protocol = metrics",
                      r.stderr)


class ModuleMetricRules(unittest.TestCase):
    """What pc_metric_new refuses, said once in the log."""

    def test_a_counter_without_total_and_a_reserved_name_are_refused(self):
        d = tempfile.mkdtemp()
        try:
            src = os.path.join(d, "bad.c")
            with open(src, "w") as f:
                f.write(r'''#include <percore/percore.h>
static const struct pc_metric_def bad = {"percore_bad_lines",
    PC_METRIC_COUNTER, "no _total", NULL, NULL};
static const struct pc_metric_def mine = {"percore_sent_bytes_total",
    PC_METRIC_COUNTER, "the framework's", NULL, NULL};
static const struct pc_metric_def good = {"percore_bad_ok_total",
    PC_METRIC_COUNTER, "fine", NULL, NULL};
static int init(struct pc_worker *w, const struct pc_section *cfg, void **ws)
{
    *ws = pc_metric_new(w, &good, cfg);
    pc_metric_add(pc_metric_new(w, &bad, cfg), 0, 1); /* NULL: no-op */
    pc_metric_new(w, &mine, NULL);
    return 0;
}
static size_t data(struct pc_conn *c, const char *p, size_t n)
{
    pc_metric_add(pc_conn_wstate(c), 0, (int64_t)n);
    (void)p;
    return n;
}
const struct pc_proto percore_module = {.abi = PC_PROTO_ABI, .name = "bad",
    .worker_init = init, .on_data = data};
''')
            so = build_module(src, d)
            port = free_port()
            config = (f"[server]\nmodules = {so}\n[listener sink]\n"
                      f"listen = 127.0.0.1:{port}\nprotocol = bad\n")
            with Percored(listeners=(("metrics", "metrics"),),
                          config=config, workers=2) as srv:
                srv.ports["sink"] = port
                with srv.connect("sink") as s:
                    s.sendall(b"12345")
                wait_for(lambda: srv.total("percore_bad_ok_total") == 5,
                         what="the module's counter")
                _, body = scrape(srv.ports["metrics"])
                promtool_check(self, body)
                self.assertNotIn(b"percore_bad_lines", body)
                out = srv.output()
                self.assertEqual(out.count("metric percore_bad_lines not "
                                           "exported: a counter's name must "
                                           "end in _total"), 1, out)
                self.assertEqual(out.count("metric percore_sent_bytes_total "
                                           "not exported: a name of "
                                           "percore's own metrics"), 1, out)
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()

"""percore-bench's ws mode beyond test_bench_chat.py's run against
percored's web face: the Node.js baseline (if node and npm's ws are
installed), a refused upgrade, and the pieces of bench/run's web case
that need no server. Apart from test_bench_chat.py to keep that file's
size; run by ctest
(bench/CMakeLists.txt) with PERCORED and PERCORE_BENCH set; seconds."""

import os
import shutil
import subprocess
import unittest

from bench_support import bench, wait_port
from percored import Percored, free_port

import webbench  # bench/run's web case


class WsBenchTest(unittest.TestCase):

    def check_delivered(self, status, r, target, members):
        self.assertEqual(r["mode"], "ws")
        self.assertEqual(r["errors"]["total"], 0, r["errors"])
        self.assertEqual(status, 0)
        self.assertEqual(r["config"]["target"], target)
        self.assertEqual(r["connections"]["opened"], members)
        chat = r["chat"]
        self.assertGreater(chat["sent"], 0)
        # each line reached every member, its sender too, in order
        self.assertEqual(chat["expected"], chat["sent"] * members)
        self.assertEqual(chat["received"], chat["expected"])
        self.assertEqual(r["latency_us"]["count"], r["messages"])
        self.assertGreater(r["messages"], 0)

    def test_ws_broadcast_against_the_node_baseline(self):
        if not shutil.which("node") or not os.path.isdir(os.path.join(
                webbench.BASELINES, "node_modules", "ws")):
            self.skipTest("node or npm's ws is not installed (bench/run "
                          "installs them: cd bench/baselines && npm ci)")
        port = free_port()
        p = subprocess.Popen(["node", webbench.NODE_SERVER, str(port)],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            wait_port(port, p)
            status, r = bench("ws", "--target", "broadcast", "-a", f":{port}",
                              "--members", 20, "--senders", 2, "-r", 200,
                              "-d", 1)
        finally:
            p.terminate()
            p.wait(10)
        self.check_delivered(status, r, "broadcast", 20)

    def test_a_refused_upgrade_is_counted(self):
        # An HTTP server that is not a WebSocket one: percored's echo face
        # echoes the request back, which is no 101.
        with Percored(listeners=(("echo", "echo"),), workers=1) as srv:
            status, r = bench("ws", "-a", f":{srv.ports['echo']}",
                              "--members", 3, "-d", "0.5",
                              "--connect-timeout", 3)
        self.assertEqual(status, 1)
        self.assertGreater(r["errors"]["protocol"], 0)

    def test_wrk_summary_is_read_by_the_web_case(self):
        out = """Running 10s test @ http://127.0.0.1:8080/small.html
  1 threads and 64 connections
  Latency Distribution
     50%  610.00us
     90%    1.20ms
     99%    3.50ms
  512345 requests in 10.00s, 600.00MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  51234.50
Transfer/sec:     60.00MB
"""
        r = webbench.parse_wrk(out)
        self.assertEqual(r["requests"], 512345)
        self.assertEqual(r["requests_per_s"], 51234.5)
        self.assertEqual(r["latency_us"], {"p50": 610.0, "p90": 1200.0,
                                           "p99": 3500.0})
        self.assertEqual((r["socket_errors"], r["non_2xx"]), (0, 3))
        self.assertIsNone(webbench.parse_wrk("unable to connect"))


if __name__ == "__main__":
    unittest.main()

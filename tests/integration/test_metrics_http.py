"""The metrics endpoint on the project's HTTP layer (protocols/http/):
keep-alive and pipelining over HTTP/1.1, HEAD, 404 and 405, the layer's
400 and 431, the header timeout against a slowloris, and HTTP/1.0 still
answered in kind (what percored --stats and older scrapers match)."""

import re
import socket
import unittest

from http_probes import check_idle_closed, check_refused, check_slowloris
from percored import Percored, SLOW, SharedServer, free_port, run
from webclient import Http

TYPE = "text/plain; version=0.0.4"


def metrics_server(*args):
    return Percored(*args, listeners=(("metrics", "metrics"),
                                      ("echo", "echo")))


def check_exposition(test, h, body):
    test.assertEqual(h["content-type"], TYPE)
    test.assertEqual(int(h["content-length"]), len(body))
    test.assertTrue(body.startswith(b"# HELP percore_build_info "), body[:80])
    test.assertTrue(body.endswith(b"\n"))
    test.assertIn(b'percore_connections_open{listener="metrics",'
                  b'protocol="metrics"}', body)


def accepted(body):
    m = re.search(rb'^percore_connections_accepted_total\{listener="metrics"'
                  rb',protocol="metrics"\} (\d+)$', body, re.M)
    return int(m[1])


class KeepAlive(SharedServer):
    LISTENER = "metrics"
    server = staticmethod(metrics_server)

    def test_two_requests_on_one_connection(self):
        c = Http(self.port)
        c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        status, h, first = c.response()
        self.assertEqual(status, 200)
        self.assertNotIn("connection", h)  # kept open
        check_exposition(self, h, first)
        c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        status, h, second = c.response()
        self.assertEqual(status, 200)
        check_exposition(self, h, second)
        # One connection for both: the second scrape counts no new one.
        self.assertEqual(accepted(second), accepted(first))
        c.close()

    def test_a_pipelined_pair_is_answered_in_order(self):
        c = Http(self.port)
        c.send("GET /metrics HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n"
               "Connection: close\r\n\r\n")
        status, h, first = c.response()
        self.assertEqual(status, 200)
        check_exposition(self, h, first)
        status, h, second = c.response()
        self.assertEqual((status, h["connection"]), (200, "close"))
        check_exposition(self, h, second)
        self.assertTrue(c.closed())

    def test_head_gives_the_headers_and_the_bodys_length(self):
        c = Http(self.port)
        c.send("HEAD /metrics HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n")
        status, h, body = c.response(head_only=True)
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(h["content-type"], TYPE)
        head_length = int(h["content-length"])
        # No body came: the next bytes are the GET's answer.
        status, h, body = c.response()
        self.assertEqual(status, 200)
        check_exposition(self, h, body)
        # The text barely moves between the two (a counter's digits).
        self.assertLess(abs(len(body) - head_length), 64)
        c.close()

    def test_another_path_is_404_and_the_connection_kept(self):
        c = Http(self.port)
        c.send("GET /metricsx HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n")
        status, h, body = c.response()
        self.assertEqual((status, body),
                         (404, b"only GET /metrics is served here\n"))
        self.assertEqual(c.response()[0], 200)
        c.close()

    def test_a_query_is_ignored_and_an_escape_decoded(self):
        c = Http(self.port)
        c.send("GET /metrics?name[]=x HTTP/1.1\r\n\r\n"
               "GET /%6detrics HTTP/1.1\r\n\r\n")
        self.assertEqual([c.response()[0], c.response()[0]], [200, 200])
        c.close()

    def test_another_method_is_405_with_allow(self):
        c = Http(self.port)
        c.send("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
               "GET /metrics HTTP/1.1\r\n\r\n")
        status, h, _ = c.response()
        self.assertEqual((status, h["allow"]), (405, "GET, HEAD"))
        self.assertEqual(c.response()[0], 200)  # the body was dropped
        c.close()

    def test_a_bad_request_is_400_and_closed(self):
        check_refused(self, self.port,
                      b"GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n", 400)

    def test_a_head_over_max_head_is_431_and_closed(self):
        pad = b"X-Pad: %s\r\n" % (b"y" * 100) * 100  # over the default 8K
        check_refused(self, self.port, b"GET /metrics HTTP/1.1\r\n" + pad,
                      431)  # the head unfinished

    def test_http10_is_answered_with_http10_and_closed(self):
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=10 * SLOW) as s:
            s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(1 << 20):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.assertEqual(lines[0], "HTTP/1.0 200 OK")
        self.assertIn("Connection: close", lines)
        self.assertIn("Content-Length: %d" % len(body), lines)
        self.assertTrue(body.endswith(b"\n"))

    def test_http10_keep_alive_when_asked(self):
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=10 * SLOW) as s:
            s.sendall(b"GET /metrics HTTP/1.0\r\nConnection: keep-alive"
                      b"\r\n\r\n" * 2)
            data = b""
            for _ in range(2):
                while b"\r\n\r\n" not in data:
                    data += s.recv(1 << 20)
                head, _, data = data.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                self.assertEqual(lines[0], "HTTP/1.0 200 OK")
                self.assertIn("Connection: keep-alive", lines)
                length = int(re.search(r"Content-Length: (\d+)", head.decode())[1])
                while len(data) < length:
                    data += s.recv(1 << 20)
                data = data[length:]
            self.assertEqual(data, b"")


class Timeouts(unittest.TestCase):

    def test_slowloris_gets_408_and_is_closed(self):
        with metrics_server("--set", "metrics.header_timeout=0.5") as srv:
            check_slowloris(self, srv.ports["metrics"], "/metrics")

    def test_an_idle_keep_alive_connection_is_closed_silently(self):
        with metrics_server("--set", "metrics.keepalive_timeout=0.3") as srv:
            check_idle_closed(self, srv.ports["metrics"], "/metrics")


class Options(unittest.TestCase):

    def test_the_layers_limits_are_options_checked_against_max_input(self):
        listen = f"metrics@127.0.0.1:{free_port()}"
        r = run(["-t", "--listen", listen, "--set", "metrics.max_head=512",
                 "--set", "metrics.header_timeout=2"])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["-t", "--listen", listen, "--set", "metrics.max_input=1K"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("max_head (8192) must not exceed max_input (1024)",
                      r.stderr)


if __name__ == "__main__":
    unittest.main()

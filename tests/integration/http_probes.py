"""The probes that every face on the HTTP layer (protocols/http/) answers
alike, whatever it serves: a request refused with a status and the
connection closed (400, 414, 431, 505), a slowloris answered 408 at the
header timeout, an idle keep-alive connection closed without a word.
Used by test_web_http.py and test_metrics_http.py."""

import socket
import time

from percored import SLOW
from webclient import Http


def check_refused(test, port, data, status):
    """data gets `status` with Connection: close, and nothing after."""
    c = Http(port)
    c.send(data)
    got, h, _ = c.response()
    test.assertEqual(got, status, data[:80])
    test.assertEqual(h.get("connection"), "close")
    test.assertTrue(c.closed())


def check_slowloris(test, port, path):
    """A GET of path whose head never ends, a header every 0.1 s (which
    keeps a naive server waiting for ever): the server's header_timeout,
    set under 5 s, answers 408 and closes."""
    c = Http(port)
    start = time.time()
    c.send(f"GET {path} HTTP/1.1\r\n")
    c.sock.settimeout(0.1)
    for i in range(int(100 * SLOW)):
        try:
            c.fill()
            break
        except socket.timeout:
            c.send(f"X-{i}: y\r\n")
    c.sock.settimeout(5 * SLOW)
    status, h, _ = c.response()
    test.assertEqual((status, h["connection"]), (408, "close"))
    test.assertLess(time.time() - start, 10 * SLOW)
    test.assertTrue(c.closed())


def check_idle_closed(test, port, path):
    """One answered GET of path, then silence: the server's
    keepalive_timeout, set well under 10 s, closes without a word."""
    c = Http(port)
    c.send(f"GET {path} HTTP/1.1\r\n\r\n")
    test.assertEqual(c.response()[0], 200)
    test.assertTrue(c.closed(timeout=10))

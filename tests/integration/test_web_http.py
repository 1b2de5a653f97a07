"""The web face's HTTP/1.1 against a real percored, over raw sockets:
keep-alive, pipelining, HEAD, every error status and its limit, slow
clients (slowloris), static files from a root (types, index, ETag, a
large file byte-exact under back-pressure) and path traversal."""

import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
import unittest

from http_probes import check_idle_closed, check_refused, check_slowloris
from percored import Percored, SharedServer
from webclient import Http, get

DATE = re.compile(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT")


def web_server(*extra, workers=2):
    return Percored(*extra, listeners=(("web", "web"),), workers=workers)


class BuiltInPage(SharedServer):
    LISTENER = "web"
    server = staticmethod(web_server)

    def test_get_slash_serves_the_chat_page_with_date_length_type(self):
        status, h, body = get(self.port)
        self.assertEqual(status, 200)
        self.assertRegex(h["date"], DATE)
        self.assertEqual(int(h["content-length"]), len(body))
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertIn(b"<title>percore chat</title>", body)
        self.assertNotRegex(body, rb"(src|href)=\"https?:")  # no external URL
        self.assertEqual(h["connection"], "close")

    def test_head_has_the_get_headers_and_no_body(self):
        _, g, body = get(self.port)
        c = Http(self.port)
        c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\n"
               "Host: x\r\n\r\n")
        status, h, _ = c.response(head_only=True)
        self.assertEqual(status, 200)
        self.assertEqual(h["content-length"], str(len(body)))
        self.assertEqual(h["etag"], g["etag"])
        # The next response follows at once: no body was sent.
        self.assertEqual(c.response()[0], 404)
        c.close()

    def test_if_none_match_gives_304_without_body(self):
        _, h, _ = get(self.port)
        status, h2, body = get(self.port, headers=f"If-None-Match: {h['etag']}\r\n")
        self.assertEqual((status, body), (304, b""))
        self.assertEqual(h2["etag"], h["etag"])
        self.assertEqual(get(self.port, headers='If-None-Match: "other"\r\n')[0],
                         200)

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        c = Http(self.port)
        for _ in range(20):
            c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, h, body = c.response()
            self.assertEqual(status, 200)
            self.assertNotIn("connection", h)
        c.close()

    def test_pipelined_requests_are_answered_in_order(self):
        c = Http(self.port)
        paths = ["/", "/a", "/index.html", "/b", "/"] * 4
        c.send("".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n" for p in paths))
        got = [c.response()[0] for _ in paths]
        self.assertEqual(got, [200 if p in ("/", "/index.html") else 404
                               for p in paths])
        c.close()

    def test_pipelined_requests_split_at_every_byte(self):
        c = Http(self.port)
        data = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\n\r\n"
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            c.send(data[i:i + 1])
        self.assertEqual(c.response()[0], 404)
        self.assertEqual(c.response(head_only=True)[0], 200)
        c.close()

    def test_http10_closes_unless_keep_alive_is_asked(self):
        c = Http(self.port)
        c.send("GET / HTTP/1.0\r\n\r\n")
        status, h, _ = c.response()
        self.assertEqual((status, h["connection"]), (200, "close"))
        self.assertTrue(c.closed())
        c = Http(self.port)
        c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2)
        self.assertEqual([c.response()[0], c.response()[0]], [200, 200])
        c.close()

    def test_connection_close_ends_after_the_answer(self):
        c = Http(self.port)
        c.send("GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        self.assertEqual(c.response()[0], 200)
        self.assertTrue(c.closed())  # the second request is not answered

    def test_a_body_is_read_and_dropped_and_the_connection_kept(self):
        c = Http(self.port)
        c.send("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"
               "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        status, h, _ = c.response()
        self.assertEqual((status, h["allow"]), (405, "GET, HEAD"))
        self.assertEqual(c.response()[0], 405)
        self.assertEqual(c.response()[0], 200)
        c.close()

    def refused(self, data, status):
        check_refused(self, self.port, data, status)

    def test_malformed_requests_get_400_and_close(self):
        self.refused(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400)
        self.refused(b"\x16\x03\x01\x00\xa5\x01\x00\x00\r\n\r\n", 400)
        self.refused(b"GET / HTTP/1.1\r\nContent-Length: 1\r\n"
                     b"Content-Length: 2\r\n\r\n", 400)

    def test_http2_version_gets_505(self):
        self.refused(b"GET / HTTP/2.0\r\n\r\n", 505)

    def test_a_long_target_gets_414(self):
        self.refused(("GET /" + "a" * 5000 + " HTTP/1.1\r\n\r\n").encode(), 414)
        # Refused before its end arrives, too.
        self.refused(("GET /" + "a" * 5000).encode(), 414)

    def test_too_many_headers_or_too_big_a_head_gets_431(self):
        many = "".join(f"X-{i}: {i}\r\n" for i in range(65))
        self.refused(f"GET / HTTP/1.1\r\n{many}\r\n".encode(), 431)
        big = "X-Big: " + "b" * 9000 + "\r\n"
        self.refused(f"GET / HTTP/1.1\r\n{big}\r\n".encode(), 431)
        self.refused(f"GET / HTTP/1.1\r\n{big}".encode(), 431)  # unfinished

    def test_a_large_body_gets_413(self):
        self.refused(b"POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n", 413)

    def test_a_large_chunked_body_is_cut_off(self):
        c = Http(self.port)
        c.send(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        self.assertEqual(c.response()[0], 405)
        try:
            for _ in range(40):
                c.send(b"1000\r\n" + b"x" * 4096 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assertTrue(c.closed())


class Timeouts(unittest.TestCase):
    def test_slowloris_gets_408_and_is_closed(self):
        with web_server("--set", "web.header_timeout=0.5") as srv:
            check_slowloris(self, srv.ports["web"], "/")

    def test_a_connection_that_never_sends_gets_408(self):
        with web_server("--set", "web.header_timeout=0.3") as srv:
            c = Http(srv.ports["web"])
            self.assertEqual(c.response()[0], 408)
            self.assertTrue(c.closed())

    def test_an_idle_keep_alive_connection_is_closed_silently(self):
        with web_server("--set", "web.keepalive_timeout=0.3") as srv:
            check_idle_closed(self, srv.ports["web"], "/")


class StaticFiles(SharedServer):
    LISTENER = "web"

    @classmethod
    def server(cls):
        return web_server("--set", f"web.root={cls.root}")

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pc-web-")
        cls.root = os.path.join(cls.tmp, "root")
        os.makedirs(os.path.join(cls.root, "sub"))
        with open(os.path.join(cls.tmp, "secret.txt"), "w") as f:
            f.write("SECRET outside root\n")
        files = {"index.html": b"<p>index</p>", "style.css": b"p{}",
                 "app.js": b"1", "sub/index.html": b"sub index",
                 "a b.txt": b"spaced", "data.bin": b"\x00\x01"}
        for name, data in files.items():
            with open(os.path.join(cls.root, name), "wb") as f:
                f.write(data)
        cls.big = os.urandom(9 * 1024 * 1024 + 17)  # over max_output (4M)
        with open(os.path.join(cls.root, "big.bin"), "wb") as f:
            f.write(cls.big)
        os.symlink("style.css", os.path.join(cls.root, "inside-link.css"))
        os.symlink(os.path.join(cls.tmp, "secret.txt"),
                   os.path.join(cls.root, "out-link.txt"))
        os.symlink("../secret.txt", os.path.join(cls.root, "rel-out.txt"))
        os.symlink(cls.tmp, os.path.join(cls.root, "out-dir"))
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.tmp)

    def test_types_index_and_escapes(self):
        cases = {"/": (b"<p>index</p>", "text/html"),
                 "/style.css": (b"p{}", "text/css"),
                 "/app.js": (b"1", "text/javascript"),
                 "/sub/": (b"sub index", "text/html"),
                 "/sub": (b"sub index", "text/html"),
                 "/a%20b.txt?x=1": (b"spaced", "text/plain"),
                 "/data.bin": (b"\x00\x01", "application/octet-stream"),
                 "/inside-link.css": (b"p{}", "text/css")}
        for path, (body, ctype) in cases.items():
            status, h, got = get(self.port, path)
            self.assertEqual((status, got), (200, body), path)
            self.assertTrue(h["content-type"].startswith(ctype), (path, h))

    def test_etag_and_if_none_match(self):
        _, h, _ = get(self.port, "/style.css")
        self.assertRegex(h["etag"], r'^"[0-9a-f]+-[0-9a-f]+"$')
        status, _, body = get(self.port, "/style.css",
                              headers=f"If-None-Match: {h['etag']}\r\n")
        self.assertEqual((status, body), (304, b""))

    def test_path_traversal_never_leaves_root(self):
        attempts = ["/../secret.txt", "/%2e%2e/secret.txt",
                    "/%2E%2E/%2e%2e/etc/passwd", "/sub/../../secret.txt",
                    "/sub/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt",
                    "/.%2e/secret.txt", "/out-link.txt", "/rel-out.txt",
                    "/out-dir/secret.txt", "/out-dir/", "/..\\secret.txt",
                    "/%00", "/sub/./index.html", "//etc/passwd",
                    "/../../../../../../etc/passwd"]
        for path in attempts:
            c = Http(self.port)
            c.send(f"GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n")
            status, _, body = c.response()
            c.close()
            self.assertIn(status, (400, 404), path)
            self.assertNotIn(b"SECRET", body, path)
            self.assertNotIn(b"root:", body, path)

    def test_a_large_file_is_byte_exact_and_a_pipelined_request_waits(self):
        c = Http(self.port)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send("GET /big.bin HTTP/1.1\r\n\r\nGET /style.css HTTP/1.1\r\n\r\n")
        time.sleep(0.3)  # a slow reader: the server must wait, not cut
        status, h, body = c.response()
        self.assertEqual((status, int(h["content-length"])), (200, len(self.big)))
        self.assertEqual(hashlib.sha256(body).digest(),
                         hashlib.sha256(self.big).digest())
        self.assertEqual(c.response()[2], b"p{}")
        c.close()

    def test_head_of_a_large_file_sends_no_body(self):
        c = Http(self.port)
        c.send("HEAD /big.bin HTTP/1.1\r\n\r\nGET /app.js HTTP/1.1\r\n\r\n")
        status, h, _ = c.response(head_only=True)
        self.assertEqual(int(h["content-length"]), len(self.big))
        self.assertEqual(c.response()[2], b"1")
        c.close()


if __name__ == "__main__":
    unittest.main()

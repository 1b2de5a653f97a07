"""The web face in the rooms of the chat and irc faces, on a real percored
with 3 workers: browsers (WebSocket clients), chat clients and IRC clients
in one room see every line in one order, nicks are unique across the
three faces, each face renders the others' lines, and a wss:// exchange
over a TLS web listener (the face has no TLS code of its own)."""

import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import unittest

import websockets

from percored import SLOW, Percored
from test_chat import Client as ChatClient
from test_faces import IrcClient
from webclient import Http, Ws, tls_client_context

WORKERS = 3


class FacesServer(Percored):
    """Closes the clients a test left open before stopping."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.clients = []

    def stop(self, timeout=30):
        for sock in self.clients:
            sock.close()
        return super().stop(timeout)


def faces_server():
    return FacesServer("--set", "chat.flood_rate=0", "--set", "irc.flood_rate=0",
                       "--set", "web.flood_rate=0",
                       listeners=(("chat", "chat"), ("irc", "irc"),
                                  ("web", "web")), workers=WORKERS)


def chat_client(srv):
    c = ChatClient(srv)
    srv.clients.append(c.sock)
    return c


def ws_client(srv):
    ws = Ws(srv.ports["web"])
    srv.clients.append(ws.sock)
    return ws


class OneRoomThreeFaces(unittest.TestCase):
    def test_ws_chat_and_irc_members_see_one_order(self):
        per_face, lines = 3, 8
        with faces_server() as srv:
            webs = [ws_client(srv) for _ in range(per_face)]
            chats = [chat_client(srv) for _ in range(per_face)]
            ircs = [IrcClient(srv, f"irc{i}", caps=("echo-message",))
                    for i in range(per_face)]
            for w in webs:
                w.join("mix")
            for c in chats:
                c.join("mix")
            for i in ircs:
                i.join("#mix")

            def send_web(w):
                for n in range(lines):
                    w.send({"type": "say", "room": "mix", "text": f"{w.nick} {n}"})

            def send_chat(c):
                for n in range(lines):
                    c.send(f"{c.nick} {n}\n")

            def send_irc(i):
                for n in range(lines):
                    i.send(f"PRIVMSG #mix :{i.nick} {n}")
            senders = ([threading.Thread(target=send_web, args=(w,)) for w in webs] +
                       [threading.Thread(target=send_chat, args=(c,)) for c in chats] +
                       [threading.Thread(target=send_irc, args=(i,)) for i in ircs])
            for t in senders:
                t.start()
            for t in senders:
                t.join()
            total = 3 * per_face * lines
            said = re.compile(r"\S+ \d+")
            seen = []
            for w in webs:
                got = []
                while len(got) < total:
                    m = w.json()
                    if m["type"] == "say" and m.get("room") == "mix":
                        got.append(m["text"])
                seen.append(got)
            for c in chats:
                got = []
                while len(got) < total:
                    m = re.fullmatch(r"\S+: (.*)", c.line())
                    if m and said.fullmatch(m.group(1)):
                        got.append(m.group(1))
                seen.append(got)
            for i in ircs:
                got = []
                while len(got) < total:
                    m = re.fullmatch(r":\S+ PRIVMSG #mix :(.*)", i.line())
                    if m:
                        got.append(m.group(1))
                seen.append(got)
            for got in seen[1:]:
                self.assertEqual(got, seen[0])
            # Each sender's own lines are in the order it sent them.
            for w in webs:
                mine = [t for t in seen[0] if t.startswith(w.nick + " ")]
                self.assertEqual(mine, [f"{w.nick} {n}" for n in range(lines)])

    def test_nicks_are_unique_across_the_three_faces(self):
        with faces_server() as srv:
            chat = chat_client(srv)
            chat.command("/nick alice", "OK nick alice")
            ws = ws_client(srv)
            ws.send({"type": "nick", "nick": "ALICE"})  # rfc1459: the same
            m = ws.expect(type="error")[0]
            self.assertEqual((m["for"], m["code"]), ("nick", "nick_taken"))
            ws.nick_as("bob")
            chat.command("/nick bob", "ERR nick bob is taken")
            irc = IrcClient.__new__(IrcClient)
            irc.sock = __import__("socket").create_connection(
                ("127.0.0.1", srv.ports["irc"]), timeout=10 * SLOW)
            srv.clients.append(irc.sock)
            irc.buf, irc.nick = b"", "bob"
            irc.send("NICK bob")
            irc.send("USER bob 0 * :Bob")
            irc.expect(r":\S+ 433 \* bob .*")

    def test_each_face_renders_the_others_lines(self):
        with faces_server() as srv:
            ws = ws_client(srv)
            ws.nick_as("webby")
            ws.join("render")
            chat = chat_client(srv)
            chat.join("render")
            irc = IrcClient(srv, "ircy")
            irc.join("#render")
            ws.send({"type": "me", "room": "render", "text": "waves"})
            chat.expect(r"\* webby waves")
            irc.expect(r":webby!\S+ PRIVMSG #render :\x01ACTION waves\x01")
            irc.send("NOTICE #render :a notice")
            self.assertEqual(ws.expect(type="notice")[0]["text"], "a notice")
            chat.send(f"/msg webby psst\n")
            m = ws.expect(type="say", text="psst")[0]
            self.assertEqual((m["nick"], m["to"]), (chat.nick, "webby"))
            irc.send("PRIVMSG #render :\x02bold\x02 caf\u00e9")
            m = ws.expect(type="say", nick="ircy")[0]
            # IRC formatting reaches the page, which strips it.
            self.assertEqual(m["text"], "\x02bold\x02 caf\u00e9")
            ws.send({"type": "part", "room": "render", "reason": "later"})
            chat.expect(r"\*\*\* webby left render \(later\)")
            irc.expect(r":webby!\S+ PART #render :later")


class OverTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pc-wss-")
        cls.cert = os.path.join(cls.tmp, "cert.pem")
        cls.key = os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-keyout", cls.key, "-out", cls.cert],
                       check=True, capture_output=True, timeout=60)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_wss_and_https_over_a_tls_listener(self):
        with FacesServer("--set", f"web.tls_certificate={self.cert}", "--set",
                      f"web.tls_key={self.key}", "--set", "web.flood_rate=0",
                      listeners=(("web", "web"), ("chat", "chat"))) as srv:
            port = srv.ports["web"]
            c = Http(port, tls=tls_client_context())
            c.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status, h, body = c.response()
            self.assertEqual(status, 200)
            self.assertIn(b"percore chat", body)
            c.close()
            chat = chat_client(srv)
            chat.join("secure")

            async def run():
                async with websockets.connect(
                        f"wss://localhost:{port}/chat", ssl=tls_client_context(),
                        origin=f"https://localhost:{port}") as w:
                    assert json.loads(await w.recv())["type"] == "welcome"
                    await w.send(json.dumps({"type": "nick", "nick": "tls_user"}))
                    await w.send(json.dumps({"type": "join", "room": "secure"}))
                    await w.send(json.dumps({"type": "say", "room": "secure",
                                             "text": "over wss"}))
                    while True:
                        m = json.loads(await w.recv())
                        if m["type"] == "say":
                            return m
            m = asyncio.run(asyncio.wait_for(run(), 20 * SLOW))
            self.assertEqual((m["nick"], m["text"]), ("tls_user", "over wss"))
            chat.expect(r"tls_user: over wss")


if __name__ == "__main__":
    unittest.main()

"""The web face's WebSocket (RFC 6455) against a real percored, with raw
frames: the handshake and its refusals, fragments with control frames
between them, ping/pong both ways, every close code the face sends
(1000, 1001, 1002, 1003, 1007, 1008, 1009), the JSON requests, input
held while a request is pending, and a client split at every byte."""

import asyncio
import json
import socket
import struct
import time
import unittest

import websockets

from percored import SLOW, Percored, SharedServer
from webclient import Http, Ws, frame, handshake_request


def web_server(*extra, workers=2):
    return Percored("--set", "web.flood_rate=0", "--set", "web.max_message=4K",
                    *extra, listeners=(("web", "web"),), workers=workers)


class Handshake(SharedServer):
    LISTENER = "web"
    server = staticmethod(web_server)

    def status(self, request):
        c = Http(self.port)
        c.send(request)
        status, h, _ = c.response()
        c.close()
        return status, h

    def test_a_good_handshake_is_accepted_and_welcomed(self):
        ws = Ws(self.port)  # checks 101 and Sec-WebSocket-Accept
        self.assertRegex(ws.nick, r"^guest\d+$")
        ws.close()

    def test_a_missing_or_malformed_key_gets_400(self):
        self.assertEqual(self.status(handshake_request(key="")[0])[0], 400)
        self.assertEqual(self.status(handshake_request(key="c2hvcnQ=")[0])[0],
                         400)

    def test_another_version_gets_426_naming_13(self):
        status, h = self.status(handshake_request(version="8")[0])
        self.assertEqual((status, h["sec-websocket-version"]), (426, "13"))
        status, h = self.status(handshake_request(version="")[0])
        self.assertEqual((status, h["sec-websocket-version"]), (426, "13"))

    def test_a_plain_get_of_the_endpoint_gets_426(self):
        status, h = self.status(b"GET /chat HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual((status, h["upgrade"]), (426, "websocket"))

    def test_a_foreign_origin_gets_403_and_the_own_one_is_accepted(self):
        req, _ = handshake_request(extra="Origin: http://evil.example\r\n")
        self.assertEqual(self.status(req)[0], 403)
        Ws(self.port, extra="Origin: http://127.0.0.1\r\n").close()

    def test_allowed_origins_lists_who_may_connect(self):
        with web_server("--set", "web.allowed_origins=https://a.example "
                        "http://b.example:8080") as srv:
            port = srv.ports["web"]
            Ws(port, extra="Origin: http://b.example:8080\r\n").close()
            c = Http(port)
            c.send(handshake_request(extra="Origin: http://127.0.0.1\r\n")[0])
            self.assertEqual(c.response()[0], 403)
            c.close()

    def test_handshake_and_frames_split_at_every_byte(self):
        c = Http(self.port)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req, _ = handshake_request()
        data = req + frame(1, json.dumps({"type": "rooms"})) + frame(9, b"hi")
        for i in range(len(data)):
            c.send(data[i:i + 1])
        self.assertEqual(c.response(head_only=True)[0], 101)
        ws = Ws.__new__(Ws)
        ws.http = c
        self.assertEqual(ws.json()["type"], "welcome")
        self.assertEqual(ws.json()["for"], "rooms")
        self.assertEqual(ws.frame()[1:], (10, b"hi"))
        c.close()


class Frames(SharedServer):
    LISTENER = "web"
    server = staticmethod(web_server)

    def member(self, room="frames"):
        ws = Ws(self.port)
        ws.join(room)
        return ws

    def said(self, ws, text):
        return ws.expect(type="say", text=text)[0]

    def test_fragments_are_reassembled_around_a_ping(self):
        ws = self.member()
        msg = json.dumps({"type": "say", "room": "frames", "text": "one two"})
        ws.send_frame(1, msg[:10], fin=False)
        ws.send_frame(9, b"between")  # a control frame between fragments
        ws.send_frame(0, msg[10:20], fin=False)
        ws.send_frame(0, msg[20:], fin=True)
        self.assertEqual(ws.frame()[1:], (10, b"between"))
        self.assertEqual(self.said(ws, "one two")["nick"], ws.nick)
        ws.close()

    def test_a_ping_is_answered_with_its_payload(self):
        ws = Ws(self.port)
        ws.send_frame(9, b"\x00\xffpayload")
        self.assertEqual(ws.frame(), (True, 10, b"\x00\xffpayload"))
        ws.send_frame(10, b"unsolicited pong")  # ignored, as RFC 6455 says
        ws.send({"type": "rooms"})
        self.assertEqual(ws.json()["for"], "rooms")
        ws.close()

    def closes_with(self, code, *frames):
        ws = Ws(self.port)
        for f in frames:
            ws.http.send(f)
        got, _ = ws.close_code()
        self.assertEqual(got, code)
        self.assertTrue(ws.http.closed())

    def test_an_unmasked_client_frame_closes_with_1002(self):
        self.closes_with(1002, frame(1, '{"type":"rooms"}', mask=False))

    def test_reserved_bits_and_bad_control_frames_close_with_1002(self):
        self.closes_with(1002, frame(1, "{}", rsv=4))
        self.closes_with(1002, frame(9, b"x" * 126))
        self.closes_with(1002, frame(9, b"x", fin=False))
        self.closes_with(1002, frame(0, b"continuation of nothing"))
        self.closes_with(1002, frame(3, b"reserved opcode"))

    def test_invalid_utf8_closes_with_1007(self):
        self.closes_with(1007, frame(1, b'{"type":"say","text":"\xc3\x28"}'))
        # ... also when a character is split between fragments.
        self.closes_with(1007, frame(1, b"\xe2\x82", fin=False),
                         frame(0, b"\x28", fin=True))

    def test_an_oversize_message_closes_with_1009(self):
        self.closes_with(1009, frame(1, "x" * 5000))
        self.closes_with(1009, frame(1, "x" * 3000, fin=False),
                         frame(0, "y" * 3000, fin=True))

    def test_a_binary_message_closes_with_1003(self):
        self.closes_with(1003, frame(2, b"\x01\x02"))

    def test_a_clean_close_is_echoed_then_the_tcp_connection_ends(self):
        ws = Ws(self.port)
        ws.send_frame(8, struct.pack("!H", 1000) + b"done")
        self.assertEqual(ws.close_code(), (1000, ""))
        self.assertTrue(ws.http.closed())

    def test_quit_closes_with_1000_and_others_see_the_reason(self):
        a, b = self.member("quitroom"), self.member("quitroom")
        a.send({"type": "quit", "reason": "off to lunch"})
        self.assertEqual(a.close_code(), (1000, "bye"))
        self.assertTrue(a.http.closed())  # the server ends TCP first
        m = b.expect(type="quit", nick=a.nick)[0]
        self.assertEqual(m["text"], "off to lunch")
        b.close()

    def test_python_websockets_completes_the_close_handshake(self):
        async def run():
            async with websockets.connect(
                    f"ws://127.0.0.1:{self.port}/chat") as c:
                welcome = json.loads(await c.recv())
                await c.send(json.dumps({"type": "join", "room": "lib"}))
                while json.loads(await c.recv()).get("for") != "join":
                    pass
                pong = await c.ping()
                await asyncio.wait_for(pong, 10 * SLOW)
                await c.close()
                return welcome, c.close_code
        welcome, code = asyncio.run(run())
        self.assertEqual((welcome["type"], code), ("welcome", 1000))

    def test_bad_json_is_answered_and_the_connection_kept(self):
        ws = Ws(self.port)
        for text, code in (("not json", "bad_json"), ("[1,2]", "bad_json"),
                           ('{"type":"dance"}', "unknown_type"),
                           ('{"type":"join","room":"bad room"}', "bad_room"),
                           ('{"type":"nick","nick":"9lives"}', "bad_nick"),
                           ('{"type":"nick","nick":"guest77"}', "nick_reserved"),
                           ('{"type":"say","room":"x","text":"a\\u0007"}',
                            "bad_text"),
                           ('{"type":"say","room":"x","text":""}', "bad_text"),
                           ('{"type":"a","type":"b"}', "bad_json")):
            ws.send_frame(1, text)
            m = ws.json()
            self.assertEqual((m["type"], m["code"]), ("error", code), text)
        ws.send({"type": "rooms"})
        self.assertEqual(ws.json()["for"], "rooms")
        ws.close()

    def test_requests_wait_for_the_answer_before_them(self):
        ws = Ws(self.port)
        # Three requests in one segment: the say must find the join done.
        ws.http.send(frame(1, json.dumps({"type": "nick", "nick": "holder"})) +
                     frame(1, json.dumps({"type": "join", "room": "held"})) +
                     frame(1, json.dumps({"type": "say", "room": "held",
                                          "text": "after join"})))
        m, skipped = ws.expect(type="say", text="after join")
        self.assertEqual(m["nick"], "holder")
        self.assertFalse([s for s in skipped if s["type"] == "error"], skipped)
        ws.close()

    def test_private_messages_and_me(self):
        a, b = self.member("pm"), self.member("pm")
        a.send({"type": "msg", "to": b.nick, "text": "psst"})
        self.assertEqual(a.expect(type="ok")[0]["to"], b.nick)
        m = b.expect(type="say", text="psst")[0]
        self.assertEqual((m["nick"], m["to"], "room" in m),
                         (a.nick, b.nick, False))
        a.send({"type": "me", "room": "pm", "text": "waves"})
        self.assertEqual(b.expect(type="me")[0]["text"], "waves")
        a.send({"type": "msg", "to": "nobody_here", "text": "x"})
        self.assertEqual(a.expect(type="error")[0]["code"], "no_such_nick")
        a.close()
        b.close()


class Limits(unittest.TestCase):
    def test_a_slow_reader_is_cut_with_1008_after_its_last_whole_message(self):
        with web_server("--set", "web.sendq=16K", "--set", "web.sndbuf=4096",
                        "--set", "web.max_message=64K") as srv:
            port = srv.ports["web"]
            slow = Ws(port, rcvbuf=4096)
            slow.join("flood")
            fast = Ws(port)
            fast.join("flood")
            text = "z" * 1000
            for i in range(100):  # 100K for a 16K sendq; fast reads its own
                fast.send({"type": "say", "room": "flood", "text": text})
                fast.expect(type="say", text=text)
            # What the slow reader gets is whole frames, then the close.
            said = 0
            while True:
                fin, op, payload = slow.frame()
                if op == 8:
                    break
                self.assertTrue(fin and op == 1)
                said += json.loads(payload)["type"] == "say"
            self.assertEqual(struct.unpack("!H", payload[:2])[0], 1008)
            self.assertEqual(payload[2:], b"sendq exceeded")
            self.assertLess(said, 100)
            self.assertTrue(slow.http.closed())
            m = fast.expect(type="quit", nick=slow.nick)[0]
            self.assertEqual(m["text"], "sendq exceeded")
            fast.close()

    def test_the_server_pings_a_silent_client_and_closes_it_with_1001(self):
        with web_server("--set", "web.ping_interval=0.2", "--set",
                        "web.ping_timeout=0.3") as srv:
            port = srv.ports["web"]
            silent = Ws(port)
            self.assertEqual(silent.frame()[1:], (9, b"percore"))
            self.assertEqual(silent.close_code(), (1001, "ping timeout"))
            self.assertTrue(silent.http.closed())
            # One that answers pings stays.
            answering = Ws(port)
            deadline = time.time() + 1.0
            pings = 0
            while time.time() < deadline:
                try:
                    fin, op, payload = answering.frame(timeout=0.1)
                except socket.timeout:
                    continue
                self.assertEqual(op, 9)
                pings += 1
                answering.send_frame(10, payload)
            self.assertGreaterEqual(pings, 1)
            answering.send({"type": "rooms"})
            self.assertEqual(answering.json()["for"], "rooms")
            answering.close()

    def test_flood_control_delays_messages_and_drops_none(self):
        with Percored("--set", "web.flood_rate=50", "--set",
                      "web.flood_burst=2", listeners=(("web", "web"),)) as srv:
            ws = Ws(srv.ports["web"])
            ws.join("slowly")
            ws.http.send(b"".join(frame(1, json.dumps(
                {"type": "say", "room": "slowly", "text": str(i)}))
                for i in range(20)))
            got = [ws.expect(type="say")[0]["text"] for _ in range(20)]
            self.assertEqual(got, [str(i) for i in range(20)])
            ws.close()


if __name__ == "__main__":
    unittest.main()

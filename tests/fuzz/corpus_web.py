"""Seeds of fuzz_web_input (the record format at the top of
tests/fuzz/fuzz_web_input.c): HTTP sessions and WebSocket sessions of the
chat page's JSON messages. Used by corpus.py."""

import json

WS_A, TWO, WS_B = 1, 2, 4
READ = bytes([0x4F])  # op 4: read, waiting up to 1.5 ms


def write(data, piece=None, client=0):
    """Raw bytes, whole or in pieces of 1-15 bytes."""
    out = b""
    while data:
        part, data = data[:511], data[511:]
        op = len(part) >> 8
        k = 15 if piece is None else piece - 1
        out += bytes([client << 7 | op << 4 | k, len(part) & 0xFF]) + part
    return out


def frame(b0, payload, masked=True, piece=None, client=0):
    """A frame built by the harness; payload at most 255 bytes."""
    if isinstance(payload, str):
        payload = payload.encode()
    assert len(payload) < 256
    k = (0 if masked else 4) | (3 if piece is None else piece)
    return bytes([client << 7 | 0x20 | k, b0, len(payload)]) + payload


def msg(obj, client=0, **kw):
    return frame(0x81, json.dumps(obj), client=client, **kw)


GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
UPGRADE = (b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: "
           b"dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def sessions():
    s = {}
    s["http-get"] = bytes([0]) + write(GET) + READ
    s["http-get-split-bytes"] = bytes([0]) + write(GET, piece=1) + READ
    s["http-pipelined"] = bytes([0]) + write(
        GET + b"HEAD /index.html HTTP/1.1\r\n\r\nGET /nope HTTP/1.0\r\n"
        b"Connection: keep-alive\r\n\r\nGET / HTTP/1.1\r\nIf-None-Match: "
        b"\"x\"\r\nConnection: close\r\n\r\n") + READ
    s["http-post-body"] = bytes([0]) + write(
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n"
        b"\r\n") + READ
    s["http-chunked-body"] = bytes([0]) + write(
        b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n"
        b"0\r\n\r\nGET / HTTP/1.1\r\n\r\n", piece=7) + READ
    s["http-bad-request"] = bytes([0]) + write(b"GET / HTTP/1.1\r\nbad\r\n\r\n")
    s["http-too-long-target"] = bytes([0]) + write(
        b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n") + READ
    s["http-too-many-headers"] = bytes([0]) + write(
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(70))
        + b"\r\n") + READ
    s["http-large-body"] = bytes([0]) + write(
        b"POST / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n") + READ
    s["http-version-2"] = bytes([0]) + write(b"GET / HTTP/2.0\r\n\r\n") + READ
    s["http-traversal"] = bytes([0]) + write(
        b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\n\r\n") + READ
    s["http-upgrade-raw"] = bytes([0]) + write(UPGRADE) + READ + write(
        bytes([0x81, 0x80 | 16, 1, 2, 3, 4]) +
        bytes(b ^ [1, 2, 3, 4][i % 4] for i, b in enumerate(b'{"type":"rooms"}')))
    s["http-upgrade-bad-version"] = bytes([0]) + write(
        UPGRADE.replace(b"Version: 13", b"Version: 8")) + READ
    s["http-half-close"] = bytes([0]) + write(GET[:20]) + bytes([0x50])
    s["ws-nick-join-say"] = bytes([WS_A]) + msg({"type": "nick", "nick": "ann"}) \
        + msg({"type": "join", "room": "lobby"}) \
        + msg({"type": "say", "room": "lobby", "text": "hello \u2713"}) + READ
    s["ws-everything"] = bytes([WS_A]) + b"".join(msg(m) for m in (
        {"type": "join", "room": "r", "key": "k"},
        {"type": "me", "room": "r", "text": "waves"},
        {"type": "names", "room": "r"}, {"type": "rooms"},
        {"type": "topic", "room": "r", "topic": "new"},
        {"type": "topic", "room": "r"}, {"type": "away", "text": "brb"},
        {"type": "msg", "to": "nobody", "text": "hi", "action": True},
        {"type": "part", "room": "r", "reason": "bye"},
        {"type": "quit", "reason": "done"})) + READ
    s["ws-bad-json"] = bytes([WS_A]) + frame(0x81, b"{not json") + frame(
        0x81, b'{"type":1}') + frame(0x81, b'{"type":"x","type":"y"}') + READ
    s["ws-fragments-and-ping"] = bytes([WS_A]) + frame(0x01, b'{"type":') \
        + frame(0x89, b"ping") + frame(0x00, b'"ro') + frame(0x80, b'oms"}') + READ
    s["ws-split-frames"] = bytes([WS_A]) + msg({"type": "rooms"}, piece=0) \
        + frame(0x89, b"x", piece=1) + READ
    s["ws-unmasked"] = bytes([WS_A]) + frame(0x81, b"{}", masked=False) + READ
    s["ws-bad-utf8"] = bytes([WS_A]) + frame(0x81, b'{"a":"\xc3\x28"}') + READ
    s["ws-binary"] = bytes([WS_A]) + frame(0x82, b"\x00\x01") + READ
    s["ws-close"] = bytes([WS_A]) + frame(0x88, b"\x03\xe8bye") + READ
    s["ws-close-bad-code"] = bytes([WS_A]) + frame(0x88, b"\x03\xed") + READ
    s["ws-oversize"] = bytes([WS_A]) + bytes([0x2B, 0x81, 40]) + b"x" * 255 \
        + READ
    s["ws-rsv"] = bytes([WS_A]) + frame(0xC1, b"{}") + READ
    s["ws-two-in-a-room"] = bytes([WS_A | TWO | WS_B]) \
        + msg({"type": "join", "room": "two"}) \
        + msg({"type": "join", "room": "two"}, client=1) + READ \
        + msg({"type": "say", "room": "two", "text": "a"}) \
        + msg({"type": "msg", "to": "guest1", "text": "b"}, client=1) \
        + bytes([0x60]) + READ
    s["ws-and-http"] = bytes([WS_A | TWO]) + msg({"type": "rooms"}) \
        + write(GET, client=1) + READ + bytes([0xE0]) + READ
    return s


WORDS = [b"GET ", b"HEAD ", b"POST ", b" HTTP/1.1\r\n", b" HTTP/1.0\r\n",
         b"\r\n\r\n", b"Host: ", b"Connection: close\r\n",
         b"Connection: keep-alive\r\n", b"Connection: Upgrade\r\n",
         b"Upgrade: websocket\r\n", b"Sec-WebSocket-Version: 13\r\n",
         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
         b"Content-Length: ", b"Transfer-Encoding: chunked\r\n",
         b"If-None-Match: ", b"Origin: http://127.0.0.1\r\n", b"/chat",
         b"%2e%2e", b"/index.html", b'{"type":"', b'","room":"', b'","text":"',
         b'","nick":"', b'","to":"', b'"}', b"join", b"say", b"part", b"nick",
         b"quit", b"names", b"rooms", b"topic", b"away", b"\\u0000",
         b"\\ud800", b"\xc3\x28", b"\xed\xa0\x80"]

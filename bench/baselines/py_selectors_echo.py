#!/usr/bin/env python3
"""Echo server: one thread, non-blocking sockets and the selectors module
(epoll underneath) - the Python version of the plain epoll loop.

usage: py_selectors_echo.py PORT [HOST]. Prints "ready" once listening."""
import selectors
import socket
import sys


def main():
    port = int(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    sel = selectors.DefaultSelector()
    srv = socket.create_server((host, port), backlog=4096)
    srv.setblocking(False)
    sel.register(srv, selectors.EVENT_READ, None)
    print("ready", flush=True)
    while True:
        for key, mask in sel.select():
            sock = key.fileobj
            if sock is srv:
                try:
                    while True:
                        conn, _ = srv.accept()
                        conn.setblocking(False)
                        conn.setsockopt(socket.IPPROTO_TCP,
                                        socket.TCP_NODELAY, 1)
                        sel.register(conn, selectors.EVENT_READ, b"")
                except (BlockingIOError, OSError):
                    pass
                continue
            rest = key.data
            try:
                if rest:  # writable: send what the kernel did not take
                    n = sock.send(rest)
                    rest = rest[n:]
                    if not rest:
                        sel.modify(sock, selectors.EVENT_READ, b"")
                    else:
                        sel.modify(sock, selectors.EVENT_WRITE, rest)
                    continue
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError
                try:
                    n = sock.send(data)
                except BlockingIOError:
                    n = 0
                if n < len(data):  # stop reading until it drains
                    sel.modify(sock, selectors.EVENT_WRITE, data[n:])
            except BlockingIOError:
                pass
            except OSError:
                sel.unregister(sock)
                sock.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass

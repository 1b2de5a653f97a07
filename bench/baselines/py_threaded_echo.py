#!/usr/bin/env python3
"""Echo server: one blocking thread per connection (Python baseline).

usage: py_threaded_echo.py PORT [HOST]. Prints "ready" once listening.
Threads get 256 KiB stacks so that 10,000 of them fit comfortably."""
import socket
import sys
import threading


def serve(conn):
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)


def main():
    port = int(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    threading.stack_size(256 * 1024)
    srv = socket.create_server((host, port), backlog=4096, reuse_port=False)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass

#!/usr/bin/env python3
"""A discarding OTLP/HTTP collector for benchmarks: `otlp_sink.py PORT`.

Accepts POST /v1/traces (protobuf), reads the body, answers 200 with an empty
ExportTraceServiceResponse (zero bytes is a valid protobuf message) and counts requests and
bytes (GET /stats). GET /healthz answers 200. Binds 127.0.0.1 only.

It stands in for a collector that would run on another machine, yet shares the bench
machine's cores with the gateway: so it does as little as it can. A thread per connection
parses only the request line and Content-Length and reads bodies into one reused buffer
(the http.server version used ~2.5 us of CPU per traced request at c=32, about 6% of the
gateway's own CPU on the same cores; this one ~0.5 us).
"""
import json
import socket
import sys
import threading

STATS = {"exports": 0, "bytes": 0}
LOCK = threading.Lock()


def reply(conn, code, body=b"", ctype=b"application/x-protobuf"):
    reason = {200: b"OK", 404: b"Not Found"}.get(code, b"Error")
    conn.sendall(
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
        % (code, reason, ctype, len(body), body)
    )


def serve(conn):
    sink = bytearray(1 << 20)
    view = memoryview(sink)
    pending = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in pending:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                pending += chunk
            head, _, rest = pending.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) < 2:
                return
            method, path = parts[0], parts[1]
            n, close = 0, False
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    n = int(v)
                elif k == b"connection" and v.strip().lower() == b"close":
                    close = True
                elif k == b"expect" and v.strip().lower() == b"100-continue":
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if len(rest) >= n:
                pending = rest[n:]
            else:
                need, pending = n - len(rest), b""
                while need:
                    got = conn.recv_into(view, min(need, len(sink)))
                    if not got:
                        return
                    need -= got
            if method == b"POST":
                if path.endswith(b"/v1/traces"):
                    with LOCK:
                        STATS["exports"] += 1
                        STATS["bytes"] += n
                    reply(conn, 200)
                else:
                    reply(conn, 404)
            elif path == b"/stats":
                with LOCK:
                    body = json.dumps(STATS).encode()
                reply(conn, 200, body, b"application/json")
            else:
                reply(conn, 200 if path == b"/healthz" else 404)
            if close:
                return


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1])))
    srv.listen(64)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A discarding OTLP/HTTP collector for benchmarks: `otlp_sink.py PORT`.

Accepts POST /v1/traces (protobuf), reads the body, answers 200 with an empty
ExportTraceServiceResponse (zero bytes is a valid protobuf message) and counts requests and
bytes (GET /stats). GET /healthz answers 200. Binds 127.0.0.1 only.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATS = {"exports": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _reply(self, code, body=b"", ctype="application/x-protobuf"):
        self.send_response(code)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        self.rfile.read(n)
        if self.path.endswith("/v1/traces"):
            STATS["exports"] += 1
            STATS["bytes"] += n
            self._reply(200)
        else:
            self._reply(404)

    def do_GET(self):
        if self.path == "/stats":
            self._reply(200, json.dumps(STATS).encode(), "application/json")
        else:
            self._reply(200 if self.path == "/healthz" else 404)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()

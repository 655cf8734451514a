# A stand-in for a provider's API, for the --api-key tests: HTTPS with
# the test CA's certificate, on ADDR:PORT.  It logs each request as one
# JSON line to LOG (method, path, headers; the body's length), and
# answers:
#   POST /v1/messages with "stream": true -- Anthropic's server-sent
#        events for a reply of "standin-reply", one event every 0.4 s;
#   POST /v1/messages -- that reply as one JSON message;
#   GET /slow-stream -- three events 1 s apart, each flushed;
#   anything else -- {"path": ..., "seen": ...} echoing what it saw.
# usage: api-standin.py ADDR PORT CERT KEY LOG
import http.server, json, socket, ssl, sys, time

addr, port, cert, key, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


def sse(events):
    for name, data in events:
        yield ("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode()


MESSAGE = {"id": "msg_standin", "type": "message", "role": "assistant", "model": "claude-standin",
           "content": [], "stop_reason": None, "stop_sequence": None,
           "usage": {"input_tokens": 1, "output_tokens": 1}}


def reply_events():
    return sse([
        ("message_start", {"type": "message_start", "message": MESSAGE}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "standin-"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "reply"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                               "stop_sequence": None},
                           "usage": {"output_tokens": 2}}),
        ("message_stop", {"type": "message_stop"}),
    ])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Each write goes out at once, as a real API's server sends them.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def record(self, body):
        with open(log, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body_len": len(body)}) + "\n")

    def send_events(self, chunks, delay):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for c in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
            self.wfile.flush()
            time.sleep(delay)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def send_json(self, obj):
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self.record(body)
        path = self.path.split("?")[0]
        if self.command == "POST" and path == "/v1/messages":
            try:
                stream = json.loads(body or b"{}").get("stream")
            except ValueError:
                stream = False
            if stream:
                return self.send_events(list(reply_events()), 0.4)
            msg = dict(MESSAGE, content=[{"type": "text", "text": "standin-reply"}],
                       stop_reason="end_turn")
            return self.send_json(msg)
        if path == "/slow-stream":
            return self.send_events([b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"], 1.0)
        self.send_json({"path": self.path, "seen": "standin"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = http.server.ThreadingHTTPServer((addr, port), Handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()

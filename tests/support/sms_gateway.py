"""A real local HTTP server standing in for an SMS gateway: it answers the scripted
statuses in turn (then 200), records every request, and, like the gateways it stands
for, treats a repeated idempotency key as the same SMS (`delivered` counts each key
once, on its first 2xx answer).

Plain sockets and threads: green under the tests' eventlet, in the same process.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SmsGateway:
    def __init__(self, script=()):
        self.script = list(script)  # statuses to answer first, in order
        self.requests: list[dict] = []
        self.delivered: dict[str, dict] = {}
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                key = self.headers.get("Idempotency-Key")
                with gateway.lock:
                    gateway.requests.append({"headers": dict(self.headers), "body": body})
                    status = gateway.script.pop(0) if gateway.script else 200
                    if 200 <= status < 300:
                        gateway.delivered.setdefault(key, body)
                answer = ({"code": "OK", "biz_id": f"biz-{len(gateway.requests)}"} if status == 200
                          else {"code": "isv.BUSINESS_LIMIT_CONTROL" if status == 299 else "ERROR"})
                data = json.dumps(answer).encode()
                self.send_response(200 if status == 299 else status)  # 299: a refusal in a 200
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

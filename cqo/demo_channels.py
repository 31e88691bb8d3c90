"""Local stand-ins for notify's outside channels, for `cqo demo` and the tests: an SMTP
server (aiosmtpd) that writes every message it accepts to a folder, and an HTTP server
speaking the SMS gateway protocol of services/notify/channels/sms.py.

    sink = SmtpSink(port, workdir / "mail").start()
    ... sink.messages()   # email.message.EmailMessage objects, as received
    sink.stop()

The SMTP server runs in its own process: aiosmtpd's asyncio loop and eventlet's
monkey-patching do not mix (docs/architecture.md). `mode="drop"` closes the connection
right after reading a message, without answering (the client cannot know whether it was
delivered); a recipient starting with `reject` is refused with 550. Both are faults the
tests inject; the demo uses neither. Run as `python -m cqo.demo_channels PORT DIR MODE`
it is the server itself.

The SMS gateway is plain sockets and threads (green under the tests' eventlet, in their
process; real threads in the demo's). Like the gateways it stands for, it treats a
repeated idempotency key as the same SMS: `delivered` counts each key once, on its
first 2xx answer.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REFUSED = 299  # an `answer()` status: HTTP 200 carrying a refusal code, as real gateways do


class SmtpSink:
    def __init__(self, port: int, directory: Path, mode: str = "accept", cwd: Path | None = None):
        # cwd: the demo starts it in its folder, where a later demo finds it if left over
        self.port, self.directory, self.mode, self.cwd = port, Path(directory), mode, cwd
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> "SmtpSink":
        self.process = subprocess.Popen([sys.executable, "-m", "cqo.demo_channels", str(self.port),
                                         str(self.directory.resolve()), self.mode],
                                        cwd=self.cwd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"SMTP sink exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("SMTP sink did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.eml"))

    def messages(self) -> list:
        return [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in self.files()]

    def texts(self) -> list[tuple[str, str]]:
        """(file name, text) of every message as a reader sees it: the raw bytes, then the
        decoded headers and each decoded part (base64 or quoted-printable hide the text
        in the raw message)."""
        out = []
        for path in self.files():
            raw = path.read_bytes()
            message = BytesParser(policy=policy.default).parsebytes(raw)
            out.append((path.name, raw.decode("utf-8", errors="replace")))
            out.append((f"{path.name} headers", "\n".join(f"{k}: {v}" for k, v in message.items())))
            for n, part in enumerate(message.walk()):
                if not part.is_multipart():
                    out.append((f"{path.name} part {n} ({part.get_content_type()})", str(part.get_content())))
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SmsGateway:
    """Records every request; answers `answer()` (200: sent). `record`: a JSON-lines
    file each delivered SMS is appended to (the demo keeps them in its folder)."""

    def __init__(self, record: Path | None = None):
        self.requests: list[dict] = []
        self.delivered: dict[str, dict] = {}
        self.record = Path(record) if record else None
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                key = self.headers.get("Idempotency-Key")
                with gateway.lock:
                    gateway.requests.append({"headers": dict(self.headers), "body": body})
                    status = gateway.answer()
                    if 200 <= status < 300 and key not in gateway.delivered:
                        gateway.delivered[key] = body
                        if gateway.record is not None:
                            with gateway.record.open("a", encoding="utf-8") as out:
                                out.write(json.dumps(body, ensure_ascii=False) + "\n")
                answer = ({"code": "OK", "biz_id": f"biz-{len(gateway.requests)}"} if status == 200
                          else {"code": "isv.BUSINESS_LIMIT_CONTROL" if status == REFUSED else "ERROR"})
                data = json.dumps(answer).encode()
                self.send_response(200 if status == REFUSED else status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self) -> int:
        """The status of the next answer (called under the lock)."""
        return 200

    def start(self) -> "SmsGateway":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def free_port() -> int:
    """A port nothing listens on now (closed again before it is used: a small race)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(port: int, directory: Path, mode: str) -> None:  # pragma: no cover - in the subprocess
    import asyncio
    import os

    from aiosmtpd.smtp import SMTP

    counter = iter(range(1, 10**9))

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("reject"):
                return f"550 5.1.1 <{address}>: Recipient address rejected"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            n = next(counter)
            tmp = directory / f".{n:06d}.tmp"
            tmp.write_bytes(envelope.original_content or envelope.content)
            os.replace(tmp, directory / f"{os.getpid()}-{n:06d}.eml")
            if mode == "drop":
                server.transport.abort()  # the message arrived; its answer never will
            return "250 2.0.0 Ok: queued"

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Handler(), hostname="sink.test"),
                                          "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass  # Ctrl-C in the demo's terminal reaches this process too: no traceback


if __name__ == "__main__":  # pragma: no cover
    _serve(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])

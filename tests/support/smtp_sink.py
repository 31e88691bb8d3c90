"""A real SMTP server for the tests (aiosmtpd), run in its own process: its asyncio loop
and the tests' eventlet do not mix (DESIGN.md section 9).

    sink = SmtpSink(port, tmp_path / "mail").start()
    ... sink.messages()   # email.message.EmailMessage objects, as received
    sink.stop()

Each message the server accepts (after DATA) is written to a file. `mode="drop"`
closes the connection right after reading the message, without answering: the client
cannot know whether it was delivered. A recipient starting with `reject` is refused
with 550 (a permanent refusal).

Run as a script (`python smtp_sink.py PORT DIR MODE`) it is the server itself.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path


class SmtpSink:
    def __init__(self, port: int, directory: Path, mode: str = "accept"):
        self.port, self.directory, self.mode = port, Path(directory), mode
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> "SmtpSink":
        self.process = subprocess.Popen([sys.executable, __file__, str(self.port), str(self.directory), self.mode])
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

    asyncio.run(main())


if __name__ == "__main__":  # pragma: no cover
    _serve(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])

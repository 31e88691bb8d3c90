"""E-mail over SMTP: one connection kept open and reused from message to message
(STARTTLS or implicit TLS, login when credentials are set).

Where the connection breaks decides what the failure means. Before the server accepted
DATA nothing can have been delivered: retry. After DATA (the message on its way, the
final answer not read) the server may have queued it: `unknown`, never resent by itself.
A 5xx answer is a permanent refusal; a 4xx a temporary one."""
from __future__ import annotations

import base64
import logging
import re
import secrets
import smtplib
import ssl
import threading
from email.header import Header
from email.utils import formataddr, formatdate, make_msgid

from services.notify.channels import FAILED, RETRY, SENT, UNKNOWN, Outcome
from services.notify.settings import SmtpSettings

log = logging.getLogger(__name__)
_DOT = re.compile(rb"(?m)^\.")


SENDER_NAME = "沧州市首席质量官备案管理系统"


def _base64_lines(text: str) -> bytes:
    return base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")


def build_message(*, sender: str, to: str, subject: str, text: str, html: str,
                  delivery_id: int) -> bytes:
    """The message as it goes on the wire (CRLF lines): multipart/alternative, the
    plain-text part first and the HTML one second (mail clients show the last part they
    can), both UTF-8 in base64, the subject and the sender's name as RFC 2047 encoded
    words. Written out directly: the `email` package's header machinery costs more CPU
    per message than the whole SMTP conversation."""
    domain = sender.rpartition("@")[2] or "localhost"
    boundary = f"=_cqo_{delivery_id}_{secrets.token_hex(8)}"
    head = "\r\n".join([
        f"From: {formataddr((SENDER_NAME, sender), charset='utf-8')}",
        f"To: {to}",
        f"Subject: {Header(subject, 'utf-8', header_name='Subject').encode(linesep=chr(13) + chr(10))}",
        f"Date: {formatdate(usegmt=True)}",
        f"Message-ID: {make_msgid(idstring=f'notify-{delivery_id}', domain=domain)}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]).encode("ascii")
    parts = [head, b"\r\n\r\n"]
    for subtype, body in (("plain", text), ("html", html)):
        parts += [f"--{boundary}\r\nContent-Type: text/{subtype}; charset=\"utf-8\"\r\n"
                  f"Content-Transfer-Encoding: base64\r\n\r\n".encode("ascii"), _base64_lines(body)]
    parts.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(parts)


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {text}"[:500]


def _refused(code: int, message) -> Outcome:
    return Outcome(FAILED if 500 <= code < 600 else RETRY, _reply(code, message))


class EmailChannel:
    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._conn: smtplib.SMTP | None = None
        # one SMTP conversation at a time on a connection (the dispatcher gives each
        # sender its own channel; the lock keeps a misuse from interleaving commands)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.settings.host)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "tls":
            conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s,
                                    context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        try:
            conn.ehlo()
            if s.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if s.user:
                conn.login(s.user, s.password or "")
        except BaseException:
            _close(conn)
            raise
        return conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            _close(self._conn)
            self._conn = None

    def _drop(self) -> None:
        if self._conn is not None:
            _close(self._conn)
            self._conn = None

    def send(self, msg: bytes, to: str) -> Outcome:
        with self._lock:
            return self._send(msg, to)

    def _send(self, msg: bytes, to: str) -> Outcome:
        # a reused connection may have been closed by the server while idle: that is
        # found at MAIL, before anything was sent, so one fresh connection is tried
        for fresh in ((False, True) if self._conn is not None else (True,)):
            try:
                if fresh:
                    self._drop()
                    self._conn = self._connect()
            except smtplib.SMTPAuthenticationError as exc:
                self._drop()
                return Outcome(RETRY, "SMTP login refused: " + _reply(exc.smtp_code, exc.smtp_error))
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                return Outcome(RETRY, f"cannot connect to the SMTP server: {type(exc).__name__}: {exc}"[:500])
            try:
                return self._transaction(msg, to)
            except _LostBeforeData as exc:
                self._drop()
                if fresh:
                    return Outcome(RETRY, f"connection lost before DATA: {exc}"[:500])
        raise AssertionError("unreachable")

    def _transaction(self, msg: bytes, to: str) -> Outcome:
        conn = self._conn
        try:
            code, reply = conn.mail(self.settings.sender)
            if code != 250:
                conn.rset()
                return _refused(code, reply)
            code, reply = conn.rcpt(to)
            if code not in (250, 251):
                conn.rset()
                return _refused(code, reply)
            code, reply = conn.docmd("data")
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            raise _LostBeforeData(f"{type(exc).__name__}: {exc}") from None
        if code != 354:
            try:
                conn.rset()
            except (OSError, smtplib.SMTPException):
                self._drop()
            return _refused(code, reply)
        # past DATA: the message is on its way, a lost connection leaves it unknown
        body = _DOT.sub(b"..", msg)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        try:
            conn.send(body + b".\r\n")
            code, reply = conn.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            return Outcome(UNKNOWN, f"connection lost after DATA: {type(exc).__name__}: {exc}"[:500])
        if 200 <= code < 300:
            return Outcome(SENT, answer=_reply(code, reply))
        return _refused(code, reply)


class _LostBeforeData(Exception):
    pass


def _close(conn: smtplib.SMTP) -> None:
    try:
        conn.close()
    except OSError:
        pass

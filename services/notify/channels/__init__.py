"""The ways out: e-mail over SMTP and SMS through an HTTP gateway. Each send answers an
`Outcome`; what follows from it (retry later, fail now, leave as unknown) is decided by
the delivery use case (services/notify/delivery/dispatch.py)."""
from __future__ import annotations

from dataclasses import dataclass

SENT, RETRY, FAILED, UNKNOWN = "sent", "retry", "failed", "unknown"


@dataclass(frozen=True)
class Outcome:
    """`sent`; `retry` (nothing was delivered: try again later); `failed` (a permanent
    refusal); `unknown` (it may have been delivered: never resent automatically)."""

    result: str
    error: str | None = None
    answer: str | None = None

"""Errors that carry a stable code and a Chinese message for the user.

Every layer raises these (or marshmallow's ValidationError); the HTTP layer maps
them to application/problem+json, the CLI prints the message, the message
consumers record the code in `x-error-code` when dead-lettering.
"""
from __future__ import annotations


class CqoError(Exception):
    """Base class: `code` is stable (machine-readable), `message` is Chinese."""

    code = "CQO_ERROR"
    status = 400  # HTTP status when it reaches an HTTP client

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 status: int | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.field = field
        self.details = details or {}

    def __str__(self) -> str:  # logs show the code too
        return f"[{self.code}] {self.message}"


class ValidationFailed(CqoError):
    """Input failed a check (validators, schemas, domain rules)."""

    code = "VALIDATION_FAILED"
    status = 422


class NotFound(CqoError):
    code = "NOT_FOUND"
    status = 404


class Conflict(CqoError):
    code = "CONFLICT"
    status = 409


class Unauthorized(CqoError):
    code = "UNAUTHORIZED"
    status = 401


class Forbidden(CqoError):
    code = "FORBIDDEN"
    status = 403

"""Structured logs: one JSON object per line, with the ids that follow a filing across
services (docs/architecture.md, "Logs").

Every line a service writes carries `service` and `site` (the county code, or "city"),
and, while a worker handles something, its correlation ids: `message_id` of the AMQP
message being handled, `filing_id` when the message or the HTTP path names one, and
`call_id` (nameko's, which follows an RPC chain). A line about one filing of a batch
binds its own ids with `bind(filing_id=...)` or passes them as `extra=`.

`LOG_FORMAT=plain` gives the classic text line for a developer's terminal.

The ids live in a context variable: under eventlet every greenthread has its own
context (greenlet >= 1.0), so the workers of one process never see each other's ids.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from weakref import WeakKeyDictionary
from contextvars import ContextVar
from typing import Iterator

from nameko.extensions import DependencyProvider
from pythonjsonlogger.json import JsonFormatter

CORRELATION_FIELDS = ("filing_id", "message_id", "call_id")
_ids: ContextVar[dict] = ContextVar("cqo_log_ids", default={})
# set once per process by configure(): every record gets them
_process: dict[str, str] = {}


@contextmanager
def bind(**ids) -> Iterator[None]:
    """The ids (None values are left out) on every line logged inside the block."""
    token = _ids.set({**_ids.get(), **{k: str(v) for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _ids.reset(token)


def current() -> dict:
    return dict(_ids.get())


class CorrelationFilter(logging.Filter):
    """Puts the process's and the worker's ids on the record; an `extra=` given at the
    call wins (a line about one filing of a batch)."""

    def filter(self, record):
        for key, value in (*_process.items(), *_ids.get().items()):
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class CqoJsonFormatter(JsonFormatter):
    """`time` in ISO 8601 with the offset; `level`, `logger`, `message`; then every
    field a record carries (ids, extras). Tracebacks go in `exc_info` as one string."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("json_ensure_ascii", False)  # Chinese messages stay readable
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def formatter(style: str = "json") -> logging.Formatter:
    """The `()` factory the services' LOGGING sections name (LOG_FORMAT picks)."""
    if str(style).strip().lower() == "plain":
        return logging.Formatter(PLAIN_FORMAT)
    return CqoJsonFormatter()


def configure(service: str, site: str | None) -> None:
    """Once per process, after logging.config: every handler of the root logger gets
    the correlation filter (a filter on a handler sees records of every logger)."""
    _process.update(service=service, site=site or "city")
    correlation = CorrelationFilter()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, CorrelationFilter) for f in handler.filters):
            handler.addFilter(correlation)


def ids_of_worker(worker_ctx) -> dict:
    """What a worker's arguments say about the message or filing it handles: a
    shared.messaging Delivery (single consumers), a batch of them (their count only:
    each line about one of them binds its own), an HTTP path's `filing_id`."""
    from shared.messaging.consumer import Delivery

    ids = {"call_id": worker_ctx.call_id}
    for arg in worker_ctx.args:
        if isinstance(arg, Delivery):
            ids["message_id"] = arg.message_id
            if isinstance(arg.body, dict):
                ids["filing_id"] = arg.body.get("filing_id")
    kwargs = worker_ctx.kwargs or {}
    if kwargs.get("filing_id") is not None:
        ids["filing_id"] = kwargs["filing_id"]
    return ids


class LogContext(DependencyProvider):
    """Binds a worker's correlation ids for its lifetime (worker_setup and
    worker_teardown run in the worker's own greenthread). Attached to every service by
    shared.http.HttpBase, as the health probe is."""

    def setup(self):
        # not in worker_ctx.data: that travels as headers of the worker's own messages
        self._tokens = WeakKeyDictionary()

    def worker_setup(self, worker_ctx):
        self._tokens[worker_ctx] = _ids.set({**_ids.get(), **{
            k: str(v) for k, v in ids_of_worker(worker_ctx).items() if v is not None}})

    def worker_teardown(self, worker_ctx):
        token = self._tokens.pop(worker_ctx, None)
        if token is not None:
            try:
                _ids.reset(token)
            except ValueError:  # set in another context: nothing of ours to undo
                pass

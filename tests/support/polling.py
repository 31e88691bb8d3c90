"""Polling with a deadline: how the tests wait for asynchronous effects (never a bare sleep)."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, message: str | Callable[[], str] = "",
             interval: float = 0.05) -> T:
    """Poll until `predicate()` is truthy and return it; fail with `message` (text, or a
    callable giving it, for a message that shows the state at the time) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g}s waiting for {text or 'a condition'}")
        time.sleep(interval)

"""Waiting for what a real system does asynchronously, with a bound and a message that says what
never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(what: str, check: Callable[[], T | None], timeout: float = 90, interval: float = 0.5) -> T:
    """The first truthy value `check()` returns within `timeout` seconds; fails naming `what`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting until {what} (last: {last!r})")


def unique(prefix: str) -> str:
    """A Milvus-safe name no other test uses: `<prefix>_<digits>`."""
    return f"{prefix}_{time.time_ns() % 10**9}"

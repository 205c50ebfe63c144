"""When the sync worker does what: how it finds changes, when a pass includes a full check, how
long it waits after a failed pass.

Pure: settings, state and clock in, a decision out.
"""

from __future__ import annotations

import datetime
from enum import Enum

from vector_operator.api.migration_sync import ChangeCapture
from vector_operator.contract.sync import SyncSettings, SyncState

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
BACKOFF_INTERVALS = 6
"""A failing worker retries at least every this many intervals (a short interval retries sooner
than MAX_BACKOFF_S)."""


class ChangeFinding(Enum):
    """How a pass finds the rows that changed."""

    SLOT = "slot"
    """The keys logical decoding reports, re-read by key."""
    CHANGE_COLUMN = "changeColumn"
    """Rows whose change column reached the watermark."""
    FULL_CHECK = "fullCheck"
    """Every row (there is no other way): each pass is a full check."""


def change_finding(settings: SyncSettings) -> ChangeFinding:
    if settings.capture is ChangeCapture.LOGICAL_DECODING and settings.slot is not None:
        return ChangeFinding.SLOT
    if settings.change_column is not None:
        return ChangeFinding.CHANGE_COLUMN
    return ChangeFinding.FULL_CHECK


def full_check_due(settings: SyncSettings, state: SyncState, now: datetime.datetime) -> bool:
    """Whether this pass includes a full check: always when there is no other way to find
    changes, else every ``full_check_interval_s`` (the first pass included) when one is set."""
    if change_finding(settings) is ChangeFinding.FULL_CHECK:
        return True
    if settings.full_check_interval_s is None:
        return False
    if state.full_check_at is None:
        return True
    return (now - state.full_check_at).total_seconds() >= settings.full_check_interval_s


def backoff_s(failures: int, interval_s: float) -> float:
    """Seconds to wait after the ``failures``-th failed pass in a row: 1 s, doubling, at most
    min(60 s, 6 intervals)."""
    ceiling = min(MAX_BACKOFF_S, BACKOFF_INTERVALS * interval_s)
    return min(ceiling, FIRST_BACKOFF_S * 2.0 ** max(0, min(failures - 1, 32)))

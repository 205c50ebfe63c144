"""When a plan needs a step. A running plan steps on every tick; a finished one only for what is
scheduled (a post-cutover window's probes, the retention of the collection served before) or
asked for (spec.rollback, spec.retry). Anything else would be a finished plan writing status,
posting Events or calling Milvus for nothing. Pure: it reads only the object as it stands."""

from __future__ import annotations

import datetime

from vector_operator.api.migrationplan import (
    MigrationMode,
    MigrationPhase,
    MigrationPlanSpec,
    MigrationPlanStatus,
)
from vector_operator.rollback.triggers import parse_duration

TERMINAL = frozenset({MigrationPhase.SUCCEEDED, MigrationPhase.FAILED, MigrationPhase.ROLLED_BACK})
SERVING = frozenset({MigrationPhase.SUCCEEDED, MigrationPhase.SYNCING})
"""Phases after a cutover: the plan's collection serves (Syncing: and follows its source)."""


def cut_over_at(status: MigrationPlanStatus) -> datetime.datetime | None:
    """When the plan's collection began to serve (a Syncing plan has not completed)."""
    return status.completed_at or status.cut_over_at


def rollback_running(status: MigrationPlanStatus) -> bool:
    return status.rollback is not None and not status.rollback.completed


def abort_requested(spec: MigrationPlanSpec, status: MigrationPlanStatus) -> bool:
    """spec.abort on a plan that has not ended and runs no rollback yet: it is started before
    anything else, even when the plan waits on a problem (a source it cannot reach, a lost target)."""
    return (
        spec.abort
        and (status.phase or MigrationPhase.PENDING) not in TERMINAL
        and not rollback_running(status)
    )


def retry_requested(spec: MigrationPlanSpec, status: MigrationPlanStatus) -> bool:
    return status.phase is MigrationPhase.FAILED and spec.retry > (status.observed_retry or 0)


def manual_rollback_requested(spec: MigrationPlanSpec, status: MigrationPlanStatus) -> bool:
    record = status.rollback
    return status.phase in SERVING and spec.rollback and (record is None or record.policy != "manual")


def window_open(status: MigrationPlanStatus, now: datetime.datetime) -> bool:
    ends = status.post_cutover.window_ends_at if status.post_cutover is not None else None
    return status.phase in SERVING and ends is not None and now < ends


def probe_due(status: MigrationPlanStatus, now: datetime.datetime, interval_s: float) -> bool:
    measured = status.post_cutover.measured_at if status.post_cutover is not None else None
    return window_open(status, now) and (measured is None or (now - measured).total_seconds() >= interval_s)


def retirement_pending(spec: MigrationPlanSpec, status: MigrationPlanStatus) -> bool:
    previous, new = status.previous_physical_collection, status.new_physical_collection
    return (
        status.phase in SERVING
        and spec.mode is MigrationMode.BLUE_GREEN
        and previous is not None
        and previous != new
        and status.previous_retired_at is None
    )


def retirement_due(spec: MigrationPlanSpec, status: MigrationPlanStatus, now: datetime.datetime) -> bool:
    """The collection served before may go: retention passed, every policy's window closed, and no
    rollback that could need it is running."""
    served_since = cut_over_at(status)
    if not retirement_pending(spec, status) or served_since is None or rollback_running(status):
        return False
    kept_until = served_since + parse_duration(spec.previous_collection_retention)
    window = status.post_cutover.window_ends_at if status.post_cutover is not None else None
    return now >= kept_until and (window is None or now >= window)


def step_due(
    spec: MigrationPlanSpec, status: MigrationPlanStatus, now: datetime.datetime, probe_interval_s: float
) -> bool:
    """Whether a timer tick should step the plan now."""
    if status.phase not in TERMINAL or rollback_running(status):
        return True
    return (
        retry_requested(spec, status)
        or manual_rollback_requested(spec, status)
        or probe_due(status, now, probe_interval_s)
        or retirement_due(spec, status, now)
    )


def needs_timer(spec: MigrationPlanSpec, status: MigrationPlanStatus, now: datetime.datetime) -> bool:
    """Whether the plan's timer should run at all (re-judged on every change of the object)."""
    if status.phase not in TERMINAL or rollback_running(status):
        return True
    return window_open(status, now) or retirement_pending(spec, status)

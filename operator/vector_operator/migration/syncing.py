"""Syncing: a Continuous plan after its cutover. Its sync worker keeps the serving collection in
step with the source; InSync says whether it is within maxLag. The policies watch the lag and the
sync's failure rate (and the post-cutover figures while a window is open); a pause scales the
worker to zero. The sync ends when another plan's collection serves the alias (that plan caught up
before it swung, so stopping here leaves no gap) or the spec turns it off (mode Once)."""

from __future__ import annotations

from vector_operator.api.migrationplan import MigrationPhase
from vector_operator.migration import schedule
from vector_operator.migration.finished import after_cutover
from vector_operator.migration.step import Step
from vector_operator.migration.sync_progress import lag_problem, read_sync, run_worker
from vector_operator.migration.sync_worker import continuous
from vector_operator.rollback.execution import (
    MANUAL,
    ROLLBACK_REQUESTED,
    manual_rollback_actions,
    start_rollback,
)
from vector_operator.rollback.guard import POST_CUTOVER, SYNCING, guard
from vector_operator.rollback.triggers import Firing


def _stop(step: Step, reason: str, message: str) -> None:
    step.finish(MigrationPhase.SUCCEEDED)
    step.condition("InSync", False, reason, message)
    step.progressing("Succeeded", message, holds=False)
    step.event("SyncStopped", message)


def _in_sync(step: Step, holds: bool, reason: str, message: str) -> None:
    """InSync, with an Event when it turns (a Warning when the sync falls behind)."""
    step.condition("InSync", holds, reason, message)
    previous = step.previous_condition("InSync")
    if previous is None or (previous.status == "True") != holds:
        step.event("InSync" if holds else "OutOfSync", message, warning=not holds)


def syncing(step: Step) -> None:
    milvus, spec, status = step.obs.milvus, step.obs.collection_spec, step.status
    assert milvus is not None  # the observer reads Milvus in this phase
    assert spec is not None
    alias, new = spec.collection_name, status.new_physical_collection
    if milvus.alias_target != new:
        _stop(
            step,
            "HandedOver",
            f"{alias} serves {milvus.alias_target} now (a later plan cut over, or a human moved it): this"
            f" plan stopped following the source; {new} is no longer updated",
        )
        return
    if not continuous(step.spec):
        _stop(step, "SyncTurnedOff", f"sync.mode is {step.spec.sync.mode}: the sync worker stopped")
        return
    if schedule.manual_rollback_requested(step.spec, status):
        firing = Firing(MANUAL, ROLLBACK_REQUESTED, MANUAL, 0.0, 0.0)
        start_rollback(step, firing, manual_rollback_actions(step.spec), POST_CUTOVER)
        return
    if after_cutover(step):
        return
    reading = read_sync(step)
    if guard(step, SYNCING):
        return
    if step.paused:
        run_worker(step, replicas=0)
        step.condition("InSync", False, "Paused", "the sync is paused: resume to go on")
        step.progressing("Paused", "the sync worker is scaled to zero until the plan is resumed", holds=False)
        return
    if not run_worker(step):
        return
    if reading.caught_up:
        _in_sync(
            step,
            True,
            "CaughtUp",
            f"{reading.lag_s:.0f}s behind the source (maxLag {step.spec.sync.max_lag})",
        )
        step.progressing("Syncing", f"{alias} serves {new}, which follows the source's changes")
        return
    reason, message = lag_problem(step, reading)
    _in_sync(step, False, reason, message)

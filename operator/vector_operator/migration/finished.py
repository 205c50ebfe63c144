"""Succeeded, Failed and RolledBack: quiet, except for what is asked for (spec.retry re-runs a
Failed plan's failed batches; spec.rollback undoes a Succeeded one) or scheduled (post-cutover
probes while a policy's window is open; dropping the collection served before, once nothing can
need it any more)."""

from __future__ import annotations

from vector_operator.api.migrationplan import MigrationPhase, MigrationProgress, PostCutoverFigures
from vector_operator.migration import schedule, target_lock
from vector_operator.migration.effects import DropPhysical
from vector_operator.migration.progress import count_null_keys
from vector_operator.migration.step import Step
from vector_operator.rollback.execution import (
    MANUAL,
    ROLLBACK_REQUESTED,
    manual_rollback_actions,
    start_rollback,
)
from vector_operator.rollback.guard import POST_CUTOVER, guard
from vector_operator.rollback.triggers import Firing


def finished(step: Step) -> None:
    spec, status = step.spec, step.status
    if schedule.retry_requested(spec, status):
        _retry(step)
    elif schedule.manual_rollback_requested(spec, status):
        start_rollback(
            step,
            Firing(MANUAL, ROLLBACK_REQUESTED, MANUAL, 0.0, 0.0),
            manual_rollback_actions(spec),
            POST_CUTOVER,
        )
    elif status.phase is MigrationPhase.SUCCEEDED:
        after_cutover(step)


def after_cutover(step: Step) -> bool:
    """What a serving plan (Succeeded, Syncing) does: post-cutover probes and triggers while a
    window is open, then retiring the collection served before. True when a rollback started."""
    spec, status, now = step.spec, step.status, step.obs.now
    _record_probe(step)
    if schedule.window_open(status, now) and guard(step, POST_CUTOVER):
        return True
    if schedule.retirement_due(spec, status, now):
        _retire(step)
    return False


def _record_probe(step: Step) -> None:
    probe = step.obs.milvus.probe if step.obs.milvus is not None else None
    if probe is None:
        return
    figures = step.status.post_cutover or PostCutoverFigures()
    step.status.post_cutover = figures.model_copy(
        update={
            "recall_at_k": None if probe.recall_at_k is None else round(probe.recall_at_k, 4),
            "search_latency_p95_ms": None
            if probe.search_latency_p95_ms is None
            else round(probe.search_latency_p95_ms, 3),
            "measured_at": step.obs.now.replace(microsecond=0),
        }
    )


def _retire(step: Step) -> None:
    milvus, target, spec = step.obs.milvus, step.obs.target, step.obs.collection_spec
    previous = step.status.previous_physical_collection
    assert milvus is not None
    assert target is not None
    assert spec is not None
    assert previous is not None
    if milvus.alias_target == previous:
        return  # serves again (reverted outside this plan): kept
    step.effect(DropPhysical(spec.collection_name, previous, target.owner))
    step.status.previous_retired_at = step.obs.now.replace(microsecond=0)
    step.event(
        "PreviousCollectionDropped",
        f"retention {step.spec.previous_collection_retention} passed and no policy window is open:"
        f" dropped {previous}",
    )


def _retry(step: Step) -> None:
    if (busy := target_lock.busy(step.obs)) is not None:
        step.blocked(busy)
        return
    status, rerun = step.status, step.status.failed_ranges or "none"
    status.observed_retry = step.spec.retry
    status.failed_ranges, status.completed_at = None, None
    if not (status.progress and status.progress.records_done):  # nothing was written: every batch again
        null_keys = (status.progress.skipped_by_reason or {}).get("nullKey", 0) if status.progress else 0
        status.progress, status.quality, status.completed_ranges = MigrationProgress(), None, None
        count_null_keys(status, null_keys)
        rerun = "every batch"
    step.condition("Failed", False, "Retrying", f"retry {step.spec.retry}: running {rerun} again")
    step.event("Retrying", f"retry {step.spec.retry}: running {rerun} again; completed batches are kept")
    step.move_to(
        MigrationPhase.PENDING if status.new_physical_collection is None else MigrationPhase.GENERATING
    )

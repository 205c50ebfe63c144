"""Whether the RollbackPolicies guarding a plan fire now. Pure.

A plan is guarded while it is armed: before any execution, and again once a human resumed a plan
an execution paused (then only batches taken in after the resume count, so the batches that fired
once never fire twice). After the cutover each policy watches its own postCutoverWindow, over
figures measured on the new collection.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from vector_operator.api.migrationplan import MigrationPlanStatus
from vector_operator.migration.observation import GuardingPolicy
from vector_operator.migration.step import Step
from vector_operator.rollback.execution import start_rollback
from vector_operator.rollback.triggers import Observation, evaluate, parse_duration

POST_CUTOVER = "PostCutover"
SYNCING = "Syncing"


def window_end(policy: GuardingPolicy, completed_at: datetime.datetime) -> datetime.datetime:
    return completed_at + parse_duration(policy.spec.post_cutover_window)


def last_window_end(
    policies: Iterable[GuardingPolicy], completed_at: datetime.datetime
) -> datetime.datetime | None:
    """When the last guarding policy's post-cutover window closes (None: no policy guards)."""
    return max((window_end(policy, completed_at) for policy in policies), default=None)


def armed(status: MigrationPlanStatus) -> bool:
    record = status.rollback
    return record is None or (record.completed and record.resumed_at is not None)


def figures(phase: str, status: MigrationPlanStatus) -> dict[str, float]:
    """Collection-level values the triggers read in ``phase``."""
    quality, values = status.quality, {}
    if quality is not None and quality.coherence is not None and quality.coherence.mean is not None:
        values["coherence"] = quality.coherence.mean
    if phase == SYNCING:
        sync = status.sync
        if sync is not None and sync.lag_seconds is not None:
            values["syncLagSeconds"] = sync.lag_seconds
        if sync is not None and sync.coherence is not None:
            values["coherence"] = sync.coherence  # of the rows the sync re-embedded last
        written = (sync.changes_applied or 0) + (sync.skipped or 0) if sync is not None else 0
        if sync is not None and written:
            values["failureRate"] = (sync.skipped or 0) / written
        return values
    if phase == POST_CUTOVER:
        measured = status.post_cutover
        if measured is not None and measured.recall_at_k is not None:
            values["recallAtK"] = measured.recall_at_k
        if measured is not None and measured.search_latency_p95_ms is not None:
            values["searchLatencyP95Ms"] = measured.search_latency_p95_ms
        return values
    if quality is not None:
        for metric, value in (
            ("failureRate", quality.failure_rate),
            ("processingTimeMs", quality.processing_time_ms_p95),
            ("recallAtK", quality.recall_at_k),
            ("searchLatencyP95Ms", quality.search_latency_p95_ms),
        ):
            if value is not None:
                values[metric] = value
    return values


def guard(step: Step, phase: str) -> bool:
    """Evaluates the guarding policies; the first trigger that fires starts a rollback (True)."""
    status, now = step.status, step.obs.now
    if not armed(status) or not step.obs.policies:
        return False
    after = status.guard_armed_after or 0
    observation = Observation(
        phase=phase,
        recent_batches=[b for b in status.recent_batches or [] if (b.sequence or 0) > after],
        figures=figures(phase, status),
        now=now,
    )
    since = dict(status.trigger_since or {})
    for policy in sorted(step.obs.policies, key=lambda p: p.name):
        served_since = status.completed_at or status.cut_over_at  # a Syncing plan has not completed
        if phase == POST_CUTOVER and (served_since is None or now >= window_end(policy, served_since)):
            continue
        firing, since = evaluate(policy.name, policy.spec, observation, since)
        if firing is not None:
            status.trigger_since = since or None
            start_rollback(step, firing, list(policy.spec.actions), phase)
            return True
    status.trigger_since = since or None
    return False

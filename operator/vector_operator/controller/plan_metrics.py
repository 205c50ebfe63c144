"""A MigrationPlan's metrics, from what a step changed (published after its status was written, so
each batch, record and rollback is counted once): vectors generated, records skipped by reason,
batches by outcome, each new batch's processing time and coherence, alias swings, rollbacks, and
the plan's own quality levels for per-plan alerts. Labels stay bounded: namespace, plan, and a
reason, outcome, metric or level from a fixed set."""

from __future__ import annotations

from vector_operator.api.migrationplan import MigrationPlanSpec, MigrationPlanStatus
from vector_operator.api.rollbackpolicy import RollbackAction, StepResult
from vector_operator.contract.result import SkipReason
from vector_operator.metrics import OperatorMetrics
from vector_operator.migration import compact_ranges
from vector_operator.migration.effects import Decision, RecordHistory
from vector_operator.migration.observation import PlanIdentity
from vector_operator.migration.sync_worker import continuous, max_lag_s


def _declare(metrics: OperatorMetrics, identity: PlanIdentity) -> None:
    """The plan's counters and histograms exist at zero from its first step, so that Prometheus
    sees the first batches as an increase (a series born with a value hides it from rate())."""
    ns, name = identity.namespace, identity.name
    metrics.vectors_generated.labels(ns, name)
    metrics.batch_processing.labels(ns, name)
    metrics.batch_coherence.labels(ns, name)
    for outcome in ("succeeded", "failed"):
        metrics.batches_finished.labels(ns, name, outcome)
    for reason in SkipReason:
        metrics.records_skipped.labels(ns, name, reason.value)


def _thresholds(metrics: OperatorMetrics, identity: PlanIdentity, spec: MigrationPlanSpec) -> None:
    quality = spec.quality
    for metric, levels in (
        ("coherence", quality.coherence),
        ("failure_rate", quality.failure_rate),
        ("processing_time_ms", quality.processing_time_ms),
    ):
        for level in ("warning", "critical"):
            value = getattr(levels, level)
            if value is not None:
                metrics.plan_threshold.labels(identity.namespace, identity.name, metric, level).set(value)
    if continuous(spec):  # the level the sync lag alert compares with
        lag_limit = max_lag_s(spec.sync)
        metrics.plan_threshold.labels(identity.namespace, identity.name, "sync_lag_seconds", "warning").set(
            lag_limit
        )


def _records(
    metrics: OperatorMetrics, identity: PlanIdentity, before: MigrationPlanStatus, after: MigrationPlanStatus
) -> None:
    ns, name = identity.namespace, identity.name
    done_before = (before.progress.records_done if before.progress else None) or 0
    done_after = (after.progress.records_done if after.progress else None) or 0
    if done_after > done_before:
        metrics.vectors_generated.labels(ns, name).inc(done_after - done_before)
    skipped_before = (before.progress.skipped_by_reason if before.progress else None) or {}
    for reason, count in ((after.progress.skipped_by_reason if after.progress else None) or {}).items():
        if count > skipped_before.get(reason, 0):
            metrics.records_skipped.labels(ns, name, reason).inc(count - skipped_before.get(reason, 0))
    failed = compact_ranges.count(after.failed_ranges) - compact_ranges.count(before.failed_ranges)
    if failed > 0:
        metrics.batches_finished.labels(ns, name, "failed").inc(failed)


def _batches(metrics: OperatorMetrics, identity: PlanIdentity, decision: Decision) -> None:
    """The batches this step took in: every one (the history effect lists them all), not only the
    32 that recentBatches keeps."""
    ns, name = identity.namespace, identity.name
    new = [
        record
        for effect in decision.effects
        if isinstance(effect, RecordHistory)
        for record in effect.records
    ]
    if not new:
        return
    metrics.batches_finished.labels(ns, name, "succeeded").inc(len(new))
    for record in new:
        if record.p95_ms is not None:
            metrics.batch_processing.labels(ns, name).observe(record.p95_ms / 1000)
        if record.coherence is not None:
            metrics.batch_coherence.labels(ns, name).observe(record.coherence)
    lows = [r.coherence_min for r in new if r.coherence_min is not None]
    means = [r.coherence for r in new if r.coherence is not None]
    highs = [r.coherence_max for r in new if r.coherence_max is not None]
    for stat, value in (
        ("min", min(lows, default=None)),
        ("mean", sum(means) / len(means) if means else None),
        ("max", max(highs, default=None)),
    ):
        if value is not None:
            metrics.batch_coherence_stat.labels(ns, name, stat).set(value)


def _alias_swings(
    metrics: OperatorMetrics,
    namespace: str,
    alias: str,
    before: MigrationPlanStatus,
    after: MigrationPlanStatus,
) -> None:
    """From the status, where each swing is recorded once (a swing whose status write conflicted is
    found done on the next round, which emits no effect but records it)."""
    if after.cut_over_at is not None and before.cut_over_at is None:
        metrics.alias_swaps.labels(namespace, alias, "cutover").inc()
    rollback, earlier = after.rollback, before.rollback
    if rollback is None:
        return
    seen = len(earlier.steps) if earlier is not None and earlier.executed_at == rollback.executed_at else 0
    reverts = [
        s
        for s in rollback.steps[seen:]
        if s.action is RollbackAction.REVERT_ALIAS and s.result is StepResult.SUCCEEDED
    ]
    if reverts:
        metrics.alias_swaps.labels(namespace, alias, "revert").inc(len(reverts))


def publish(
    metrics: OperatorMetrics,
    identity: PlanIdentity,
    spec: MigrationPlanSpec,
    before: MigrationPlanStatus,
    decision: Decision,
    alias: str,
) -> None:
    """``alias``: the collection name the plan's target serves (its label on alias swings)."""
    after = decision.status
    _declare(metrics, identity)
    _thresholds(metrics, identity, spec)
    _records(metrics, identity, before, after)
    _batches(metrics, identity, decision)
    _alias_swings(metrics, identity.namespace, alias, before, after)
    _sync(metrics, identity, before, after)
    rollback, earlier = after.rollback, before.rollback
    if rollback is not None and (earlier is None or earlier.executed_at != rollback.executed_at):
        metrics.rollbacks.labels(identity.namespace, rollback.policy, rollback.metric or "manual").inc()
    quality = after.quality
    if quality is None:
        return
    for label, value in (
        ("coherence", quality.coherence.mean if quality.coherence is not None else None),
        ("failure_rate", quality.failure_rate),
        ("processing_time_ms", quality.processing_time_ms_p95),
    ):
        if value is not None:
            metrics.plan_quality.labels(identity.namespace, identity.name, label).set(float(value))


SYNC_KINDS = (
    ("changed", "changes_applied"),
    ("deleted", "deletes_applied"),
    ("reembedded", "reembedded"),
    ("reused", "reused"),
    ("skipped", "skipped"),
)


def _sync(
    metrics: OperatorMetrics, identity: PlanIdentity, before: MigrationPlanStatus, after: MigrationPlanStatus
) -> None:
    """The sync's lag, and its counts as counters: what this step's status added to them."""
    sync, earlier = after.sync, before.sync
    if sync is None:
        return
    if sync.lag_seconds is not None and sync.worker:
        metrics.sync_lag.labels(identity.namespace, identity.name).set(sync.lag_seconds)
    elif (identity.namespace, identity.name) in metrics.sync_lag._metrics:
        metrics.sync_lag.remove(identity.namespace, identity.name)  # no worker: no lag to speak of
    for kind, field in SYNC_KINDS:
        added = (getattr(sync, field) or 0) - ((getattr(earlier, field) or 0) if earlier is not None else 0)
        if added > 0:
            metrics.sync_rows.labels(identity.namespace, identity.name, kind).inc(added)

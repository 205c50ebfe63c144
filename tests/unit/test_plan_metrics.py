"""A MigrationPlan's metrics come from what a step changed: every batch and record once, with
bounded labels, and the plan's own levels for per-plan alerts."""

from __future__ import annotations

from tests.unit.plan_observations import (
    ALIAS,
    NOW,
    generating_status,
    job,
    milvus_view,
    plan_spec,
    result,
    step,
)

from vector_operator.api.migrationplan import MigrationPhase
from vector_operator.controller.plan_metrics import publish
from vector_operator.metrics import OperatorMetrics
from vector_operator.migration.batch_plan import BatchPlan
from vector_operator.migration.effects import RecordHistory, SwingAlias
from vector_operator.migration.observation import PlanIdentity

IDENTITY = PlanIdentity("search", "backfill", "plan-uid", 1, NOW)


def value(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_each_finished_batch_and_record_is_counted_once() -> None:
    metrics = OperatorMetrics()
    before = generating_status()
    outcome = result(read=50, skipped={"emptyText": 2}, coherence=0.91)
    decision = step(before, jobs=(job(0, outcome=outcome), job(1)))
    publish(metrics, IDENTITY, plan_spec(), before, decision, ALIAS)
    labels = {"namespace": "search", "plan": "backfill"}
    assert value(metrics, "vector_operator_vectors_generated_total", **labels) == 98
    assert value(metrics, "vector_operator_records_skipped_total", **labels, reason="emptyText") == 2
    assert value(metrics, "vector_operator_batches_finished_total", **labels, outcome="succeeded") == 2
    assert value(metrics, "vector_operator_batch_processing_seconds_count", **labels) == 2
    assert value(metrics, "vector_operator_batch_coherence_sum", **labels) == 0.91 + 0.99
    assert value(metrics, "vector_operator_batch_coherence_stat", **labels, stat="min") == 0.91
    assert value(metrics, "vector_operator_batch_coherence_stat", **labels, stat="max") == 0.99
    # The next step sees the same batches in the status: nothing is counted again.
    again = step(decision.status)
    publish(metrics, IDENTITY, plan_spec(), decision.status, again, ALIAS)
    assert value(metrics, "vector_operator_vectors_generated_total", **labels) == 98
    assert value(metrics, "vector_operator_batches_finished_total", **labels, outcome="succeeded") == 2


def test_more_batches_in_one_step_than_recent_batches_keeps_are_all_counted_and_recorded() -> None:
    metrics = OperatorMetrics()
    forty = BatchPlan(records_total=2000, records_per_batch=50, starts=tuple(range(51, 2000, 50)))
    spec = plan_spec(batching={"maxConcurrentJobs": 64})
    before = generating_status()
    decision = step(before, spec, batch_plan=forty, jobs=tuple(job(index) for index in range(40)))
    publish(metrics, IDENTITY, spec, before, decision, ALIAS)
    labels = {"namespace": "search", "plan": "backfill"}
    assert len(decision.status.recent_batches or []) == 32  # what the status keeps
    (history,) = [e for e in decision.effects if isinstance(e, RecordHistory)]
    assert sorted(record.batch for record in history.records) == list(range(40))
    assert value(metrics, "vector_operator_batches_finished_total", **labels, outcome="succeeded") == 40
    assert value(metrics, "vector_operator_batch_coherence_count", **labels) == 40
    # every skip reason exists at zero from the first step: its first skip is an increase()
    assert value(metrics, "vector_operator_records_skipped_total", **labels, reason="nullText") == 0


def test_the_plans_own_levels_are_exported_for_per_plan_alerts() -> None:
    metrics = OperatorMetrics()
    spec = plan_spec(quality={"coherence": {"warning": 0.6, "critical": 0.5}})
    status = generating_status()
    publish(metrics, IDENTITY, spec, status, step(status, spec), ALIAS)
    levels = {"namespace": "search", "plan": "backfill", "metric": "coherence"}
    assert value(metrics, "vector_operator_plan_threshold", **levels, level="critical") == 0.5
    assert value(metrics, "vector_operator_plan_threshold", **levels, level="warning") == 0.6
    defaults = {"namespace": "search", "plan": "backfill", "metric": "failure_rate"}
    assert value(metrics, "vector_operator_plan_threshold", **defaults, level="critical") == 0.05
    metrics.forget_plan("search", "backfill")
    assert value(metrics, "vector_operator_plan_threshold", **levels, level="critical") is None


def test_each_alias_swing_is_counted_once_also_when_its_status_write_conflicted() -> None:
    metrics = OperatorMetrics()
    labels = {"namespace": "search", "collection": ALIAS}
    cutting = generating_status(phase="CuttingOver", progress={"recordsDone": 200})
    swung = step(cutting, milvus=milvus_view(f"{ALIAS}__v1"))
    assert any(isinstance(e, SwingAlias) for e in swung.effects)
    # The status write conflicted: the next round finds the alias already moved, emits no swing,
    # and records the cutover; that write is the one counted.
    found_done = step(cutting, milvus=milvus_view(f"{ALIAS}__v2"))
    assert not any(isinstance(e, SwingAlias) for e in found_done.effects)
    publish(metrics, IDENTITY, plan_spec(), cutting, found_done, ALIAS)
    assert value(metrics, "vector_operator_alias_swaps_total", **labels, reason="cutover") == 1
    later = step(found_done.status, milvus=milvus_view(f"{ALIAS}__v2"))
    publish(metrics, IDENTITY, plan_spec(), found_done.status, later, ALIAS)
    assert value(metrics, "vector_operator_alias_swaps_total", **labels, reason="cutover") == 1

    # spec.rollback: the revert is counted when its step is recorded, once
    rolling = plan_spec(rollback=True)
    status = found_done.status
    for _ in range(4):
        decision = step(status, rolling, milvus=milvus_view(f"{ALIAS}__v2"))
        publish(metrics, IDENTITY, rolling, status, decision, ALIAS)
        status = decision.status
    assert status.phase is MigrationPhase.ROLLED_BACK
    assert value(metrics, "vector_operator_alias_swaps_total", **labels, reason="revert") == 1

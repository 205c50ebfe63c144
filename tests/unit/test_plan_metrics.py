"""A MigrationPlan's metrics come from what a step changed: every batch and record once, with
bounded labels, and the plan's own levels for per-plan alerts."""

from __future__ import annotations

from tests.unit.plan_observations import ALIAS, NOW, generating_status, job, plan_spec, result, step

from vector_operator.controller.plan_metrics import publish
from vector_operator.metrics import OperatorMetrics
from vector_operator.migration.observation import PlanIdentity

IDENTITY = PlanIdentity("search", "backfill", "plan-uid", 1, NOW)


def value(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_each_finished_batch_and_record_is_counted_once() -> None:
    metrics = OperatorMetrics()
    before = generating_status()
    outcome = result(read=50, skipped={"emptyText": 2}, coherence=0.91)
    decision = step(before, jobs=(job(0, outcome=outcome), job(1)))
    publish(metrics, IDENTITY, plan_spec(), before, decision)
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
    publish(metrics, IDENTITY, plan_spec(), decision.status, again)
    assert value(metrics, "vector_operator_vectors_generated_total", **labels) == 98
    assert value(metrics, "vector_operator_batches_finished_total", **labels, outcome="succeeded") == 2


def test_the_plans_own_levels_are_exported_for_per_plan_alerts() -> None:
    metrics = OperatorMetrics()
    spec = plan_spec(quality={"coherence": {"warning": 0.6, "critical": 0.5}})
    status = generating_status()
    publish(metrics, IDENTITY, spec, status, step(status, spec))
    levels = {"namespace": "search", "plan": "backfill", "metric": "coherence"}
    assert value(metrics, "vector_operator_plan_threshold", **levels, level="critical") == 0.5
    assert value(metrics, "vector_operator_plan_threshold", **levels, level="warning") == 0.6
    defaults = {"namespace": "search", "plan": "backfill", "metric": "failure_rate"}
    assert value(metrics, "vector_operator_plan_threshold", **defaults, level="critical") == 0.05
    metrics.forget_plan("search", "backfill")
    assert value(metrics, "vector_operator_plan_threshold", **levels, level="critical") is None


def test_a_cutover_counts_an_alias_swing() -> None:
    from tests.unit.plan_observations import milvus_view

    metrics = OperatorMetrics()
    cutting = generating_status(phase="CuttingOver", progress={"recordsDone": 200})
    publish(metrics, IDENTITY, plan_spec(), cutting, step(cutting, milvus=milvus_view(f"{ALIAS}__v1")))
    labels = {"namespace": "search", "collection": ALIAS, "reason": "cutover"}
    assert value(metrics, "vector_operator_alias_swaps_total", **labels) == 1

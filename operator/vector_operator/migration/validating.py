"""Validating: the new collection, measured as a whole (exact count, retrievability, recall@k,
search latency), against what the batches wrote and the plan's critical levels. Nothing embedded
means nothing to serve: the alias never moves to an empty collection."""

from __future__ import annotations

from vector_operator.api.migrationplan import MigrationMode, MigrationPhase
from vector_operator.migration.effects import DeleteJobs
from vector_operator.migration.progress import progress_of, quality_of
from vector_operator.migration.step import Step
from vector_operator.rollback.guard import guard


def _record_probe(step: Step) -> int | None:
    """The new collection's exact count, its figures recorded; None when it is gone."""
    milvus = step.obs.milvus
    assert milvus is not None  # the observer reports Milvus's absence
    if milvus.probe is None:
        return None
    probe, quality = milvus.probe, quality_of(step.status)
    if probe.recall_at_k is not None:
        quality.recall_at_k = round(probe.recall_at_k, 4)
    if probe.search_latency_p95_ms is not None:
        quality.search_latency_p95_ms = round(probe.search_latency_p95_ms, 3)
    if probe.retrievability is not None and quality.retrievability is None:
        quality.retrievability = round(probe.retrievability, 4)
    return probe.entities


def _problems(step: Step, entities: int, done: int) -> list[str]:
    quality, thresholds, physical = (
        quality_of(step.status),
        step.spec.quality,
        step.status.new_physical_collection,
    )
    problems = []
    if step.spec.mode is MigrationMode.BLUE_GREEN and entities != done:
        problems.append(f"{physical} holds {entities} entities, but the batches wrote {done}")
    rows = progress_of(step.status).records_total or 0
    if step.spec.source.backup is not None and entities != rows:
        problems.append(f"{physical} holds {entities} entities, but the backup has {rows} rows")
    mean = quality.coherence.mean if quality.coherence is not None else None
    critical = thresholds.coherence.critical
    if mean is not None and critical is not None and mean < critical:
        problems.append(f"coherence {mean:.3f} is below the critical level {critical}")
    rate, rate_critical = quality.failure_rate, thresholds.failure_rate.critical
    if rate is not None and rate_critical is not None and rate > rate_critical:
        problems.append(f"failure rate {rate:.3f} is above the critical level {rate_critical}")
    return problems


def validating(step: Step) -> None:
    if done_jobs := tuple(job.name for job in step.obs.jobs):  # every batch is in the status by now
        step.effect(DeleteJobs(done_jobs))
    entities = _record_probe(step)
    if entities is None:
        lost = step.status.new_physical_collection
        step.fail(
            "CollectionLost", f"{lost} is gone (dropped outside the operator?): nothing to validate or serve"
        )
        return
    if guard(step, MigrationPhase.VALIDATING.value):
        return
    if step.paused:
        step.progressing("Paused", "paused before the cutover: resume to go on", holds=False)
        return
    progress, previous = progress_of(step.status), step.status.previous_physical_collection
    done, physical = progress.records_done or 0, step.status.new_physical_collection
    if done == 0:
        step.fail(
            "NothingToMigrate",
            f"no record was embedded (skipped: {progress.skipped_by_reason or {}}): the alias keeps"
            f" serving {previous}",
        )
        return
    if problems := _problems(step, entities, done):
        step.fail(
            "ValidationFailed",
            f"validation failed: {'; '.join(problems)}; the alias keeps serving {previous}",
        )
        return
    quality = quality_of(step.status)
    step.event(
        "Validated",
        f"{physical}: {entities} entities, retrievability {quality.retrievability}, recall@10"
        f" {quality.recall_at_k}, search p95 {quality.search_latency_p95_ms} ms",
    )
    step.progressing("CuttingOver", f"validated {physical}")
    step.move_to(MigrationPhase.CUTTING_OVER)

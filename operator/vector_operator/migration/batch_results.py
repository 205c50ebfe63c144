"""Taking in the plan's finished Jobs: each batch exactly once, as done (its quality joins
recentBatches, where the RollbackPolicy triggers read it), or as failed for good (its Job
exhausted its retries). A finished Job already taken in, or one of an earlier retry round, is
deleted on a later step, after the status that records it was written. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from vector_operator.api.migrationplan import BatchMetrics
from vector_operator.contract.result import Status, WorkerResult
from vector_operator.migration import compact_ranges
from vector_operator.migration.effects import DeleteJobs, RecordHistory
from vector_operator.migration.history import BatchRecord
from vector_operator.migration.observation import BatchJob, JobState
from vector_operator.migration.progress import fold_failure, fold_success, recommendation_kind, remember_batch
from vector_operator.migration.step import Step


@dataclass
class BatchesSeen:
    running: set[int] = field(default_factory=set)
    unschedulable: str | None = None


def anomalies_found(result: WorkerResult) -> str:
    """What the batch's quality sample found wrong, in words; empty when nothing."""
    anomalies = result.quality.anomalies if result.quality is not None else None
    found: list[str] = []
    if anomalies is not None and anomalies.norm_outliers:
        found.append(f"{anomalies.norm_outliers} vectors of unusual norm")
    if anomalies is not None and anomalies.duplicate_vectors:
        found.append(f"{anomalies.duplicate_vectors} identical vectors of different texts")
    if anomalies is not None and anomalies.collapse:
        found.append(f"the embeddings collapsed (mean pairwise cosine {anomalies.mean_pairwise_cosine})")
    return "; ".join(found)


def _take_in(step: Step, job: BatchJob) -> BatchMetrics | None:
    """Folds the Job's batch into the status; its metrics when it succeeded."""
    result, index = job.result, job.index
    if job.state is JobState.COMPLETE and result is not None and result.status is Status.SUCCEEDED:
        taken = remember_batch(step.status, index, result, step.obs.now)
        before = {recommendation_kind(text) for text in step.status.recommendations or []}
        fold_success(step.status, index, result)
        kinds = step.status.recommendations or []
        if new := [text for text in kinds if recommendation_kind(text) not in before]:
            step.event("Recommendation", f"batch {index}: {'; '.join(new)}")
        if found := anomalies_found(result):
            step.event(
                "AnomaliesFound", f"batch {index}: {found} (plan totals in status.anomalies)", warning=True
            )
        return taken
    why = (
        f"{result.reason.value}: {result.message}" if result else "no result in the pod's termination message"
    )
    message = f"batch {index} failed after its retries: {why}"
    fold_failure(step.status, index, "BatchFailed", message, step.obs.now)
    step.event("BatchFailed", message, warning=True)
    return None


def take_in_finished_jobs(step: Step) -> BatchesSeen:
    """Folds every finished Job of the current round not taken in yet; returns what still runs."""
    seen = BatchesSeen()
    stale: list[str] = []
    succeeded: list[BatchRecord] = []
    current = step.status.observed_retry or 0
    for job in sorted(step.obs.jobs, key=lambda j: j.index):
        status = step.status
        recorded = compact_ranges.contains(status.completed_ranges, job.index) or compact_ranges.contains(
            status.failed_ranges, job.index
        )
        if job.round != current or recorded:  # an earlier round's, or already in the status
            stale.append(job.name)
            continue
        if job.state is JobState.RUNNING:
            seen.running.add(job.index)
            seen.unschedulable = seen.unschedulable or job.unschedulable
            continue
        if (metrics := _take_in(step, job)) is not None:
            succeeded.append(BatchRecord.of(metrics))
    if stale:
        step.effect(DeleteJobs(tuple(stale)))
    if succeeded:  # every one, also past the 32 that recentBatches keeps
        step.effect(RecordHistory(tuple(succeeded)))
    return seen

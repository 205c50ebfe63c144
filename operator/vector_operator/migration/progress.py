"""Taking a finished batch into the plan's typed status: counts, quality aggregates, completed and
failed ranges, the recent batches the triggers read, recent failures. Pure."""

from __future__ import annotations

import datetime
import re

from vector_operator.api.bounds import MAX_RECENT_BATCHES, MAX_RECENT_FAILURES
from vector_operator.api.migrationplan import (
    MAX_RECOMMENDATIONS,
    BatchFailure,
    BatchMetrics,
    CoherenceSummary,
    MigrationPlanStatus,
    MigrationProgress,
    MigrationQuality,
    PlanAnomalies,
    Throughput,
)
from vector_operator.contract.result import SkipReason, WorkerResult
from vector_operator.migration import compact_ranges

ROUND = 6


def progress_of(status: MigrationPlanStatus) -> MigrationProgress:
    if status.progress is None:
        status.progress = MigrationProgress()
    return status.progress


def quality_of(status: MigrationPlanStatus) -> MigrationQuality:
    if status.quality is None:
        status.quality = MigrationQuality()
    return status.quality


def count_skipped(status: MigrationPlanStatus, skipped: dict[str, int], read: int) -> None:
    """Adds rows read and skipped (by reason) to the progress."""
    progress = progress_of(status)
    by_reason = dict(progress.skipped_by_reason or {})
    for reason, count in skipped.items():
        by_reason[reason] = by_reason.get(reason, 0) + count
    progress.skipped_by_reason = by_reason
    progress.records_skipped = sum(by_reason.values())
    progress.records_read = (progress.records_read or 0) + read
    records_read = progress.records_read
    quality_of(status).failure_rate = (
        round(progress.records_skipped / records_read, ROUND) if records_read else 0.0
    )


def count_null_keys(status: MigrationPlanStatus, null_keys: int) -> None:
    """Rows without a key, found when planning: read and skipped (nullKey), counted once."""
    progress = progress_of(status)
    if null_keys and SkipReason.NULL_KEY.value not in (progress.skipped_by_reason or {}):
        count_skipped(status, {SkipReason.NULL_KEY.value: null_keys}, null_keys)


def _merge_coherence(quality: MigrationQuality, result: WorkerResult) -> None:
    measured = result.quality
    if measured is None or measured.coherence is None or not measured.sampled:
        return
    before, sampled, batch = quality.sampled_records or 0, measured.sampled, measured.coherence
    current = quality.coherence or CoherenceSummary()

    def weighted(previous: float | None, value: float) -> float:
        return round(
            value if previous is None else (previous * before + value * sampled) / (before + sampled), ROUND
        )

    quality.coherence = CoherenceSummary(
        mean=weighted(current.mean, batch.mean),
        min=round(min(batch.min, current.min if current.min is not None else batch.min), ROUND),
        max=round(max(batch.max, current.max if current.max is not None else batch.max), ROUND),
    )
    if measured.retrievability is not None:
        quality.retrievability = weighted(quality.retrievability, measured.retrievability)
    quality.sampled_records = before + sampled


def fold_success(status: MigrationPlanStatus, index: int, result: WorkerResult) -> None:
    """Batch ``index`` is done: its counts, quality and range join the status."""
    records = result.records
    count_skipped(status, dict(records.skipped), records.read)
    progress = progress_of(status)
    progress.records_done = (progress.records_done or 0) + records.upserted
    status.completed_ranges = compact_ranges.add(status.completed_ranges, [index])
    progress.batches_succeeded = compact_ranges.count(status.completed_ranges)
    quality = quality_of(status)
    _merge_coherence(quality, result)
    quality.processing_time_ms_p95 = round(
        max(quality.processing_time_ms_p95 or 0.0, result.timings.batch_p95_ms), 3
    )
    _merge_pace(status, result)
    _merge_findings(status, result)


PACE_SMOOTHING = 0.5
"""Weight of the latest Job in the plan's pace figures."""


def _smoothed(previous: float | None, latest: float) -> float:
    return round(latest if previous is None else PACE_SMOOTHING * latest + (1 - PACE_SMOOTHING) * previous, 3)


def _merge_pace(status: MigrationPlanStatus, result: WorkerResult) -> None:
    """The micro-batch size the Job settled on (the next Jobs start at it), its write rate and its
    start-up (the next plan on the collection sizes its Jobs by them)."""
    throughput = (status.throughput or Throughput()).model_copy()
    if result.batch_sizes.median:  # the median: the last call is the remainder
        throughput.encode_batch_size = result.batch_sizes.median
    if result.records.upserted and result.records_per_second:
        throughput.job_records_per_second = _smoothed(
            throughput.job_records_per_second, result.records_per_second
        )
    if result.timings.startup_ms:
        throughput.job_startup_seconds = _smoothed(
            throughput.job_startup_seconds, result.timings.startup_ms / 1000
        )
    status.throughput = throughput


def recommendation_kind(text: str) -> str:
    """A recommendation without its figures: the same advice with other numbers is the same kind."""
    return re.sub(r"[0-9][0-9.,%]*", "#", text)


def _merge_findings(status: MigrationPlanStatus, result: WorkerResult) -> None:
    """The worker's recommendations (the latest batch's first, without repeats, bounded) and its
    anomaly counts, which would otherwise go with its Job."""
    if result.recommendations:
        latest = {recommendation_kind(text): text[:512] for text in reversed(result.recommendations)}
        older = [text for text in status.recommendations or [] if recommendation_kind(text) not in latest]
        status.recommendations = [*reversed(latest.values()), *older][:MAX_RECOMMENDATIONS]
    anomalies = result.quality.anomalies if result.quality is not None else None
    if anomalies is None:
        return
    seen = status.anomalies or PlanAnomalies()
    status.anomalies = PlanAnomalies(
        norm_outliers=(seen.norm_outliers or 0) + anomalies.norm_outliers,
        duplicate_vectors=(seen.duplicate_vectors or 0) + anomalies.duplicate_vectors,
        collapsed_batches=(seen.collapsed_batches or 0) + int(anomalies.collapse),
    )


def fold_failure(
    status: MigrationPlanStatus, index: int, reason: str, message: str, now: datetime.datetime
) -> None:
    """Batch ``index`` failed for good: its range joins failedRanges, the attempt recentFailures."""
    status.failed_ranges = compact_ranges.add(status.failed_ranges, [index])
    entry = BatchFailure(batch=index, reason=reason, message=message[:1024], time=now.replace(microsecond=0))
    failures = [f for f in status.recent_failures or [] if not (f.batch == index and f.reason == reason)]
    status.recent_failures = [*failures, entry][-MAX_RECENT_FAILURES:]
    progress_of(status).batches_failed = compact_ranges.count(status.failed_ranges)


def batch_metrics(index: int, result: WorkerResult, sequence: int, now: datetime.datetime) -> BatchMetrics:
    """What the triggers (and the report) read of one finished batch."""
    records = result.records
    coherence = result.quality.coherence if result.quality is not None else None
    return BatchMetrics(
        batch=index,
        sequence=sequence,
        coherence=round(coherence.mean, ROUND) if coherence is not None else None,
        coherence_min=round(coherence.min, ROUND) if coherence is not None else None,
        coherence_max=round(coherence.max, ROUND) if coherence is not None else None,
        records=records.read,
        seconds=round(result.timings.total_ms / 1000, 3),
        finished_at=now.replace(microsecond=0),
        failure_rate=round(sum(records.skipped.values()) / records.read, ROUND) if records.read else 0.0,
        processing_time_ms=round(result.timings.batch_p95_ms, 3),
    )


def remember_batch(
    status: MigrationPlanStatus, index: int, result: WorkerResult, now: datetime.datetime
) -> BatchMetrics:
    """Appends the batch's metrics to recentBatches (bounded), numbered in the order taken in."""
    sequence = (status.batches_folded or 0) + 1
    status.batches_folded = sequence
    metrics = batch_metrics(index, result, sequence, now)
    status.recent_batches = [*(status.recent_batches or []), metrics][-MAX_RECENT_BATCHES:]
    return metrics


def summary(succeeded: int, total: int) -> str:
    return f"{succeeded}/{total}"

"""Folding one finished batch into the plan's status: counts, quality aggregates, completed
ranges, recent failures. Pure; the handler writes the result."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from vector_operator.migration import compact_ranges
from vector_operator.worker.result import WorkerResult

MAX_RECENT_FAILURES = 20
MAX_RECENT_BATCHES = 32
Json = dict[str, Any]


def _timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fold_success(status: Mapping[str, Any], index: int, result: WorkerResult) -> Json:
    """The status fields that change when batch `index` succeeded with `result`."""
    progress = dict(status.get("progress") or {})
    quality = dict(status.get("quality") or {})
    records = result.records
    read = int(progress.get("recordsRead") or 0) + records.read
    done = int(progress.get("recordsDone") or 0) + records.upserted
    skipped_by_reason = dict(progress.get("skippedByReason") or {})
    for reason, count in records.skipped.items():
        skipped_by_reason[reason] = skipped_by_reason.get(reason, 0) + count
    skipped = sum(skipped_by_reason.values())
    completed = compact_ranges.add(status.get("completedRanges"), [index])
    progress.update(
        recordsRead=read,
        recordsDone=done,
        recordsSkipped=skipped,
        skippedByReason=skipped_by_reason,
        batchesSucceeded=compact_ranges.count(completed),
    )
    if result.quality is not None and result.quality.coherence is not None and result.quality.sampled:
        coherence = dict(quality.get("coherence") or {})
        before = int(quality.get("sampledRecords") or 0)
        sampled = result.quality.sampled
        batch = result.quality.coherence
        mean = coherence.get("mean")
        coherence["mean"] = round(
            batch.mean
            if mean is None
            else (float(mean) * before + batch.mean * sampled) / (before + sampled),
            6,
        )
        coherence["min"] = round(min(batch.min, float(coherence.get("min", batch.min))), 6)
        coherence["max"] = round(max(batch.max, float(coherence.get("max", batch.max))), 6)
        quality["coherence"] = coherence
        if result.quality.retrievability is not None:
            previous = quality.get("retrievability")
            quality["retrievability"] = round(
                result.quality.retrievability
                if previous is None
                else (float(previous) * before + result.quality.retrievability * sampled)
                / (before + sampled),
                6,
            )
        quality["sampledRecords"] = before + sampled
    quality["processingTimeMsP95"] = round(
        max(float(quality.get("processingTimeMsP95") or 0.0), result.timings.batch_p95_ms), 3
    )
    quality["failureRate"] = round(skipped / read, 6) if read else 0.0
    throughput: Json = {}
    if result.batch_sizes.last:
        throughput["encodeBatchSize"] = result.batch_sizes.last
    metrics: Json = {
        "batch": index,
        "failureRate": round(sum(records.skipped.values()) / records.read, 6) if records.read else 0.0,
        "processingTimeMs": round(result.timings.batch_p95_ms, 3),
    }
    if result.quality is not None and result.quality.coherence is not None:
        metrics["coherence"] = round(result.quality.coherence.mean, 6)
    recent = [*(status.get("recentBatches") or []), metrics][-MAX_RECENT_BATCHES:]
    return {
        "progress": progress,
        "quality": quality,
        "completedRanges": completed,
        "throughput": throughput,
        "recentBatches": recent,
    }


def failure_entry(index: int, reason: str, message: str, now: datetime.datetime) -> Json:
    return {"batch": index, "reason": reason, "message": message[:1024], "time": _timestamp(now)}


def with_failure(status: Mapping[str, Any], entry: Json) -> list[Json]:
    """recentFailures with `entry` added (newest last, bounded), unless it is already there."""
    failures = [dict(f) for f in status.get("recentFailures") or []]
    if any(f.get("batch") == entry["batch"] and f.get("reason") == entry["reason"] for f in failures):
        return failures
    return [*failures, entry][-MAX_RECENT_FAILURES:]


def summary(succeeded: int, total: int) -> str:
    return f"{succeeded}/{total}"


def next_batches(
    total: int, completed: str | None, running: set[int], failed: set[int], max_concurrent: int
) -> list[int]:
    """The lowest-numbered batches to launch now: not done, not running, not failed, within the
    concurrency limit."""
    room = max_concurrent - len(running)
    if room <= 0:
        return []
    done = set(compact_ranges.members(completed))
    chosen: list[int] = []
    for index in range(total):
        if index in done or index in running or index in failed:
            continue
        chosen.append(index)
        if len(chosen) == room:
            break
    return chosen

"""A plan's batch history: one row per finished batch (when, how many records, how long, encode
p95, coherence), kept in a ConfigMap the plan owns so that `kubectl vector report` can draw the
whole run after the Jobs are gone. Bounded: past HISTORY_LIMIT rows, neighbours are merged
(weighted by records), so a plan of 100,000 batches keeps its shape in a few tens of kilobytes.
Pure."""

from __future__ import annotations

import base64
import csv
import gzip
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

from vector_operator.api.migrationplan import BatchMetrics

HISTORY_LIMIT = 4000


@dataclass(frozen=True)
class BatchRecord:
    batch: int
    sequence: int  # the order the plan took it in: a step repeated after a conflict adds nothing twice
    finished_at: float  # seconds since the epoch
    records: int
    seconds: float
    p95_ms: float | None
    coherence: float | None
    coherence_min: float | None
    coherence_max: float | None

    @classmethod
    def of(cls, metrics: BatchMetrics) -> BatchRecord:
        return cls(
            batch=metrics.batch,
            sequence=metrics.sequence or 0,
            finished_at=metrics.finished_at.timestamp() if metrics.finished_at else 0.0,
            records=metrics.records or 0,
            seconds=metrics.seconds or 0.0,
            p95_ms=metrics.processing_time_ms,
            coherence=metrics.coherence,
            coherence_min=metrics.coherence_min,
            coherence_max=metrics.coherence_max,
        )


COLUMNS = [field.name for field in fields(BatchRecord)]


def _weighted(a: float | None, b: float | None, wa: int, wb: int) -> float | None:
    if a is None or b is None:
        return a if b is None else b
    total = max(wa + wb, 1)
    return (a * wa + b * wb) / total


def _merge(a: BatchRecord, b: BatchRecord) -> BatchRecord:
    return BatchRecord(
        batch=a.batch,
        sequence=b.sequence,
        finished_at=b.finished_at,
        records=a.records + b.records,
        seconds=a.seconds + b.seconds,
        p95_ms=max((v for v in (a.p95_ms, b.p95_ms) if v is not None), default=None),
        coherence=_weighted(a.coherence, b.coherence, a.records, b.records),
        coherence_min=min((v for v in (a.coherence_min, b.coherence_min) if v is not None), default=None),
        coherence_max=max((v for v in (a.coherence_max, b.coherence_max) if v is not None), default=None),
    )


def appended(
    history: Sequence[BatchRecord], new: Iterable[BatchRecord], limit: int = HISTORY_LIMIT
) -> list[BatchRecord]:
    """``history`` with ``new`` after it (in the order finished), halved by merging neighbours
    whenever it grows past ``limit``."""
    latest = max((row.sequence for row in history), default=0)  # sequences only grow
    rows = [*history, *sorted((row for row in new if row.sequence > latest), key=lambda row: row.sequence)]
    while len(rows) > limit:
        rows = [
            _merge(rows[i], rows[i + 1]) if i + 1 < len(rows) else rows[i] for i in range(0, len(rows), 2)
        ]
    return rows


def encode(rows: Sequence[BatchRecord]) -> str:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if (value := getattr(row, name)) is None else value for name in COLUMNS])
    return base64.b64encode(gzip.compress(text.getvalue().encode(), mtime=0)).decode()


def decode(encoded: str) -> list[BatchRecord]:
    reader = csv.DictReader(io.StringIO(gzip.decompress(base64.b64decode(encoded)).decode()))

    def number(text: str) -> float | None:
        return float(text) if text else None

    return [
        BatchRecord(
            batch=int(row["batch"]),
            sequence=int(row["sequence"]),
            finished_at=float(row["finished_at"]),
            records=int(row["records"]),
            seconds=float(row["seconds"]),
            p95_ms=number(row["p95_ms"]),
            coherence=number(row["coherence"]),
            coherence_min=number(row["coherence_min"]),
            coherence_max=number(row["coherence_max"]),
        )
        for row in reader
    ]

"""The plan's measured speed and how long is left at that speed."""

from __future__ import annotations

from vector_operator.api.migrationplan import Throughput
from vector_operator.migration.progress import progress_of
from vector_operator.migration.step import Step


def duration_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")


def throughput_and_time_left(step: Step, records_total: int) -> str:
    """Records the speed since Generating began; returns ", about T left" (or "" before any)."""
    started, done = step.status.started_at, progress_of(step.status).records_done or 0
    if started is None:
        return ""
    elapsed = max((step.obs.now - started).total_seconds(), 1e-3)
    rate = done / elapsed
    step.status.throughput = (step.status.throughput or Throughput()).model_copy(
        update={"records_per_second": round(rate, 3)}
    )
    if rate > 0 and records_total > done:
        return f", about {duration_text((records_total - done) / rate)} left"
    return ""

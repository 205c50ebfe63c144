"""Adaptive micro-batch sizing: keep one encode call near a target latency.

Pure. After each encode call the optimizer learns the cost of one text (an exponential moving
average of latency / batch size, so that one slow call does not swing it) and proposes the size
whose predicted latency is the target. A step changes the size by at most a factor of two either
way, and the size never leaves [min, max].
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from vector_operator.contract.result import BatchSizes

SMOOTHING = 0.5
"""Weight of the newest observation in the per-text cost estimate."""
MAX_STEP = 2.0
"""The most a single step grows or shrinks the batch size by."""


@dataclass
class BatchOptimizer:
    """Chooses encode batch sizes in ``[min_size, max_size]`` towards ``target_latency_s``."""

    min_size: int
    max_size: int
    target_latency_s: float
    size: int = 0
    """The size to use for the next batch; 0 at the start: min_size, a cheap first probe (the size
    then grows at most twofold per call, so a GPU reaches its large batches within a few calls,
    while a CPU's first call does not overshoot the target many times over). The worker starts at
    the size earlier Jobs of the plan settled on instead, when there is one."""
    seconds_per_text: float | None = None
    """The current estimate of one text's encode cost."""
    log: BatchSizeLog = field(default_factory=lambda: BatchSizeLog())
    """The sizes used, for the result."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_size <= self.max_size:
            raise ValueError(f"need 1 <= min_size <= max_size, got {self.min_size} and {self.max_size}")
        if self.target_latency_s <= 0:
            raise ValueError("target_latency_s must be positive")
        self.size = self._clamp(self.size or self.min_size)

    def _clamp(self, size: float) -> int:
        return max(self.min_size, min(self.max_size, round(size)))

    def observe(self, batch_size: int, latency_s: float) -> int:
        """Learns from one encode call of ``batch_size`` texts that took ``latency_s``; returns the
        size for the next call."""
        if batch_size <= 0:
            return self.size
        self.log.record(batch_size)
        cost = max(latency_s, 1e-6) / batch_size
        self.seconds_per_text = (
            cost
            if self.seconds_per_text is None
            else SMOOTHING * cost + (1 - SMOOTHING) * self.seconds_per_text
        )
        ideal = self.target_latency_s / self.seconds_per_text
        stepped = min(max(ideal, self.size / MAX_STEP), self.size * MAX_STEP)
        self.size = self._clamp(stepped)
        return self.size


class BatchSizeLog:
    """The sizes of the encode calls, in memory bounded by ``max_runs`` whatever their number."""

    def __init__(self, max_runs: int = 64) -> None:
        self._max_runs = max_runs
        self._runs: list[tuple[int, int]] = []
        self._runs_truncated = False
        self._counts: Counter[int] = Counter()
        self._first = self._last = 0

    def record(self, size: int) -> None:
        if not self._counts:
            self._first = size
        self._last = size
        self._counts[size] += 1
        if self._runs and self._runs[-1][0] == size:
            self._runs[-1] = (size, self._runs[-1][1] + 1)
        elif len(self._runs) < self._max_runs:
            self._runs.append((size, 1))
        else:
            self._runs_truncated = True

    def summary(self) -> BatchSizes:
        total = sum(self._counts.values())
        if not total:
            return BatchSizes()
        median, seen = 0, 0
        for size in sorted(self._counts):
            seen += self._counts[size]
            if seen * 2 >= total:
                median = size
                break
        return BatchSizes(
            count=total,
            first=self._first,
            last=self._last,
            min=min(self._counts),
            max=max(self._counts),
            median=median,
            runs=list(self._runs),
            runs_truncated=self._runs_truncated,
        )

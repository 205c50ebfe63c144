"""Percentiles of encode-call latencies in bounded memory (a uniform reservoir)."""

from __future__ import annotations

import random

import numpy as np

RESERVOIR_SIZE = 8192


class LatencyStats:
    """Records latencies (seconds); reports milliseconds. Exact up to ``size`` observations, a
    uniform sample of them beyond."""

    def __init__(self, size: int = RESERVOIR_SIZE, seed: int = 0) -> None:
        self._size = size
        self._samples: list[float] = []
        self._random = random.Random(seed)  # noqa: S311  (sampling, not crypto)
        self.count = 0
        self.total_s = 0.0

    def record(self, seconds: float) -> None:
        self.count += 1
        self.total_s += seconds
        if len(self._samples) < self._size:
            self._samples.append(seconds)
            return
        slot = self._random.randrange(self.count)
        if slot < self._size:
            self._samples[slot] = seconds

    def percentile_ms(self, percent: float) -> float:
        if not self._samples:
            return 0.0
        return round(float(np.percentile(np.asarray(self._samples), percent)) * 1000.0, 1)

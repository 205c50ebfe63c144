"""The adaptive micro-batch optimizer: towards the target latency, never outside the bounds."""

from __future__ import annotations

import pytest

from vector_operator.worker.batch_optimizer import BatchOptimizer


def run(optimizer: BatchOptimizer, seconds_per_text: float, calls: int, overhead_s: float = 0.0) -> list[int]:
    sizes = []
    for _ in range(calls):
        size = optimizer.size
        sizes.append(size)
        optimizer.observe(size, overhead_s + size * seconds_per_text)
    return sizes


def test_starts_at_the_smallest_size_or_where_earlier_jobs_settled_within_the_bounds() -> None:
    assert BatchOptimizer(16, 1024, 0.1).size == 16
    assert BatchOptimizer(64, 1024, 0.1).size == 64
    assert BatchOptimizer(1, 8, 0.1).size == 1
    assert BatchOptimizer(16, 1024, 0.1, size=96).size == 96
    assert BatchOptimizer(16, 64, 0.1, size=96).size == 64


def test_converges_to_the_size_that_meets_the_target() -> None:
    optimizer = BatchOptimizer(16, 1024, 0.1)
    sizes = run(optimizer, seconds_per_text=0.001, calls=20)  # 100 texts take 100 ms
    assert sizes[-1] == 100
    assert sizes[:4] == [16, 32, 64, 100]  # grows by at most a factor of two per step


def test_shrinks_when_the_encoder_slows_down() -> None:
    optimizer = BatchOptimizer(16, 1024, 0.1)
    run(optimizer, seconds_per_text=0.0005, calls=20)
    assert optimizer.size == 200
    run(optimizer, seconds_per_text=0.002, calls=20)
    assert optimizer.size == 50


@pytest.mark.parametrize(("seconds_per_text", "expected"), [(1e-7, 1024), (1.0, 16)])
def test_never_leaves_the_bounds(seconds_per_text: float, expected: int) -> None:
    optimizer = BatchOptimizer(16, 1024, 0.1)
    sizes = run(optimizer, seconds_per_text=seconds_per_text, calls=30)
    assert all(16 <= size <= 1024 for size in sizes)
    assert sizes[-1] == expected


def test_one_slow_call_does_not_swing_the_size() -> None:
    optimizer = BatchOptimizer(16, 1024, 0.1)
    run(optimizer, seconds_per_text=0.001, calls=20)
    optimizer.observe(100, 1.0)  # a 10x hiccup (e.g. a garbage collection)
    assert optimizer.size >= 50


def test_the_log_reports_what_was_used() -> None:
    optimizer = BatchOptimizer(16, 1024, 0.1)
    sizes = run(optimizer, seconds_per_text=0.001, calls=10)
    summary = optimizer.log.summary()
    assert summary.count == 10
    assert (summary.first, summary.last, summary.min, summary.max) == (16, 100, 16, 100)
    assert sum(count for _, count in summary.runs) == 10
    assert [size for size, _ in summary.runs] == list(dict.fromkeys(sizes))


def test_the_log_stays_small_whatever_the_number_of_batches() -> None:
    optimizer = BatchOptimizer(16, 1024, 0.1)
    for call in range(10_000):
        optimizer.observe(16 + call % 7, 0.1)
    summary = optimizer.log.summary()
    assert summary.count == 10_000
    assert len(summary.runs) == 64
    assert summary.runs_truncated


def test_rejects_inverted_bounds() -> None:
    with pytest.raises(ValueError, match="min_size <= max_size"):
        BatchOptimizer(64, 16, 0.1)

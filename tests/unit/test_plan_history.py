"""A plan's batch history stays bounded and keeps its shape, survives its ConfigMap encoding, and
takes each batch once even when a step is repeated."""

from __future__ import annotations

import pytest

from vector_operator.migration.history import BatchRecord, appended, decode, encode


def record(sequence: int, coherence: float = 0.99, records: int = 50) -> BatchRecord:
    return BatchRecord(
        batch=sequence - 1,
        sequence=sequence,
        finished_at=1_800_000_000.0 + sequence,
        records=records,
        seconds=5.0,
        p95_ms=100.0 + sequence,
        coherence=coherence,
        coherence_min=coherence - 0.01,
        coherence_max=None,
    )


def test_each_batch_is_taken_once_and_the_encoding_round_trips() -> None:
    history = appended([], [record(1), record(2)])
    history = appended(history, [record(2), record(3)])  # batch 2 again: a step repeated after a conflict
    assert [row.sequence for row in history] == [1, 2, 3]
    assert decode(encode(history)) == history


def test_a_long_history_is_halved_by_merging_neighbours_weighted_by_records() -> None:
    history = appended(
        [], [record(i, coherence=0.9 if i % 2 else 0.8, records=50) for i in range(1, 101)], limit=40
    )
    assert len(history) <= 40
    assert sum(row.records for row in history) == 100 * 50  # nothing lost, only resolution
    assert history[0].coherence == pytest.approx(0.85)
    assert history[-1].sequence == 100
    assert max(row.p95_ms or 0 for row in history) == 200.0  # the worst of a merged pair is kept
    assert len(encode(appended([], [record(i) for i in range(1, 100_001)]))) < 400_000  # fits a ConfigMap

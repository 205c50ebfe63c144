"""The arithmetic of the quality checks: coherence, retrievability with ties, collapse, and the
reproducible sample."""

from __future__ import annotations

import numpy as np
import pytest

from vector_operator.api.vectorcollection import MetricType
from vector_operator.worker.quality import (
    QualitySample,
    cosine_rows,
    finds_itself,
    mean_pairwise_cosine,
)


def test_cosine_rows_matches_the_definition() -> None:
    left = np.array([[1, 0], [1, 1], [3, 4]], dtype=np.float32)
    right = np.array([[2, 0], [-1, -1], [4, -3]], dtype=np.float32)
    assert cosine_rows(left, right).tolist() == pytest.approx([1.0, -1.0, 0.0])


def test_a_zero_row_has_no_coherence() -> None:
    assert cosine_rows(np.zeros((1, 3), np.float32), np.ones((1, 3), np.float32)).tolist() == [0.0]


def test_mean_pairwise_cosine_of_identical_vectors_is_one() -> None:
    vectors = np.tile(np.array([[0.6, 0.8]], np.float32), (5, 1))
    assert mean_pairwise_cosine(vectors) == pytest.approx(1.0)
    orthogonal = np.eye(4, dtype=np.float32)
    assert mean_pairwise_cosine(orthogonal) == pytest.approx(0.0)
    assert mean_pairwise_cosine(orthogonal[:1]) is None


VECTOR = np.array([0.6, 0.8], np.float32)


@pytest.mark.parametrize(
    ("metric", "best", "expected"),
    [
        (MetricType.COSINE, ("me", 0.9999), True),
        (MetricType.COSINE, ("other", 0.99999), True),  # a tie (a duplicate vector) counts
        (MetricType.COSINE, ("other", 0.97), False),  # the index missed the record itself
        (MetricType.L2, ("other", 0.0), True),
        (MetricType.L2, ("other", 0.3), False),
        (MetricType.IP, ("other", 1.0), True),
        (MetricType.IP, ("other", 1.5), False),  # an unnormalised neighbour outscores the record
        (MetricType.COSINE, None, False),
    ],
)
def test_finds_itself(metric: MetricType, best: tuple[str, float] | None, expected: bool) -> None:
    assert finds_itself(metric, "me", VECTOR, best) is expected


def test_the_sample_is_bounded_uniform_and_reproducible() -> None:
    def draw(seed: str) -> list[object]:
        sample = QualitySample(10, seed=seed)
        for key in range(1000):
            sample.offer(key, f"text {key}")
        return [record.key for record in sample.records]

    first = draw("ns/plan/1")
    assert len(first) == 10
    assert first == draw("ns/plan/1")
    assert first != draw("ns/plan/2")
    assert max(first) > 100  # not just the first records


def test_a_small_batch_is_sampled_whole() -> None:
    sample = QualitySample(100, seed="s")
    for key in range(7):
        sample.offer(key, "t")
    assert [record.key for record in sample.records] == list(range(7))

"""Checks on every micro-batch: bad vectors are rejected with a reason, suspicious ones counted."""

from __future__ import annotations

import numpy as np

from vector_operator.contract.result import SkipReason
from vector_operator.worker.vector_checks import VectorChecker


def unit_vectors(count: int, dimension: int = 8, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def texts(count: int, prefix: str = "text") -> list[str]:
    return [f"{prefix} {index}" for index in range(count)]


def test_healthy_vectors_are_all_accepted() -> None:
    checked = VectorChecker(8).check(unit_vectors(16), texts(16))
    assert checked.accepted.all()
    assert checked.rejected == []
    assert (checked.norm_outliers, checked.duplicate_vectors) == (0, 0)


def test_nan_inf_and_zero_vectors_are_rejected_with_their_reason() -> None:
    vectors = unit_vectors(6)
    vectors[1, 3] = np.nan
    vectors[2, 0] = np.inf
    vectors[4] = 0.0
    checked = VectorChecker(8).check(vectors, texts(6))
    assert checked.accepted.tolist() == [True, False, False, True, False, True]
    assert checked.rejected == [
        (1, SkipReason.NON_FINITE_VECTOR),
        (2, SkipReason.NON_FINITE_VECTOR),
        (4, SkipReason.ZERO_VECTOR),
    ]


def test_a_dimension_other_than_the_collections_rejects_the_batch() -> None:
    checked = VectorChecker(8).check(unit_vectors(3, dimension=4), texts(3))
    assert not checked.accepted.any()
    assert {reason for _, reason in checked.rejected} == {SkipReason.WRONG_DIMENSION}
    assert len(checked.rejected) == 3


def test_identical_vectors_for_different_texts_are_counted_across_batches() -> None:
    checker = VectorChecker(8)
    first = unit_vectors(4, seed=1)
    assert checker.check(first, texts(4, "a")).duplicate_vectors == 0
    second = np.concatenate([first[:2], unit_vectors(2, seed=2)])
    checked = checker.check(second, texts(4, "b"))
    assert checked.duplicate_vectors == 2
    assert checked.accepted.all()  # an anomaly, not a rejection


def test_identical_vectors_for_the_same_text_are_no_anomaly() -> None:
    checker = VectorChecker(8)
    vectors = unit_vectors(3)
    checker.check(vectors, ["same", "other", "third"])
    assert checker.check(vectors[:1], ["same"]).duplicate_vectors == 0


def test_duplicate_memory_is_bounded() -> None:
    checker = VectorChecker(8, duplicate_memory=4)
    vectors = unit_vectors(10)
    checker.check(vectors, texts(10, "a"))
    # the first vectors were forgotten, the last four are remembered
    assert checker.check(vectors[:2], texts(2, "b")).duplicate_vectors == 0
    assert checker.check(vectors[8:], texts(2, "c")).duplicate_vectors == 2


def test_norm_outliers_are_counted_not_rejected() -> None:
    checker = VectorChecker(8)
    rng = np.random.default_rng(3)
    healthy = unit_vectors(64) * rng.uniform(0.95, 1.05, size=(64, 1)).astype(np.float32)
    assert checker.check(healthy, texts(64)).norm_outliers == 0
    batch = unit_vectors(8, seed=4)
    batch[5] *= 40.0
    checked = checker.check(batch, texts(8, "next"))
    assert checked.norm_outliers == 1
    assert checked.accepted.all()


def test_normalised_vectors_have_no_norm_outliers() -> None:
    checker = VectorChecker(8)
    for seed in range(10):
        assert checker.check(unit_vectors(32, seed=seed), texts(32, str(seed))).norm_outliers == 0

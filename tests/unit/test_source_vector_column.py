"""A column of precomputed vectors as pyarrow reads it: one float32 array per row, NULL vectors as
None, NULL components as NaN, lengths as they are, slices honoured, text parsed (CSV)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from vector_operator.sources.vector_column import NotVectors, column_vectors


def as_lists(vectors: list[np.ndarray | None]) -> list[list[float] | None]:
    return [None if vector is None else vector.tolist() for vector in vectors]


@pytest.mark.parametrize(
    "kind",
    [pa.list_(pa.float32()), pa.large_list(pa.float32()), pa.list_(pa.float64()), pa.list_(pa.int64())],
    ids=str,
)
def test_lists_of_numbers_become_float32_vectors(kind: pa.DataType) -> None:
    column = pa.array([[1, 2, 3], None, [4, 5], []], kind)
    vectors = column_vectors(column)
    assert as_lists(vectors) == [[1.0, 2.0, 3.0], None, [4.0, 5.0], []]
    assert all(vector.dtype == np.float32 for vector in vectors if vector is not None)


def test_float32_vectors_come_out_bit_for_bit() -> None:
    values = np.random.default_rng(1).standard_normal((5, 16)).astype(np.float32)
    vectors = column_vectors(pa.array(list(values), pa.list_(pa.float32(), 16)))
    assert all(vector.tobytes() == row.tobytes() for vector, row in zip(vectors, values, strict=True))


def test_a_null_component_is_nan_so_the_vector_is_rejected_not_read_as_zero() -> None:
    (vector,) = column_vectors(pa.array([[0.5, None, 0.5]], pa.list_(pa.float32())))
    assert vector is not None
    assert math.isnan(vector[1])


@pytest.mark.parametrize("fixed", [False, True], ids=["list", "fixed-size-list"])
def test_a_sliced_batch_reads_its_own_rows(fixed: bool) -> None:
    kind = pa.list_(pa.float32(), 2) if fixed else pa.list_(pa.float32())
    column = pa.array([[1, 2], [3, 4], None, [5, 6], [7, 8]], kind).slice(1, 3)
    assert as_lists(column_vectors(column)) == [[3.0, 4.0], None, [5.0, 6.0]]


def test_an_all_null_block_has_no_vectors() -> None:
    assert column_vectors(pa.nulls(3)) == [None, None, None]
    assert column_vectors(pa.array([], pa.list_(pa.float32()))) == []


def test_text_vectors_are_parsed_as_lists_of_numbers() -> None:
    column = pa.array(["[0.5, -1e-3, 2]", " 1,2 ", "", "[]", None, "[nan, inf]"])
    vectors = as_lists(column_vectors(column))
    assert vectors[:5] == [[0.5, pytest.approx(-1e-3), 2.0], [1.0, 2.0], None, None, None]
    assert vectors[5] is not None
    assert math.isnan(vectors[5][0])
    assert math.isinf(vectors[5][1])


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (pa.array(["[0.1, 0.2]", "[a, b]"]), "text that is not a list of numbers"),
        (pa.array([["a"]], pa.list_(pa.string())), "lists of string, not of numbers"),
        (pa.array([1.5]), "of type double, not a list of numbers"),
    ],
)
def test_a_column_that_holds_no_vectors_says_what_it_holds(column: pa.Array, message: str) -> None:
    with pytest.raises(NotVectors, match=message):
        column_vectors(column)

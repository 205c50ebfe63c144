"""A column of precomputed vectors, as pyarrow reads it, turned into one float32 array per row.

Pure (pyarrow and numpy). A vector column may be a list, large list or fixed-size list of numbers
(Parquet, JSONL) or text such as ``[0.12, -0.5, ...]`` (CSV, which has no list type). The numbers
of a whole batch are converted to float32 in one call, and each row's vector is a view into that
array, so a batch of 1,000 vectors costs one conversion, not 1,000. A NULL vector (or an empty
cell) is None; a NULL *component* becomes NaN, so that the worker rejects that vector as
non-finite instead of silently reading it as 0. Lengths are left as they are: a vector of the
wrong dimension is the worker's to count, not the reader's to refuse.

Float32 input comes out bit for bit; float64 is rounded to float32 (what Milvus stores).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

FloatArray = npt.NDArray[np.float32]


class NotVectors(ValueError):
    """The column does not hold lists of numbers; the message says what it holds."""


def _numeric(value_type: pa.DataType) -> bool:
    return bool(pa.types.is_floating(value_type) or pa.types.is_integer(value_type))


def _flat_values(values: pa.Array, start: int, stop: int) -> FloatArray:
    """``values[start:stop]`` as float32, NULL components as NaN."""
    flat = values.slice(start, stop - start).to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32)


def _list_vectors(column: pa.Array) -> list[FloatArray | None]:
    rows = len(column)
    if pa.types.is_fixed_size_list(column.type):
        size = column.type.list_size
        offsets = (column.offset + np.arange(rows + 1, dtype=np.int64)) * size
    else:  # list or large list: offsets into the (unsliced) values, one per row and one past the end
        offsets = column.offsets.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    if not rows:
        return []
    start, stop = int(offsets[0]), int(offsets[-1])
    flat = _flat_values(column.values, start, stop)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    bounds = (offsets - start).tolist()
    return [
        flat[bounds[row] : bounds[row + 1]] if valid[row] else None
        for row in range(rows)  # views into ``flat``: no copy per row
    ]


def _text_vectors(column: pa.Array) -> list[FloatArray | None]:
    """Text such as ``[0.1, 2e-3, -4]`` or ``0.1,2e-3,-4``; empty text (or ``[]``) is no vector."""
    inner = pc.utf8_trim_whitespace(pc.utf8_trim(pc.utf8_trim_whitespace(column), "[]"))
    inner = pc.if_else(pc.equal(inner, ""), pa.scalar(None, inner.type), inner)
    parts = pc.split_pattern(inner, ",")
    try:
        numbers = pc.cast(pc.utf8_trim_whitespace(parts.flatten()), pa.float32())
    except pa.ArrowInvalid as error:
        raise NotVectors(f"it holds text that is not a list of numbers ({error})") from None
    lists = pa.ListArray.from_arrays(parts.offsets, numbers, mask=parts.is_null())
    return _list_vectors(lists)


def column_vectors(column: pa.Array) -> list[FloatArray | None]:
    """Each row's vector (float32, one dimension) or None where the row has none."""
    kind = column.type
    if pa.types.is_null(kind):  # JSONL or CSV blocks in which every vector is NULL
        return [None] * len(column)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        if not _numeric(kind.value_type):
            raise NotVectors(f"it holds lists of {kind.value_type}, not of numbers")
        return _list_vectors(column)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _text_vectors(column)
    raise NotVectors(f"it is of type {kind}, not a list of numbers")

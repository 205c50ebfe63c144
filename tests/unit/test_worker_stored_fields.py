"""A row whose fields are stored as they are is not written again: values are compared as Milvus
gives them back (FLOAT at float32 precision, JSON by value)."""

from __future__ import annotations

import numpy as np
import pytest

from vector_operator.api.vectorcollection import ScalarField
from vector_operator.api.vectorcollection import ScalarFieldType as ScalarType
from vector_operator.worker.stored_fields import same_fields, same_value

FIELDS = {
    "title": ScalarField(name="title", type=ScalarType.VARCHAR, max_length=64),
    "score": ScalarField(name="score", type=ScalarType.FLOAT),
    "meta": ScalarField(name="meta", type=ScalarType.JSON),
}


@pytest.mark.parametrize(
    ("field_type", "new", "stored", "same"),
    [
        (ScalarType.FLOAT, 0.1, float(np.float32(0.1)), True),  # what Milvus returns for 0.1
        (ScalarType.FLOAT, 0.1, 0.2, False),
        (ScalarType.DOUBLE, 0.1, float(np.float32(0.1)), False),  # a DOUBLE keeps every digit
        (ScalarType.INT64, 3, 3, True),
        (ScalarType.BOOL, True, False, False),
        (ScalarType.VARCHAR, "a", "a", True),
        (ScalarType.VARCHAR, "a", None, False),  # not stored (NULL)
        (ScalarType.JSON, {"a": [1, 2.0]}, {"a": [1.0, 2]}, True),
        (ScalarType.JSON, {"a": 1}, {"a": True}, False),
        (ScalarType.JSON, {"a": 1}, {"a": 1, "b": 2}, False),
        (ScalarType.JSON, ["x"], ["x", "y"], False),
        (ScalarType.JSON, "1", 1, False),
    ],
)
def test_values_are_compared_as_milvus_stores_them(
    field_type: ScalarType, new: object, stored: object, same: bool
) -> None:
    assert same_value(field_type, new, stored) is same


def test_every_written_field_must_be_stored_as_is() -> None:
    new = {"title": "t", "score": 0.3, "meta": {"k": 1}}
    stored = {"title": "t", "score": float(np.float32(0.3)), "meta": {"k": 1}}
    assert same_fields(new, stored, FIELDS)
    assert not same_fields({**new, "title": "u"}, stored, FIELDS)
    assert not same_fields(new, {"title": "t", "score": stored["score"]}, FIELDS)
    assert same_fields({}, stored, FIELDS)

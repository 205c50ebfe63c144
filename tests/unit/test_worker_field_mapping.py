"""Scalar field values are coerced to the collection's types; a value that does not fit skips
its record with a reason instead of failing the whole upsert."""

from __future__ import annotations

import pytest

from vector_operator.api.vectorcollection import PrimaryKeySpec as PrimaryKey
from vector_operator.api.vectorcollection import PrimaryKeyType, ScalarField
from vector_operator.api.vectorcollection import ScalarFieldType as ScalarType
from vector_operator.contract.result import SkipReason
from vector_operator.sources.records import UndecodableText
from vector_operator.worker.field_mapping import FieldMapper

FIELDS = [
    ScalarField(name="title", type=ScalarType.VARCHAR, max_length=8),
    ScalarField(name="year", type=ScalarType.INT32),
    ScalarField(name="score", type=ScalarType.DOUBLE),
    ScalarField(name="public", type=ScalarType.BOOL),
    ScalarField(name="meta", type=ScalarType.JSON),
]


def map_one(name: str, value: object) -> object:
    result = FieldMapper(FIELDS, [name]).map({name: value})
    return result if isinstance(result, SkipReason) else result[name]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("title", "Dune", "Dune"),
        ("title", b"Dune", "Dune"),
        ("title", 1965, "1965"),
        ("year", 1965, 1965),
        ("year", "1965", 1965),
        ("year", 1965.0, 1965),
        ("score", "0.5", 0.5),
        ("score", 2, 2.0),
        ("public", "true", True),
        ("public", 0, False),
        ("meta", '{"a": 1}', {"a": 1}),
        ("meta", {"a": [1, 2]}, {"a": [1, 2]}),
    ],
)
def test_values_are_coerced_to_the_field_type(name: str, value: object, expected: object) -> None:
    assert map_one(name, value) == expected


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("title", None, SkipReason.NULL_FIELD),
        ("title", "ünïcödé!", SkipReason.FIELD_TOO_LONG),  # 8 characters, 12 bytes
        ("title", UndecodableText(b"\xff"), SkipReason.INVALID_UTF8),
        ("year", 2**31, SkipReason.INVALID_FIELD),
        ("year", 19.5, SkipReason.INVALID_FIELD),
        ("year", "nineteen", SkipReason.INVALID_FIELD),
        ("score", float("nan"), SkipReason.INVALID_FIELD),
        ("public", "maybe", SkipReason.INVALID_FIELD),
        ("meta", {1, 2}, SkipReason.INVALID_FIELD),
    ],
)
def test_values_that_do_not_fit_skip_the_record(name: str, value: object, reason: SkipReason) -> None:
    assert map_one(name, value) is reason


def test_maps_only_the_mapped_fields() -> None:
    assert FieldMapper(FIELDS, ["year", "title"]).map({"year": "2001", "title": "Odyssey", "x": 1}) == {
        "year": 2001,
        "title": "Odyssey",
    }


@pytest.mark.parametrize(
    ("key_type", "max_length", "value", "expected"),
    [
        (PrimaryKeyType.INT64, None, 42, 42),
        (PrimaryKeyType.INT64, None, "42", 42),
        (PrimaryKeyType.INT64, None, "a-slug", SkipReason.INVALID_KEY),
        (PrimaryKeyType.INT64, None, 2**63, SkipReason.INVALID_KEY),
        (PrimaryKeyType.VARCHAR, None, 42, "42"),
        (PrimaryKeyType.VARCHAR, None, "3f2a-uuid", "3f2a-uuid"),
        (PrimaryKeyType.VARCHAR, 4, "éé", "éé"),
        (PrimaryKeyType.VARCHAR, 4, "ééé", SkipReason.INVALID_KEY),
    ],
)
def test_keys_take_the_collections_key_type(
    key_type: PrimaryKeyType, max_length: int | None, value: int | str, expected: object
) -> None:
    mapper = FieldMapper(FIELDS, [], PrimaryKey(type=key_type, max_length=max_length))
    assert mapper.key(value) == expected

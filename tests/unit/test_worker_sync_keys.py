"""Keys crossing between the collection and the source: as Milvus filter literals (pymilvus does
not escape a backslash) and as the source's key column binds them."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from vector_operator.sources.sql_changes import source_key_value
from vector_operator.worker.milvus_collection import key_literal


@pytest.mark.parametrize(
    ("key", "literal"),
    [
        (42, "42"),
        (-7, "-7"),
        ("doc-1", '"doc-1"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("two\nlines\r", '"two\\nlines\\r"'),
        ("tab\tand ü", '"tab\tand ü"'),
    ],
)
def test_keys_become_milvus_literals(key: int | str, literal: str) -> None:
    assert key_literal(key) == literal


@pytest.mark.parametrize(
    ("key", "column_type", "value"),
    [
        (5, sa.Integer(), 5),
        ("5", sa.BigInteger(), 5),
        ("five", sa.Integer(), None),  # an integer column holds no such key
        (5, sa.Numeric(), 5),
        ("5.50", sa.Numeric(), Decimal("5.50")),
        ("x", sa.Numeric(), None),
        ("doc", sa.Text(), "doc"),
        (7, sa.String(), "7"),
        (
            "0b7f3c5e-0000-4000-8000-000000000001",
            sa.Uuid(),
            uuid.UUID("0b7f3c5e-0000-4000-8000-000000000001"),
        ),
        ("not-a-uuid", sa.Uuid(), None),
        ("raw", sa.types.NullType(), "raw"),
    ],
)
def test_collection_keys_bind_as_the_source_key_column_type(
    key: int | str, column_type: sa.types.TypeEngine[object], value: object
) -> None:
    assert source_key_value(key, column_type) == value

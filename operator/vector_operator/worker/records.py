"""A source record on its way through the worker, and the reasons a record can be skipped."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

Key = int | str
"""A record's primary key: an integer or a string, as in the source and in Milvus."""


class SkipReason(StrEnum):
    """Why a record was read but not written. The values are the keys of the result's
    ``records.skipped`` map, so they are part of the result's contract."""

    NULL_TEXT = "nullText"
    """Every column the text is built from is NULL (or missing)."""
    EMPTY_TEXT = "emptyText"
    """The built text is empty or whitespace only."""
    INVALID_UTF8 = "invalidUtf8"
    """A text column holds bytes that are not valid UTF-8."""
    TEMPLATE_ERROR = "templateError"
    """The text template could not be applied to the row (e.g. a numeric format on a string)."""
    NULL_KEY = "nullKey"
    """The record has no primary key value (files only: SQL keys come from a NOT NULL column)."""
    INVALID_KEY = "invalidKey"
    """The key does not fit the collection's key type (not an integer for INT64, longer than
    maxLength for VARCHAR)."""
    NULL_FIELD = "nullField"
    """A scalar field's value is NULL (or missing); the collection's fields take no NULL."""
    INVALID_FIELD = "invalidField"
    """A scalar field's value does not fit the collection's field type."""
    FIELD_TOO_LONG = "fieldTooLong"
    """A VARCHAR field's value is longer than the field's maxLength (in UTF-8 bytes)."""
    DUPLICATE_KEY = "duplicateKey"
    """Another record with the same primary key came in the same write (files only; the last wins)."""
    NON_FINITE_VECTOR = "nonFiniteVector"
    """The model produced NaN or infinite components."""
    ZERO_VECTOR = "zeroVector"
    """The model produced an all-zero vector (no direction: no similarity is defined)."""
    WRONG_DIMENSION = "wrongDimension"
    """The vector's dimension differs from the collection's."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One row as the source returns it: its key and the raw values of the columns the worker
    asked for (text columns by column name, scalar fields by field name)."""

    key: Key | None
    text_values: Mapping[str, object]
    field_values: Mapping[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class PreparedRecord:
    """A record ready to embed: its key, the text, the scalar fields as Milvus takes them, and
    the text's length in model tokens (special tokens included, before truncation)."""

    key: Key
    text: str
    fields: dict[str, object]
    token_count: int = 0


@dataclass(frozen=True, slots=True)
class UndecodableText:
    """A text value whose bytes are not valid UTF-8 (the SQLite source yields it instead of
    raising, so that one bad row does not fail a whole page)."""

    raw: bytes


def milvus_key(value: object) -> Key | None:
    """A source key as Milvus stores it: integers stay integers, anything else becomes text; None
    when there is no usable key."""
    if value is None or isinstance(value, UndecodableText):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str | uuid.UUID):
        return str(value)
    return str(value)

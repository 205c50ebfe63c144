"""A record as a source returns it: its key and the raw values the worker asked for."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

Key = int | str
"""A record's primary key as Milvus stores it: an integer or a string."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One row as the source returns it: its key and the raw values of the columns the worker
    asked for (text columns by column name, scalar fields by field name)."""

    key: Key | None
    text_values: Mapping[str, object]
    field_values: Mapping[str, object] = field(default_factory=dict)
    vector: object = None
    """The record's precomputed vector (a one-dimensional numpy float32 array, of whatever length
    the file holds), when the source reads one (files with a vector column); None otherwise, or
    when the record has none. Typed loosely so that this module needs no numpy."""


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

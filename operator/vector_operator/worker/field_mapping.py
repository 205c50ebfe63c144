"""Scalar field values, coerced to the collection's field types before they reach Milvus.

Pure. A value that does not fit its field skips that one record (with a reason) instead of
failing the whole upsert, which is what Milvus would do with it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal

from vector_operator.api.vectorcollection import DEFAULT_VARCHAR_KEY_LENGTH, PrimaryKeyType, ScalarField
from vector_operator.api.vectorcollection import PrimaryKeySpec as PrimaryKey
from vector_operator.api.vectorcollection import ScalarFieldType as ScalarType
from vector_operator.contract.result import SkipReason
from vector_operator.sources.records import Key, UndecodableText

INT32_RANGE = (-(2**31), 2**31 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)


class _Unfit(Exception):
    def __init__(self, reason: SkipReason) -> None:
        self.reason = reason


def _integer(value: object, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float | Decimal) and math.isfinite(value) and value == int(value):
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    else:
        raise _Unfit(SkipReason.INVALID_FIELD)
    if not bounds[0] <= number <= bounds[1]:
        raise _Unfit(SkipReason.INVALID_FIELD)
    return number


def _floating(value: object) -> float:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _Unfit(SkipReason.INVALID_FIELD) from None
    else:
        raise _Unfit(SkipReason.INVALID_FIELD)
    if not math.isfinite(number):
        raise _Unfit(SkipReason.INVALID_FIELD)
    return number


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise _Unfit(SkipReason.INVALID_FIELD)


def _varchar(value: object, max_length: int | None) -> str:
    if isinstance(value, UndecodableText):
        raise _Unfit(SkipReason.INVALID_UTF8)
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise _Unfit(SkipReason.INVALID_UTF8) from None
    else:
        text = value if isinstance(value, str) else str(value)
    try:
        encoded_length = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _Unfit(SkipReason.INVALID_UTF8) from None
    if max_length is not None and encoded_length > max_length:
        raise _Unfit(SkipReason.FIELD_TOO_LONG)
    return text


def _json(value: object) -> object:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise _Unfit(SkipReason.INVALID_FIELD) from None
    return value


def _coerce(field: ScalarField, value: object) -> object:
    """``value`` as ``field`` stores it; raises ``_Unfit`` when it does not fit. The operator
    creates scalar fields without a default, so NULL does not fit either."""
    if value is None:
        raise _Unfit(SkipReason.NULL_FIELD)
    match field.type:
        case ScalarType.INT64:
            return _integer(value, INT64_RANGE)
        case ScalarType.INT32:
            return _integer(value, INT32_RANGE)
        case ScalarType.FLOAT | ScalarType.DOUBLE:
            return _floating(value)
        case ScalarType.BOOL:
            return _boolean(value)
        case ScalarType.VARCHAR:
            return _varchar(value, field.max_length)
        case ScalarType.JSON:
            return _json(value)


class FieldMapper:
    """Turns a row's key into the collection's key type, and its mapped values (by field name)
    into the scalar fields of one Milvus row."""

    def __init__(
        self, fields: Sequence[ScalarField], mapped: Sequence[str], primary_key: PrimaryKey | None = None
    ) -> None:
        by_name = {field.name: field for field in fields}
        self._fields = tuple(by_name[name] for name in mapped)
        self._key = primary_key or PrimaryKey()

    def key(self, value: Key) -> Key | SkipReason:
        """``value`` as the collection's primary key stores it."""
        if self._key.type is PrimaryKeyType.VARCHAR:
            text = str(value)
            limit = self._key.max_length or DEFAULT_VARCHAR_KEY_LENGTH
            return text if len(text.encode("utf-8", "surrogatepass")) <= limit else SkipReason.INVALID_KEY
        if isinstance(value, int):
            return value if INT64_RANGE[0] <= value <= INT64_RANGE[1] else SkipReason.INVALID_KEY
        try:
            return _integer(value, INT64_RANGE)
        except _Unfit:
            return SkipReason.INVALID_KEY

    def map(self, values: Mapping[str, object]) -> dict[str, object] | SkipReason:
        row: dict[str, object] = {}
        for field in self._fields:
            try:
                row[field.name] = _coerce(field, values.get(field.name))
            except _Unfit as unfit:
                return unfit.reason
        return row

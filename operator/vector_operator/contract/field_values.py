"""Where a scalar field's value comes from: a column (or record key), or a constant. Never SQL:
the SQL source selects the column by name and binds a constant as a parameter.

The grammar is the CRD's (``FIELD_VALUE_RE``): a plain column name; a quoted string, ``'nodes'``
(``''`` stands for one quote); a number, ``42`` or ``-1.5``; ``true`` or ``false``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vector_operator.api.migrationplan import FIELD_VALUE_RE

_GRAMMAR = re.compile(FIELD_VALUE_RE)


@dataclass(frozen=True)
class Column:
    """The value is read from this column (or record key)."""

    name: str


@dataclass(frozen=True)
class Constant:
    """Every record gets this value."""

    value: str | int | float | bool


FieldValue = Column | Constant


def parse_field_value(text: str) -> FieldValue:
    """The value ``text`` describes; ValueError when it is not in the grammar."""
    if not _GRAMMAR.match(text):
        raise ValueError(
            f"{text!r} is neither a column name nor a constant ('text', a number, true or false):"
            " SQL expressions are not accepted"
        )
    if text in ("true", "false"):
        return Constant(text == "true")
    if text.startswith("'"):
        return Constant(text[1:-1].replace("''", "'"))
    if text[0].isdigit() or text[0] == "-":
        return Constant(float(text) if "." in text else int(text))
    return Column(text)


def columns_of(values: dict[str, str]) -> list[str]:
    """The columns a field mapping reads, in order, without repeats."""
    parsed = (parse_field_value(value) for value in values.values())
    return list(dict.fromkeys(value.name for value in parsed if isinstance(value, Column)))

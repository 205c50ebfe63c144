"""What is read of each row of an SQL source, and how it comes back as a :class:`SourceRow`: the
key, the text columns (cut by the database past a character limit), and the scalar fields
(columns, or constants bound as parameters). The backfill's pages and the sync's changed rows
select exactly the same shape, so that a row yields the same text, hence the same content hash,
whichever read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from vector_operator.contract.field_values import Column, FieldValue, parse_field_value
from vector_operator.sources.records import SourceRow, milvus_key
from vector_operator.sources.sql_engine import key_column


@dataclass(frozen=True)
class RowShape:
    """The columns of one row as the worker reads them."""

    primary_key: str
    text_columns: tuple[str, ...]
    fields: Mapping[str, FieldValue]
    max_text_chars: int | None = None

    @classmethod
    def of(
        cls,
        *,
        primary_key: str,
        text_columns: Sequence[str],
        fields: Mapping[str, str],
        max_text_chars: int | None = None,
    ) -> RowShape:
        """The shape for a plan's text columns and field mapping (field name -> column or constant)."""
        parsed = {name: parse_field_value(value) for name, value in fields.items()}
        return cls(primary_key, tuple(text_columns), parsed, max_text_chars)

    @property
    def width(self) -> int:
        """How many selected columns :meth:`columns` returns (the row's own, before any extra)."""
        return 1 + len(self.text_columns) + len(self.fields)

    def required_columns(self) -> list[str]:
        """The table columns this shape reads (the key, the text columns, the field columns)."""
        wanted = [self.primary_key, *self.text_columns]
        return wanted + [value.name for value in self.fields.values() if isinstance(value, Column)]

    def key(self, types: Mapping[str, sa.types.TypeEngine[Any]]) -> sa.ColumnClause[Any]:
        """The key column, typed as the database declared it."""
        return key_column(self.primary_key, types[self.primary_key])

    def columns(self, types: Mapping[str, sa.types.TypeEngine[Any]]) -> list[sa.ColumnElement[Any]]:
        """The selected columns: the key, the (cut) text columns, the field values."""
        selected: list[sa.ColumnElement[Any]] = [self.key(types).label("k")]
        selected += [
            self._bounded(column, types[column]).label(f"t{index}")
            for index, column in enumerate(self.text_columns)
        ]
        for index, value in enumerate(self.fields.values()):
            element = sa.column(value.name) if isinstance(value, Column) else sa.literal(value.value)
            selected.append(element.label(f"f{index}"))
        return selected

    def _bounded(self, name: str, column_type: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
        """A text column, cut by the database past the limit (other types keep theirs: a template
        may format them)."""
        column: sa.ColumnElement[Any] = sa.column(name)
        if self.max_text_chars is None or not isinstance(column_type, sa.String):
            return column
        limit = self.max_text_chars
        return sa.case((sa.func.length(column) > limit, sa.func.substr(column, 1, limit)), else_=column)

    def source_row(self, values: Sequence[Any]) -> SourceRow:
        """The row whose first :attr:`width` selected values are ``values``."""
        texts = len(self.text_columns)
        return SourceRow(
            key=milvus_key(values[0]),
            text_values=dict(zip(self.text_columns, values[1 : 1 + texts], strict=True)),
            field_values=dict(zip(self.fields, values[1 + texts : self.width], strict=True)),
        )


def deleted_flag(soft_delete_column: str | None) -> sa.ColumnElement[Any]:
    """Whether a row is soft-deleted (its soft-delete column holds a value); false without one."""
    if soft_delete_column is None:
        return sa.literal(False).label("d")
    return sa.case((sa.column(soft_delete_column).is_not(None), 1), else_=0).label("d")

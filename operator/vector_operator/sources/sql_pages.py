"""Rows of one table through SQLAlchemy Core, in primary-key order, by keyset pagination.

Each page is one ``SELECT ... WHERE pk > :last AND <key range> ORDER BY pk LIMIT :page``: the
database walks the primary key index, memory holds one page, and a page never skips or repeats a
row however large the range. Bounds bind as the key column's own type and are compared by the
database under its own ordering (collation, NUMERIC), exactly as the planner found them. Scalar
fields are columns, or constants bound as parameters: no SQL text from a plan is ever run. A text
column longer than ``max_text_chars`` is cut by the database, so a page of huge rows never has to
travel or fit in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from vector_operator.contract.assignment import KeyRange, key_value
from vector_operator.contract.field_values import Column, parse_field_value
from vector_operator.sources import SourceMisconfigured
from vector_operator.sources.records import SourceRow, UndecodableText, milvus_key
from vector_operator.sources.sql_engine import (
    TableRef,
    Timeouts,
    bound_for,
    column_types,
    key_column,
    open_engine,
    require_columns,
    source_error,
)

DEFAULT_PAGE_SIZE = 1000


class SqlTableSource:
    """Reads ``table`` in the key range, page by page."""

    def __init__(
        self,
        url: str,
        *,
        table: str,
        primary_key: str,
        text_columns: Sequence[str],
        fields: Mapping[str, str],
        key_range: KeyRange,
        page_size: int = DEFAULT_PAGE_SIZE,
        timeouts: Timeouts | None = None,
        max_text_chars: int | None = None,
    ) -> None:
        self._engine = open_engine(url, timeouts or Timeouts())
        self._table = TableRef.parse(table)
        self._primary_key = primary_key
        self._text_columns = tuple(text_columns)
        self._fields = {name: parse_field_value(value) for name, value in fields.items()}
        self._key_range = key_range
        self._page_size = page_size
        self._max_text_chars = max_text_chars

    def close(self) -> None:
        self._engine.dispose()

    def _statement(
        self, types: Mapping[str, sa.types.TypeEngine[Any]]
    ) -> tuple[sa.Select[Any], sa.ColumnClause[Any]]:
        key_type = types[self._primary_key]
        key = key_column(self._primary_key, key_type)
        selected: list[sa.ColumnElement[Any]] = [key.label("k")]
        selected += [
            self._bounded(column, types[column]).label(f"t{index}")
            for index, column in enumerate(self._text_columns)
        ]
        for index, value in enumerate(self._fields.values()):
            element = sa.column(value.name) if isinstance(value, Column) else sa.literal(value.value)
            selected.append(element.label(f"f{index}"))
        statement = sa.select(*selected).select_from(self._table.clause()).where(key.is_not(None))
        if self._key_range.start is not None:
            statement = statement.where(key >= bound_for(key_value(self._key_range.start), key_type))
        if self._key_range.end is not None:
            statement = statement.where(key < bound_for(key_value(self._key_range.end), key_type))
        return statement.order_by(key).limit(self._page_size), key

    def _bounded(self, name: str, column_type: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
        """A text column, cut by the database past the limit (other types keep theirs: a template
        may format them)."""
        column: sa.ColumnElement[Any] = sa.column(name)
        if self._max_text_chars is None or not isinstance(column_type, sa.String):
            return column
        limit = self._max_text_chars
        return sa.case((sa.func.length(column) > limit, sa.func.substr(column, 1, limit)), else_=column)

    def _rows(self, rows: Sequence[sa.Row[Any]]) -> list[SourceRow]:
        texts, field_names = len(self._text_columns), list(self._fields)
        return [
            SourceRow(
                key=milvus_key(row[0]),
                text_values=dict(zip(self._text_columns, row[1 : 1 + texts], strict=True)),
                field_values=dict(zip(field_names, row[1 + texts :], strict=True)),
            )
            for row in rows
        ]

    def pages(self) -> Iterator[list[SourceRow]]:
        try:
            with self._engine.connect() as connection:
                types = column_types(connection, self._table)
                wanted = [self._primary_key, *self._text_columns]
                wanted += [value.name for value in self._fields.values() if isinstance(value, Column)]
                require_columns(types, wanted, self._table)
                statement, key = self._statement(types)
                last: object = None
                while True:
                    page = statement if last is None else statement.where(key > last)
                    rows = connection.execute(page).all()
                    if not rows:
                        return
                    yield self._rows(rows)
                    if len(rows) < self._page_size:
                        return
                    last = rows[-1][0]
                    if isinstance(last, UndecodableText):
                        raise SourceMisconfigured(
                            "a primary key value is not valid UTF-8: string keys must be text"
                        )
        except sa_exc.DBAPIError as error:
            raise source_error(error, f"reading {self._table}") from None

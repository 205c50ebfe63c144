"""Rows of one table through SQLAlchemy Core, in primary-key order, by keyset pagination.

Each page is one ``SELECT ... WHERE pk > :last AND <key range> ORDER BY pk LIMIT :page``: the
database walks the primary key index, memory holds one page, and a page never skips or repeats a
row however large the range. Bounds bind as the key column's own type and are compared by the
database under its own ordering (collation, NUMERIC), exactly as the planner found them. Scalar
fields are columns, or constants bound as parameters: no SQL text from a plan is ever run. A text
column longer than ``max_text_chars`` is cut by the database, so a page of huge rows never has to
travel or fit in memory whole. With a soft-delete column, only rows where it is NULL are read:
a soft-deleted row is never embedded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from vector_operator.contract.assignment import KeyRange, key_value
from vector_operator.sources import SourceMisconfigured
from vector_operator.sources.records import SourceRow, UndecodableText
from vector_operator.sources.sql_engine import (
    TableRef,
    Timeouts,
    bound_for,
    column_types,
    open_engine,
    require_columns,
    source_error,
)
from vector_operator.sources.sql_row_shape import RowShape

DEFAULT_PAGE_SIZE = 1000


def pages_in_key_order(
    execute: Callable[[sa.Select[Any]], Sequence[sa.Row[Any]]],
    statement: sa.Select[Any],
    key: sa.ColumnClause[Any],
    page_size: int,
) -> Iterator[Sequence[sa.Row[Any]]]:
    """The rows of ``statement`` (ordered by ``key``, limited to ``page_size``, the key selected
    first) page by page: each page starts after the last key of the one before."""
    last: object = None
    while True:
        rows = execute(statement if last is None else statement.where(key > last))
        if not rows:
            return
        yield rows
        if len(rows) < page_size:
            return
        last = rows[-1][0]
        if isinstance(last, UndecodableText):
            raise SourceMisconfigured("a primary key value is not valid UTF-8: string keys must be text")


class SqlTableSource:
    """Reads ``table`` in the key range, page by page; soft-deleted rows are left out."""

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
        soft_delete_column: str | None = None,
    ) -> None:
        self._engine = open_engine(url, timeouts or Timeouts())
        self._table = TableRef.parse(table)
        self._shape = RowShape.of(
            primary_key=primary_key, text_columns=text_columns, fields=fields, max_text_chars=max_text_chars
        )
        self._key_range = key_range
        self._page_size = page_size
        self._soft_delete_column = soft_delete_column

    def close(self) -> None:
        self._engine.dispose()

    def _statement(
        self, types: Mapping[str, sa.types.TypeEngine[Any]]
    ) -> tuple[sa.Select[Any], sa.ColumnClause[Any]]:
        key_type = types[self._shape.primary_key]
        key = self._shape.key(types)
        statement = (
            sa.select(*self._shape.columns(types)).select_from(self._table.clause()).where(key.is_not(None))
        )
        if self._soft_delete_column is not None:
            statement = statement.where(sa.column(self._soft_delete_column).is_(None))
        if self._key_range.start is not None:
            statement = statement.where(key >= bound_for(key_value(self._key_range.start), key_type))
        if self._key_range.end is not None:
            statement = statement.where(key < bound_for(key_value(self._key_range.end), key_type))
        return statement.order_by(key).limit(self._page_size), key

    def pages(self) -> Iterator[list[SourceRow]]:
        try:
            with self._engine.connect() as connection:
                types = column_types(connection, self._table)
                wanted = self._shape.required_columns()
                if self._soft_delete_column is not None:
                    wanted.append(self._soft_delete_column)
                require_columns(types, wanted, self._table)
                statement, key = self._statement(types)

                def execute(page: sa.Select[Any]) -> Sequence[sa.Row[Any]]:
                    return connection.execute(page).all()

                for rows in pages_in_key_order(execute, statement, key, self._page_size):
                    yield [self._shape.source_row(row) for row in rows]
        except sa_exc.DBAPIError as error:
            raise source_error(error, f"reading {self._table}") from None

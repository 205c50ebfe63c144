"""The changes of one table through SQLAlchemy Core, for the sync worker: rows whose change column
reached a watermark, every row (a full check), and rows by key (logical decoding's keys, and the
collection's keys a full check looks up).

Every row is read in the backfill's own shape (:class:`RowShape`), plus whether it is
soft-deleted, so a row yields the same text and fields whichever way it was found. Each page is
its own short statement on a connection taken from the pool and given back at once: a pass that
embeds between pages never holds a transaction (or, on SQLite, a lock writers would wait for)
open.

The change column is read and compared *untyped* (``sa.column(name)``): its values come back as
the DB-API gives them and bind back identically, so a timestamp SQLite stores as text is
compared as that text, never re-formatted. :class:`Watermark` types it for the journey between
passes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from vector_operator.contract.sync import Watermark
from vector_operator.sources import SourceMisconfigured
from vector_operator.sources.records import Key, SourceRow, UndecodableText
from vector_operator.sources.sql_engine import (
    TableRef,
    Timeouts,
    column_types,
    open_engine,
    require_columns,
    source_error,
)
from vector_operator.sources.sql_pages import pages_in_key_order
from vector_operator.sources.sql_row_shape import RowShape, deleted_flag

__all__ = ["ChangedRow", "SqlChangeSource", "change_watermark", "source_key_value"]

MAX_PAGE_ROWS = 1000
KEYS_PER_LOOKUP = 500
"""Keys in one ``WHERE pk IN (...)``: well inside every database's limit on bound parameters."""


@dataclass(frozen=True, slots=True)
class ChangedRow:
    """A source row as the sync reads it: the row, whether it is soft-deleted, and (for changed
    rows) its change column's value as the DB-API returned it."""

    row: SourceRow
    deleted: bool
    change_value: object = None


def change_watermark(url: str, table: str, change_column: str, timeouts: Timeouts) -> Watermark | None:
    """The change column's largest value (``SELECT max(...)``), where a sync starts after the
    backfill; None for an empty table (or one whose change column is NULL everywhere)."""
    ref = TableRef.parse(table)
    engine = open_engine(url, timeouts)
    try:
        with engine.connect() as connection:
            require_columns(column_types(connection, ref), [change_column], ref)
            largest = connection.execute(
                sa.select(sa.func.max(sa.column(change_column))).select_from(ref.clause())
            ).scalar()
    except sa_exc.DBAPIError as error:
        raise source_error(error, f"reading max({change_column}) of {ref}") from None
    finally:
        engine.dispose()
    return None if largest is None else Watermark.of(largest)


def source_key_value(key: Key, key_type: sa.types.TypeEngine[Any]) -> object | None:
    """A collection key as the source's key column binds it; None when the column cannot hold it
    (so no row has it)."""
    try:
        python_type = key_type.python_type
    except NotImplementedError:
        return key
    try:
        if python_type is int and isinstance(key, str):
            return int(key.strip())
        if python_type is Decimal:
            return Decimal(key) if isinstance(key, str) else key
        if python_type is uuid.UUID:
            return uuid.UUID(str(key))
    except (ValueError, InvalidOperation):
        return None
    if python_type is str and isinstance(key, int):
        return str(key)
    return key


class SqlChangeSource:
    """One table's changes, soft deletes and keys, for the sync worker."""

    def __init__(
        self,
        url: str,
        *,
        table: str,
        primary_key: str,
        text_columns: Sequence[str],
        fields: Mapping[str, str],
        change_column: str | None = None,
        soft_delete_column: str | None = None,
        max_text_chars: int | None = None,
        timeouts: Timeouts | None = None,
        page_size: int = MAX_PAGE_ROWS,
        keys_per_lookup: int = KEYS_PER_LOOKUP,
    ) -> None:
        self._engine = open_engine(url, timeouts or Timeouts())
        self._table = TableRef.parse(table)
        self._shape = RowShape.of(
            primary_key=primary_key, text_columns=text_columns, fields=fields, max_text_chars=max_text_chars
        )
        self._change_column = change_column
        self._soft_delete_column = soft_delete_column
        self._page_size = max(1, min(MAX_PAGE_ROWS, page_size))
        self._keys_per_lookup = max(1, keys_per_lookup)
        self._types: dict[str, sa.types.TypeEngine[Any]] | None = None

    @property
    def table(self) -> str:
        return str(self._table)

    def close(self) -> None:
        self._engine.dispose()

    # -- reading ------------------------------------------------------------------------------

    def changed_pages(self, since: Watermark | None) -> Iterator[list[ChangedRow]]:
        """Rows whose change column is at or past ``since`` (every row with a change value when
        None), by keyset pages over (change column, key). At or past: rows committed later with the
        same value as the watermark are read again rather than missed."""
        if self._change_column is None:
            raise ValueError("changed_pages needs a change column")
        types = self._column_types()
        key = self._shape.key(types)
        change: sa.ColumnClause[Any] = sa.column(self._change_column)  # untyped: see the module docstring
        statement = self._select(types, change.label("c")).where(change.is_not(None))
        if since is not None:
            statement = statement.where(change >= since.python())
        statement = statement.order_by(change, key).limit(self._page_size)
        last: tuple[object, object] | None = None
        while True:
            page = statement
            if last is not None:
                last_change, last_key = last
                page = statement.where(change >= last_change, sa.or_(change > last_change, key > last_key))
            rows = self._fetch(page)
            if not rows:
                return
            yield [self._changed_row(row, change_value=row[-1]) for row in rows]
            if len(rows) < self._page_size:
                return
            last = (rows[-1][-1], rows[-1][0])
            if any(isinstance(value, UndecodableText) for value in last):
                raise SourceMisconfigured(
                    f"a value of {self._change_column} or of the primary key is not valid UTF-8: store them"
                    " as text"
                )

    def all_pages(self) -> Iterator[list[ChangedRow]]:
        """Every row with a key, soft-deleted ones flagged, in primary-key order (a full check)."""
        types = self._column_types()
        key = self._shape.key(types)
        statement = self._select(types).order_by(key).limit(self._page_size)
        for rows in pages_in_key_order(self._fetch, statement, key, self._page_size):
            yield [self._changed_row(row) for row in rows]

    def rows_by_keys(self, keys: Sequence[Key]) -> list[ChangedRow]:
        """The rows with these keys that exist (soft-deleted ones flagged); a key the table lacks
        has no row here."""
        types = self._column_types()
        key_type = types[self._shape.primary_key]
        key = self._shape.key(types)
        values = [value for value in (source_key_value(k, key_type) for k in keys) if value is not None]
        found: list[ChangedRow] = []
        for start in range(0, len(values), self._keys_per_lookup):
            chunk = values[start : start + self._keys_per_lookup]
            rows = self._fetch(self._select(types).where(key.in_(chunk)))
            found += [self._changed_row(row) for row in rows]
        return found

    # -- plumbing -----------------------------------------------------------------------------

    def _select(
        self, types: Mapping[str, sa.types.TypeEngine[Any]], *extra: sa.ColumnElement[Any]
    ) -> sa.Select[Any]:
        key = self._shape.key(types)
        selected = [*self._shape.columns(types), deleted_flag(self._soft_delete_column), *extra]
        return sa.select(*selected).select_from(self._table.clause()).where(key.is_not(None))

    def _changed_row(self, row: Sequence[Any], change_value: object = None) -> ChangedRow:
        width = self._shape.width
        return ChangedRow(self._shape.source_row(row), bool(row[width]), change_value)

    def _column_types(self) -> dict[str, sa.types.TypeEngine[Any]]:
        """The table's column types, looked up once (and again after an error: the table may have
        been fixed)."""
        if self._types is None:
            try:
                with self._engine.connect() as connection:
                    types = column_types(connection, self._table)
            except sa_exc.DBAPIError as error:
                raise source_error(error, f"describing {self._table}") from None
            wanted = self._shape.required_columns()
            wanted += [name for name in (self._change_column, self._soft_delete_column) if name is not None]
            require_columns(types, wanted, self._table)
            self._types = types
        return self._types

    def _fetch(self, statement: sa.Select[Any]) -> Sequence[sa.Row[Any]]:
        try:
            with self._engine.connect() as connection:
                return connection.execute(statement).all()
        except sa_exc.DBAPIError as error:
            self._types = None
            raise source_error(error, f"reading {self._table}") from None

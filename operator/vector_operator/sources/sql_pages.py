"""Rows of one table through SQLAlchemy Core, in primary-key order, by keyset pagination.

Each page is one ``SELECT ... WHERE pk > :last AND <key range> ORDER BY pk LIMIT :page``: the
database walks the primary key index, memory holds one page, and a page never skips or repeats a
row however large the range. Scalar fields are columns or SQL expressions the database evaluates.

SQLite hands over TEXT that is not valid UTF-8 as :class:`UndecodableText` (instead of failing
the page), so that such a row is skipped with a reason like any other bad row.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from vector_operator.worker.assignment import KeyRange
from vector_operator.worker.records import SourceRow, UndecodableText, milvus_key
from vector_operator.worker.sources import SourceMisconfigured, SourceUnavailable

DEFAULT_PAGE_SIZE = 1000
SQLITE_QUERY_ERRORS = ("no such", "near ", "unrecognized token")
PLAIN_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def _decode_sqlite_text(raw: bytes) -> str | UndecodableText:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return UndecodableText(raw)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.text_factory = _decode_sqlite_text


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
    ) -> None:
        try:
            self._engine = sa.create_engine(url, pool_pre_ping=True)
        except (sa_exc.ArgumentError, ValueError):
            raise SourceMisconfigured("the source URL is not a valid SQLAlchemy URL") from None
        except ModuleNotFoundError as error:
            raise SourceMisconfigured(
                f"the source URL needs a database driver the worker lacks: {error.name}"
            ) from None
        if self._engine.dialect.name == "sqlite":
            sa.event.listen(self._engine, "connect", _on_sqlite_connect)
        schema, _, name = table.rpartition(".")
        self._schema, self._table_name = schema or None, name
        self._primary_key = primary_key
        self._text_columns = tuple(text_columns)
        self._fields = dict(fields)
        self._key_range = key_range
        self._page_size = page_size

    def close(self) -> None:
        self._engine.dispose()

    def _check_columns(self, connection: sa.Connection) -> None:
        inspector = sa.inspect(connection)
        where = f"{self._schema}.{self._table_name}" if self._schema else self._table_name
        if not inspector.has_table(self._table_name, schema=self._schema):
            raise SourceMisconfigured(f"table {where} does not exist (or the source user cannot see it)")
        existing = {column["name"] for column in inspector.get_columns(self._table_name, schema=self._schema)}
        wanted = [self._primary_key, *self._text_columns]
        wanted += [value for value in self._fields.values() if PLAIN_COLUMN.match(value)]
        if missing := sorted({column for column in wanted if column not in existing}):
            raise SourceMisconfigured(
                f"table {where} has no column {', '.join(missing)}; "
                f"its columns are {', '.join(sorted(existing))}"
            )

    def _statement(self) -> tuple[sa.Select[Any], sa.ColumnClause[Any]]:
        table = sa.table(self._table_name, schema=self._schema)
        key: sa.ColumnClause[Any] = sa.column(self._primary_key)
        selected: list[sa.ColumnElement[Any]] = [key.label("k")]
        selected += [sa.column(column).label(f"t{index}") for index, column in enumerate(self._text_columns)]
        for index, expression in enumerate(self._fields.values()):
            value: sa.ColumnElement[Any] = (
                sa.column(expression) if PLAIN_COLUMN.match(expression) else sa.literal_column(expression)
            )
            selected.append(value.label(f"f{index}"))
        statement = sa.select(*selected).select_from(table).where(key.is_not(None))
        if self._key_range.start is not None:
            statement = statement.where(key >= self._key_range.start)
        if self._key_range.end is not None:
            statement = statement.where(key < self._key_range.end)
        return statement.order_by(key).limit(self._page_size), key

    def pages(self) -> Iterator[list[SourceRow]]:
        field_names = list(self._fields)
        try:
            with self._engine.connect() as connection:
                self._check_columns(connection)
                statement, key = self._statement()
                last: object = None
                while True:
                    page = statement if last is None else statement.where(key > last)
                    rows = connection.execute(page).all()
                    if not rows:
                        return
                    yield [
                        SourceRow(
                            key=milvus_key(row[0]),
                            text_values=dict(
                                zip(self._text_columns, row[1 : 1 + len(self._text_columns)], strict=True)
                            ),
                            field_values=dict(
                                zip(field_names, row[1 + len(self._text_columns) :], strict=True)
                            ),
                        )
                        for row in rows
                    ]
                    if len(rows) < self._page_size:
                        return
                    last = rows[-1][0]
                    if isinstance(last, UndecodableText):
                        raise SourceMisconfigured(
                            "a primary key value is not valid UTF-8: string keys must be text"
                        )
        except sa_exc.OperationalError as error:
            message = _first_line(error)
            if message.startswith(SQLITE_QUERY_ERRORS):  # SQLite reports query mistakes as operational
                raise SourceMisconfigured(f"the source query failed: {message}") from None
            raise SourceUnavailable(f"the source database failed: {message}") from None
        except (sa_exc.ProgrammingError, sa_exc.DataError) as error:
            raise SourceMisconfigured(f"the source query failed: {_first_line(error)}") from None


def _first_line(error: sa_exc.DBAPIError) -> str:
    return str(error.orig).strip().splitlines()[0] if error.orig is not None else type(error).__name__

"""Connecting to an SQL source, the same way for the planner and the worker: bounded connect and
statement times, the table and key column as the database describes them, key bounds in the
database's own types, and errors that name the table, never the URL (it carries the password).

SQLite hands over TEXT that is not valid UTF-8 as :class:`UndecodableText` (instead of failing
the page), so that such a row is skipped with a reason like any other bad row.
"""

from __future__ import annotations

import math
import sqlite3
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from vector_operator.sources import SourceMisconfigured, SourceUnavailable
from vector_operator.sources.records import UndecodableText

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_STATEMENT_TIMEOUT_S = 600.0
SQLITE_QUERY_ERRORS = ("no such", "near ", "unrecognized token")

KeyValue = int | str | Decimal | uuid.UUID


@dataclass(frozen=True)
class Timeouts:
    """How long connecting and one statement may take (where the database supports a limit:
    PostgreSQL and MySQL; SQLite files have no server to wait for)."""

    connect_s: float = DEFAULT_CONNECT_TIMEOUT_S
    statement_s: float = DEFAULT_STATEMENT_TIMEOUT_S


def _decode_sqlite_text(raw: bytes) -> str | UndecodableText:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return UndecodableText(raw)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.text_factory = _decode_sqlite_text


def _connect_args(url: sa.URL, timeouts: Timeouts) -> dict[str, Any]:
    seconds = max(1, math.ceil(timeouts.connect_s))
    backend = url.get_backend_name()
    if backend == "postgresql":
        statement_ms = max(1, round(timeouts.statement_s * 1000))
        return {"connect_timeout": seconds, "options": f"-c statement_timeout={statement_ms}"}
    if backend in ("mysql", "mariadb"):
        return {"connect_timeout": seconds, "read_timeout": max(1, math.ceil(timeouts.statement_s))}
    if backend == "sqlite":
        return {"timeout": timeouts.connect_s}  # how long a locked database file is waited for
    return {}


def open_engine(url: str, timeouts: Timeouts) -> sa.Engine:
    """An engine for ``url`` with the timeouts applied."""
    try:
        parsed = sa.make_url(url)
        engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args=_connect_args(parsed, timeouts))
    except (sa_exc.ArgumentError, ValueError):
        raise SourceMisconfigured("the source URL in the Secret is not a valid SQLAlchemy URL") from None
    except ModuleNotFoundError as error:
        raise SourceMisconfigured(
            f"the source URL needs a database driver that is missing: {error.name}"
        ) from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _on_sqlite_connect)
    return engine


@dataclass(frozen=True)
class TableRef:
    """A table, optionally schema-qualified, as the spec names it."""

    schema: str | None
    name: str

    @classmethod
    def parse(cls, table: str) -> TableRef:
        schema, _, name = table.rpartition(".")
        return cls(schema or None, name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def clause(self) -> sa.TableClause:
        return sa.table(self.name, schema=self.schema)


def column_types(connection: sa.Connection, table: TableRef) -> dict[str, sa.types.TypeEngine[Any]]:
    """The table's columns and their types, as the database describes them."""
    inspector = sa.inspect(connection)
    if not inspector.has_table(
        table.name, schema=table.schema
    ) and table.name not in inspector.get_view_names(schema=table.schema):
        raise SourceMisconfigured(f"table {table} does not exist (or the source user cannot see it)")
    return {
        column["name"]: column["type"] for column in inspector.get_columns(table.name, schema=table.schema)
    }


def require_columns(existing: dict[str, Any], wanted: list[str], table: TableRef) -> None:
    if missing := sorted({column for column in wanted if column not in existing}):
        raise SourceMisconfigured(
            f"table {table} has no column {', '.join(missing)}; its columns are {', '.join(sorted(existing))}"
        )


def key_column(name: str, key_type: sa.types.TypeEngine[Any]) -> sa.ColumnClause[Any]:
    """The key column, typed as the database declared it, so bounds bind as that type (a UUID or
    NUMERIC bound is compared as one, and text under the column's own collation)."""
    return sa.column(name, type_=key_type)


def bound_for(value: int | str | Decimal, key_type: sa.types.TypeEngine[Any]) -> KeyValue:
    """A batch bound converted to the Python type the key column's type binds."""
    try:
        python_type = key_type.python_type
    except NotImplementedError:
        return value
    if python_type is uuid.UUID and isinstance(value, str):
        return uuid.UUID(value)
    return value


def first_line(error: sa_exc.DBAPIError) -> str:
    return str(error.orig).strip().splitlines()[0] if error.orig is not None else type(error).__name__


def source_error(error: sa_exc.DBAPIError, what: str) -> SourceMisconfigured | SourceUnavailable:
    """A database error as the worker and the planner report it: a mistake in the source's
    description (retrying does not help) or the database being unavailable (it may)."""
    message = first_line(error)
    if isinstance(error, sa_exc.OperationalError) and not message.startswith(SQLITE_QUERY_ERRORS):
        return SourceUnavailable(f"{what}: the source database failed: {message}")
    return SourceMisconfigured(f"{what}: the source query failed: {message}")

"""Planning a SQL source: one ordered, streamed pass over the primary key (SQLAlchemy Core), so
batches hold `recordsPerJob` rows each whatever the key distribution. Errors name the table, never
the URL (it carries the password)."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from vector_operator.migration.batch_plan import BatchPlan, Key, plan_batches

SCAN_PAGE = 10_000


class SourceUnavailable(Exception):
    """The source could not be read; the message says what to check."""


def scan_sql_source(url: str, table: str, primary_key: str, records_per_batch: int) -> BatchPlan:
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except (sa_exc.ArgumentError, ValueError):
        raise SourceUnavailable("the source URL in the Secret is not a valid SQLAlchemy URL") from None
    except ModuleNotFoundError as error:
        raise SourceUnavailable(
            f"the source URL needs a database driver the operator lacks: {error.name}"
        ) from None
    schema, _, name = table.rpartition(".")
    try:
        with engine.connect() as connection:
            key = sa.table(name, sa.column(primary_key), schema=schema or None).c[primary_key]
            statement = sa.select(key).where(key.is_not(None)).order_by(key)
            rows = connection.execution_options(yield_per=SCAN_PAGE).execute(statement)

            def keys() -> Iterator[Key]:
                for (value,) in rows:
                    yield value if isinstance(value, int | str) else str(value)

            return plan_batches(keys(), records_per_batch)
    except sa_exc.DBAPIError as error:
        first_line = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise SourceUnavailable(f"cannot read {table}.{primary_key}: {first_line}") from None
    finally:
        engine.dispose()

"""Planning an SQL source: count the rows, refuse what cannot be batched before reading a single
key (a recordsPerJob so small that the boundaries would not fit, a key type that has no stable
order), then one ordered, streamed pass over the primary key in the database's own order, so
batches hold `recordsPerJob` rows each whatever the key distribution. A key that is not unique
is refused; rows with a NULL key are counted, to be reported as skipped."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from vector_operator.contract.assignment import KeyValue
from vector_operator.migration.batch_plan import (
    MAX_BATCHES,
    BatchPlan,
    KeyNotUnique,
    batches_needed,
    plan_batches,
    smallest_records_per_batch,
)
from vector_operator.sources import SourceMisconfigured
from vector_operator.sources.sql_engine import (
    TableRef,
    Timeouts,
    column_types,
    key_column,
    open_engine,
    require_columns,
    source_error,
)

SCAN_PAGE = 10_000
_UNORDERED_TYPES = (sa.Float, sa.Boolean, sa.Date, sa.DateTime, sa.Time, sa.Interval, sa.LargeBinary, sa.JSON)


class PlanningRefused(SourceMisconfigured):
    """The source cannot be cut into batches as the plan asks; ``reason`` names why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _check_key_type(table: TableRef, key: str, key_type: sa.types.TypeEngine[Any]) -> None:
    if isinstance(key_type, _UNORDERED_TYPES):
        raise PlanningRefused(
            "UnsupportedKeyType",
            f"primaryKey {key} of {table} is of type {key_type}: batches need an integer, numeric, text"
            " or UUID key (a float or time key has no exact boundaries): choose another primaryKey",
        )


def _key_value(table: TableRef, key: str, value: object) -> KeyValue:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal | uuid.UUID):
        raise PlanningRefused(
            "UnsupportedKeyType",
            f"primaryKey {key} of {table} holds {type(value).__name__} values: batches need an integer,"
            " numeric, text or UUID key: choose another primaryKey",
        )
    return str(value) if isinstance(value, uuid.UUID) else value


def plan_sql_batches(
    url: str, table: str, primary_key: str, size: int | Callable[[int], int], timeouts: Timeouts
) -> BatchPlan:
    """The batches of ``table`` by ``primary_key``: ``size`` records each, or as many as
    ``size(rows with a key)`` says. Raises PlanningRefused (reasons TooManyBatches, KeyNotUnique,
    UnsupportedKeyType), SourceMisconfigured or SourceUnavailable."""
    ref = TableRef.parse(table)
    engine = open_engine(url, timeouts)
    try:
        with engine.connect() as connection:
            types = column_types(connection, ref)
            require_columns(types, [primary_key], ref)
            _check_key_type(ref, primary_key, types[primary_key])
            key = key_column(primary_key, types[primary_key])
            total, keyed = connection.execute(
                sa.select(sa.func.count(), sa.func.count(key)).select_from(ref.clause())
            ).one()
            records_per_batch = size(int(keyed)) if callable(size) else size
            if batches_needed(keyed, records_per_batch) > MAX_BATCHES:
                raise PlanningRefused(
                    "TooManyBatches",
                    f"{keyed} rows in batches of {records_per_batch} make"
                    f" {batches_needed(keyed, records_per_batch)} batches, more than {MAX_BATCHES}:"
                    f" set batching.recordsPerJob to at least {smallest_records_per_batch(keyed)}",
                )
            statement = sa.select(key).select_from(ref.clause()).where(key.is_not(None)).order_by(key)
            rows = connection.execution_options(yield_per=SCAN_PAGE).execute(statement)

            def keys() -> Iterator[KeyValue]:
                for (value,) in rows:
                    yield _key_value(ref, primary_key, value)

            try:
                return plan_batches(keys(), records_per_batch, null_keys=int(total) - int(keyed))
            except KeyNotUnique:
                raise PlanningRefused(
                    "KeyNotUnique",
                    f"primaryKey {primary_key} of {ref} is not unique: some rows share a value, so batches"
                    " would overlap and records collide; choose a unique column",
                ) from None
    except sa_exc.DBAPIError as error:
        raise source_error(error, f"reading {ref}.{primary_key}") from None
    finally:
        engine.dispose()

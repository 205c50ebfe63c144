"""Planning an SQL source and reading its batches, with the one SQL module both sides share, against
a real PostgreSQL and SQLite: batches follow the database's own order (a case-insensitive
collation, NUMERIC keys) and together hold every row exactly once; what cannot be batched is
refused with a reason before any key is read; planning gives up in bounded time."""

from __future__ import annotations

import socket
import sqlite3
import threading
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import PostgresServer
from tests.polling import unique

from vector_operator.contract.assignment import KeyRange, key_bound
from vector_operator.migration.batch_plan import BatchPlan
from vector_operator.sources import SourceUnavailable
from vector_operator.sources.sql_engine import Timeouts
from vector_operator.sources.sql_keys import PlanningRefused, plan_sql_batches
from vector_operator.sources.sql_pages import SqlTableSource

QUICK = Timeouts(connect_s=3, statement_s=30)


def read_batches(url: str, table: str, key: str, plan: BatchPlan) -> list[list[object]]:
    """Each batch's keys as the worker reads them (bounds cross the contract's JSON form)."""
    batches = []
    for index in range(plan.batches):
        start, end = plan.key_range(index)
        key_range = KeyRange.model_validate(
            KeyRange(
                start=None if start is None else key_bound(start), end=None if end is None else key_bound(end)
            ).model_dump(mode="json")
        )
        source = SqlTableSource(
            url,
            table=table,
            primary_key=key,
            text_columns=["body"],
            fields={},
            key_range=key_range,
            page_size=7,
        )
        try:
            batches.append([row.key for page in source.pages() for row in page])
        finally:
            source.close()
    return batches


@pytest.fixture
def pg_schema(postgres: PostgresServer) -> Iterator[str]:
    schema = unique("plan")
    engine = sa.create_engine(postgres.url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


def pg_execute(postgres: PostgresServer, *statements: str) -> None:
    engine = sa.create_engine(postgres.url)
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)
    engine.dispose()


def test_a_case_insensitive_text_key_is_batched_in_the_databases_order(
    postgres: PostgresServer, pg_schema: str
) -> None:
    # Under ICU's case-insensitive order "apple" < "Banana" < "cherry"; Python's ordering would put
    # "Banana" first and refuse the batch ["apple", "Banana") as empty.
    words = [
        "apple",
        "Banana",
        "cherry",
        "Date",
        "elder",
        "Fig",
        "grape",
        "Honeydew",
        "iris",
        "Jujube",
        "kiwi",
    ]
    pg_execute(
        postgres,
        f"CREATE COLLATION {pg_schema}.nocase"
        " (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
        f"CREATE TABLE {pg_schema}.fruit (name text COLLATE {pg_schema}.nocase PRIMARY KEY, body text)",
        *(f"INSERT INTO {pg_schema}.fruit VALUES ('{word}', 'about {word}')" for word in words),
    )
    table = f"{pg_schema}.fruit"
    plan = plan_sql_batches(postgres.url, table, "name", 2, QUICK)
    assert plan.batches == 6
    assert plan.starts == ("cherry", "elder", "grape", "iris", "kiwi")  # the collation's order, not Python's
    batches = read_batches(postgres.url, table, "name", plan)
    assert [len(batch) for batch in batches] == [2, 2, 2, 2, 2, 1]
    assert sorted(key for batch in batches for key in batch) == sorted(words)  # each row once


def test_numeric_keys_keep_their_exact_values_across_the_contract(
    postgres: PostgresServer, pg_schema: str
) -> None:
    pg_execute(
        postgres,
        f"CREATE TABLE {pg_schema}.prices (id numeric(12, 2) PRIMARY KEY, body text)",
        f"INSERT INTO {pg_schema}.prices SELECT g / 4.0, 'row ' || g FROM generate_series(1, 103) g",
    )
    table = f"{pg_schema}.prices"
    plan = plan_sql_batches(postgres.url, table, "id", 10, QUICK)
    assert plan.batches == 11
    assert all(isinstance(start, Decimal) for start in plan.starts)
    assert BatchPlan.decode(plan.encode()) == plan  # as stored in the plan's ConfigMap
    batches = read_batches(postgres.url, table, "id", plan)
    assert [len(batch) for batch in batches] == [10] * 10 + [3]
    assert sum(len(batch) for batch in batches) == 103


def test_a_key_that_is_not_unique_is_refused_naming_the_column_and_null_keys_are_counted(
    postgres: PostgresServer, pg_schema: str, tmp_path: Path
) -> None:
    pg_execute(
        postgres,
        f"CREATE TABLE {pg_schema}.events (code text, body text)",
        f"INSERT INTO {pg_schema}.events VALUES ('a', 'x'), ('b', 'y'), ('b', 'z'), (NULL, 'w')",
    )
    with pytest.raises(PlanningRefused, match=r"primaryKey code of .*events is not unique") as refused:
        plan_sql_batches(postgres.url, f"{pg_schema}.events", "code", 1, QUICK)
    assert refused.value.reason == "KeyNotUnique"
    path = tmp_path / "nulls.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (slug TEXT, body TEXT)")
        connection.executemany(
            "INSERT INTO notes VALUES (?, ?)", [("a", "1"), (None, "2"), ("b", "3"), (None, "4")]
        )
    plan = plan_sql_batches(f"sqlite:///{path}", "notes", "slug", 1, QUICK)
    assert (plan.records_total, plan.null_keys, plan.batches) == (2, 2, 2)


def test_a_records_per_job_too_small_is_refused_before_a_key_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, body TEXT)")
        connection.executemany("INSERT INTO big VALUES (?, 'x')", ((key,) for key in range(300_000)))
    tracemalloc.start()
    try:
        with pytest.raises(PlanningRefused, match=r"set batching\.recordsPerJob to at least 3") as refused:
            plan_sql_batches(f"sqlite:///{path}", "big", "id", 1, QUICK)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.reason == "TooManyBatches"
    assert peak < 2_000_000  # 300,000 boundaries would take far more than that


def test_unsupported_key_types_are_refused_with_the_columns_type(tmp_path: Path) -> None:
    path = tmp_path / "floats.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE points (x REAL PRIMARY KEY, body TEXT)")
        connection.execute("INSERT INTO points VALUES (0.5, 'a')")
    with pytest.raises(PlanningRefused, match="primaryKey x of points is of type REAL") as refused:
        plan_sql_batches(f"sqlite:///{path}", "points", "x", 10, QUICK)
    assert refused.value.reason == "UnsupportedKeyType"


def test_planning_gives_up_on_a_slow_statement_and_a_silent_server(
    postgres: PostgresServer, pg_schema: str
) -> None:
    pg_execute(
        postgres,
        f"CREATE TABLE {pg_schema}.slow_base (id int PRIMARY KEY)",
        f"INSERT INTO {pg_schema}.slow_base VALUES (1), (2)",
        f"CREATE VIEW {pg_schema}.slow AS SELECT id, 'x' AS body FROM {pg_schema}.slow_base, pg_sleep(5)",
    )
    with pytest.raises(SourceUnavailable, match="statement timeout"):
        plan_sql_batches(postgres.url, f"{pg_schema}.slow", "id", 1, Timeouts(connect_s=3, statement_s=1))
    # A server that accepts connections and never answers: the connect timeout ends the wait.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = silent.getsockname()[1]
    url = postgres.url.replace(f":{postgres.port}/", f":{port}/")
    try:
        with pytest.raises(SourceUnavailable) as unavailable:
            plan_sql_batches(url, "anything", "id", 1, Timeouts(connect_s=2, statement_s=30))
        assert postgres.password not in str(unavailable.value)
    finally:
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        silent.close()

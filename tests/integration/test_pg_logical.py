"""The PostgreSQL change feed against a real server (Debian's, started with wal_level=logical by the
session fixture `postgres`): a slot of test_decoding, keys of one table in commit order, peeking
without moving the slot (at-least-once), confirming past whole transactions, and what the server
refuses, each with what to change. Every test uses its own schema and slot and drops its slot: a
leftover slot would keep the session server's WAL for good."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import PostgresServer, _postgres_bin
from tests.polling import unique

from localcluster.ports import free_port
from vector_operator.sources import SourceMisconfigured, SourceUnavailable
from vector_operator.sources.pg_logical import (
    ChangeFeed,
    KeyChange,
    LogicalDecodingUnavailable,
    SlotMissing,
    confirm,
    create_slot,
    drop_slot,
    peek_changes,
)
from vector_operator.sources.sql_engine import Timeouts

QUICK = Timeouts(connect_s=3, statement_s=30)
NOTHING = ChangeFeed(changes=(), upto_lsn=None, truncated=False, transactions=0)

Execute = Callable[..., None]


def upsert(key: int | str | Decimal) -> KeyChange:
    return KeyChange(key, deleted=False)


def delete(key: int | str | Decimal) -> KeyChange:
    return KeyChange(key, deleted=True)


@pytest.fixture
def sql(postgres: PostgresServer) -> Iterator[Execute]:
    """Runs statements in ONE transaction per call (so each call is one transaction decoded)."""
    engine = sa.create_engine(postgres.url)

    def execute(*statements: str) -> None:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)

    try:
        yield execute
    finally:
        engine.dispose()


@pytest.fixture
def schema(sql: Execute) -> Iterator[str]:
    name = unique("feed")
    sql(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        sql(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def slot(postgres: PostgresServer) -> Iterator[str]:
    name = unique("vo_test")
    try:
        yield name
    finally:
        drop_slot(postgres.url, name, QUICK)


def peek(postgres: PostgresServer, slot: str, table: str, key: str = "id", **options: int) -> ChangeFeed:
    return peek_changes(postgres.url, slot, table, key, timeouts=QUICK, **options)


def test_integer_keys_come_in_commit_order_peeked_again_until_confirmed(
    postgres: PostgresServer, sql: Execute, schema: str, slot: str
) -> None:
    table = f"{schema}.articles"
    sql(f"CREATE TABLE {table} (id integer PRIMARY KEY, title text, body text)")
    create_slot(postgres.url, slot, QUICK)
    sql(f"INSERT INTO {table} VALUES (1, 'one', 'x'), (2, 'two', 'y'), (3, 'three', repeat('z', 100000))")
    sql(f"UPDATE {table} SET title = 'it''s two' WHERE id = 2")  # a text change
    sql(
        f"UPDATE {table} SET id = 30 WHERE id = 3",  # a key change (its body stays out of line)
        f"DELETE FROM {table} WHERE id = 1",
    )
    feed = peek(postgres, slot, table)
    assert feed.changes == (upsert(2), delete(3), upsert(30), delete(1))
    assert all(type(change.key) is int for change in feed.changes)
    assert (feed.truncated, feed.transactions) == (False, 3)
    assert feed.upto_lsn is not None
    # Not confirmed: the same again (the worker may have died before applying them).
    assert peek(postgres, slot, table) == feed
    confirm(postgres.url, slot, feed.upto_lsn, QUICK)
    assert peek(postgres, slot, table) == NOTHING
    confirm(postgres.url, slot, feed.upto_lsn, QUICK)  # a second confirm of the same changes
    sql(f"UPDATE {table} SET body = 'new' WHERE id = 30")
    later = peek(postgres, slot, table)
    assert later.changes == (upsert(30),)
    assert later.upto_lsn is not None
    confirm(postgres.url, slot, later.upto_lsn, QUICK)
    confirm(postgres.url, slot, feed.upto_lsn, QUICK)  # late: the slot is already past it
    assert peek(postgres, slot, table) == NOTHING


def test_text_keys_with_quotes_spaces_and_non_ascii_in_a_mixed_case_table(
    postgres: PostgresServer, sql: Execute, schema: str, slot: str
) -> None:
    table = f'{schema}."Mixed Case"'
    sql(f'CREATE TABLE {table} ("Key Col" varchar(200) PRIMARY KEY, "Body Text" text)')
    create_slot(postgres.url, slot, QUICK)
    sql(
        f"INSERT INTO {table} VALUES ('it''s a key', 'a'), ('日本 é', 'b'), (E'line\\nbreak', 'c'),"
        " (' padded ', 'd')"
    )
    sql(f"UPDATE {table} SET \"Key Col\" = 'renamed' WHERE \"Key Col\" = '日本 é'")
    sql(f"DELETE FROM {table} WHERE \"Key Col\" = E'line\\nbreak'")
    feed = peek(postgres, slot, f"{schema}.Mixed Case", "Key Col")
    assert feed.changes == (
        upsert("it's a key"),
        upsert(" padded "),
        delete("日本 é"),
        upsert("renamed"),
        delete("line\nbreak"),
    )
    assert feed.transactions == 3


def test_uuid_and_numeric_keys_and_a_table_named_without_its_schema(
    postgres: PostgresServer, sql: Execute, schema: str, slot: str
) -> None:
    plain = unique("feed_public")
    sql(
        f"CREATE TABLE {schema}.prices (id numeric(12, 2) PRIMARY KEY, body text)",
        f"CREATE TABLE public.{plain} (id uuid PRIMARY KEY, body text)",
    )
    try:
        create_slot(postgres.url, slot, QUICK)
        sql(
            f"INSERT INTO {schema}.prices VALUES (1.5, 'a'), (-2, 'b')",
            f"INSERT INTO public.{plain} VALUES ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'x')",
        )
        sql(f"DELETE FROM {schema}.prices WHERE id = 1.5")
        prices = peek(postgres, slot, f"{schema}.prices")
        assert prices.changes == (upsert(Decimal("-2.00")), delete(Decimal("1.50")))
        assert all(isinstance(change.key, Decimal) for change in prices.changes)
        assert str(prices.changes[0].key) == "-2.00"
        # Unqualified: the search path's table (public), its uuid as text.
        assert peek(postgres, slot, plain).changes == (upsert("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),)
    finally:
        sql(f"DROP TABLE public.{plain}")


def test_other_tables_are_ignored_but_confirmed_past(
    postgres: PostgresServer, sql: Execute, schema: str, slot: str
) -> None:
    sql(
        f"CREATE TABLE {schema}.articles (id integer PRIMARY KEY, body text)",
        f"CREATE TABLE {schema}.articles_archive (id integer PRIMARY KEY, body text)",
        f'CREATE TABLE {schema}."Articles" (id integer PRIMARY KEY, body text)',
    )
    create_slot(postgres.url, slot, QUICK)
    sql(f"INSERT INTO {schema}.articles_archive VALUES (1, 'x')")
    sql(
        f"INSERT INTO {schema}.\"Articles\" VALUES (2, 'y')", f"INSERT INTO {schema}.articles VALUES (3, 'z')"
    )
    sql(f"INSERT INTO {schema}.articles_archive SELECT g, repeat('x', 10000) FROM generate_series(10, 50) g")
    feed = peek(postgres, slot, f"{schema}.articles")
    assert feed.changes == (upsert(3),)
    assert feed.transactions == 3
    assert feed.upto_lsn is not None
    confirm(postgres.url, slot, feed.upto_lsn, QUICK)
    assert peek(postgres, slot, f"{schema}.articles_archive") == NOTHING  # consumed with the rest


def test_a_truncate_marks_the_feed(postgres: PostgresServer, sql: Execute, schema: str, slot: str) -> None:
    sql(
        f"CREATE TABLE {schema}.articles (id integer PRIMARY KEY, body text)",
        f"CREATE TABLE {schema}.other (id integer PRIMARY KEY)",
    )
    create_slot(postgres.url, slot, QUICK)
    sql(f"INSERT INTO {schema}.articles VALUES (1, 'x')")
    sql(f"TRUNCATE {schema}.other")
    assert not peek(postgres, slot, f"{schema}.articles").truncated
    sql(f"TRUNCATE {schema}.other, {schema}.articles")  # listed second
    sql(f"INSERT INTO {schema}.articles VALUES (2, 'y')")
    feed = peek(postgres, slot, f"{schema}.articles")
    assert feed.truncated
    assert feed.changes == (upsert(1), upsert(2))
    assert feed.transactions == 4


def test_max_changes_reads_whole_transactions_and_the_rest_follows(
    postgres: PostgresServer, sql: Execute, schema: str, slot: str
) -> None:
    table = f"{schema}.articles"
    sql(f"CREATE TABLE {table} (id integer PRIMARY KEY, body text)")
    create_slot(postgres.url, slot, QUICK)
    for key in range(1, 4):
        sql(f"INSERT INTO {table} VALUES ({key}, 'x')")  # 3 lines each
    sql(f"INSERT INTO {table} SELECT g, 'y' FROM generate_series(100, 119) g")  # 22 lines
    first = peek(postgres, slot, table, max_changes=4)  # stops at the end of the 2nd transaction
    assert first.changes == (upsert(1), upsert(2))
    assert first.upto_lsn is not None
    confirm(postgres.url, slot, first.upto_lsn, QUICK)
    second = peek(postgres, slot, table, max_changes=5)  # the big one comes whole
    assert second.changes == (upsert(3), *(upsert(key) for key in range(100, 120)))
    assert second.transactions == 2
    assert second.upto_lsn is not None
    confirm(postgres.url, slot, second.upto_lsn, QUICK)
    assert peek(postgres, slot, table) == NOTHING


def test_a_partitioned_table_is_followed_through_its_partitions(
    postgres: PostgresServer, sql: Execute, schema: str, slot: str
) -> None:
    sql(
        f"CREATE TABLE {schema}.events (id bigint PRIMARY KEY, body text) PARTITION BY RANGE (id)",
        f"CREATE TABLE {schema}.events_low PARTITION OF {schema}.events FOR VALUES FROM (0) TO (100)",
        f"CREATE TABLE {schema}.events_high PARTITION OF {schema}.events FOR VALUES FROM (100) TO (200)",
    )
    create_slot(postgres.url, slot, QUICK)
    sql(f"INSERT INTO {schema}.events VALUES (5, 'a'), (150, 'b')")
    sql(f"UPDATE {schema}.events SET id = 160 WHERE id = 5")  # moves across partitions
    feed = peek(postgres, slot, f"{schema}.events")
    assert feed.changes == (upsert(150), delete(5), upsert(160))


def test_a_key_outside_the_replica_identity_is_refused_until_the_identity_is_full(
    postgres: PostgresServer, sql: Execute, schema: str, slot: str
) -> None:
    table = f"{schema}.docs"
    sql(f"CREATE TABLE {table} (id integer PRIMARY KEY, code text UNIQUE NOT NULL, body text)")
    create_slot(postgres.url, slot, QUICK)
    with pytest.raises(LogicalDecodingUnavailable, match=r"REPLICA IDENTITY FULL") as refused:
        peek(postgres, slot, table, "code")
    assert "primaryKey code is not in the replica identity" in str(refused.value)
    sql(f"ALTER TABLE {table} REPLICA IDENTITY FULL")
    sql(f"INSERT INTO {table} VALUES (1, 'a', 'x'), (2, 'b', 'y')")
    sql(f"UPDATE {table} SET code = 'c' WHERE id = 1", f"DELETE FROM {table} WHERE id = 2")
    assert peek(postgres, slot, table, "code").changes == (delete("a"), upsert("c"), delete("b"))


def test_what_cannot_be_followed_is_refused_naming_it(
    postgres: PostgresServer, sql: Execute, schema: str, slot: str, tmp_path: Path
) -> None:
    sql(
        f"CREATE TABLE {schema}.points (x double precision PRIMARY KEY, body text)",
        f"CREATE VIEW {schema}.recent AS SELECT 1 AS id",
    )
    create_slot(postgres.url, slot, QUICK)
    with pytest.raises(SourceMisconfigured, match=rf"table {schema}\.missing does not exist"):
        peek(postgres, slot, f"{schema}.missing")
    with pytest.raises(SourceMisconfigured, match=rf"table {schema}\.points has no column id"):
        peek(postgres, slot, f"{schema}.points")
    with pytest.raises(SourceMisconfigured, match="of type double precision"):
        peek(postgres, slot, f"{schema}.points", "x")
    with pytest.raises(LogicalDecodingUnavailable, match="is not a table"):
        peek(postgres, slot, f"{schema}.recent")
    with pytest.raises(LogicalDecodingUnavailable, match="needs a PostgreSQL source"):
        create_slot(f"sqlite:///{tmp_path / 'x.db'}", slot)


def test_slots_are_created_and_dropped_idempotently(
    postgres: PostgresServer, sql: Execute, schema: str, slot: str
) -> None:
    table = f"{schema}.articles"
    sql(f"CREATE TABLE {table} (id integer PRIMARY KEY, body text)")
    create_slot(postgres.url, slot, QUICK)
    sql(f"INSERT INTO {table} VALUES (1, 'x')")
    create_slot(postgres.url, slot, QUICK)  # kept, with its position: the insert is still there
    feed = peek(postgres, slot, table)
    assert feed.changes == (upsert(1),)
    assert feed.upto_lsn is not None
    assert drop_slot(postgres.url, slot, QUICK) is True
    assert drop_slot(postgres.url, slot, QUICK) is False
    with pytest.raises(SlotMissing, match=f"replication slot {slot} does not exist"):
        peek(postgres, slot, table)
    with pytest.raises(SlotMissing, match=f"replication slot {slot} does not exist"):
        confirm(postgres.url, slot, feed.upto_lsn, QUICK)


def test_a_slot_in_use_by_another_connection_is_unavailable_for_now(
    postgres: PostgresServer, sql: Execute, schema: str, slot: str
) -> None:
    sql(f"CREATE TABLE {schema}.articles (id integer PRIMARY KEY)")
    engine = sa.create_engine(postgres.url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as holder:
            # A temporary slot is held by its session until the session ends.
            holder.execute(
                sa.text("SELECT pg_create_logical_replication_slot(:slot, 'test_decoding', true)"),
                {"slot": slot},
            )
            with pytest.raises(SourceUnavailable, match=f"replication slot {slot} is in use"):
                drop_slot(postgres.url, slot, QUICK)
            with pytest.raises(SourceUnavailable, match=f"replication slot {slot} is in use"):
                peek(postgres, slot, f"{schema}.articles")
            create_slot(postgres.url, slot, QUICK)  # exists: kept
    finally:
        engine.dispose()
    assert drop_slot(postgres.url, slot, QUICK) is False  # it went with its session


def test_a_user_without_replication_is_told_to_get_it(postgres: PostgresServer, sql: Execute) -> None:
    role, password = unique("feed_user"), "pw-feed"
    sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    url = (
        sa.make_url(postgres.url).set(username=role, password=password).render_as_string(hide_password=False)
    )
    try:
        with pytest.raises(LogicalDecodingUnavailable, match=rf"ALTER ROLE {role} REPLICATION"):
            create_slot(url, unique("vo_test"), QUICK)
    finally:
        sql(f"DROP ROLE {role}")


# -- a server of its own: settings that only change with a restart -------------------------------


class SmallServer:
    """A throwaway PostgreSQL (initdb and start take about a second) whose settings a test picks."""

    def __init__(self) -> None:
        self.bin_dir = _postgres_bin()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.base = Path(tempfile.mkdtemp(prefix="vo-postgres-feed-"))
        if self.as_postgres:
            shutil.chown(self.base, "postgres")
        self.data, self.port = self.base / "data", free_port()
        self.url = f"postgresql+psycopg://vo@127.0.0.1:{self.port}/postgres"
        self.pg("initdb", "-D", str(self.data), "-U", "vo", "--auth=trust", "--encoding=UTF8")
        self.running = False

    def pg(self, program: str, *arguments: str) -> None:
        command = [*self.as_postgres, str(self.bin_dir / program), *arguments]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self, *settings: str) -> None:
        self.stop()
        options = " ".join([f"-h 127.0.0.1 -p {self.port} -k {self.base} -c fsync=off", *settings])
        log = str(self.base / "server.log")
        self.pg("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", "start")
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.running = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def small_server() -> Iterator[SmallServer]:
    server = SmallServer()
    try:
        yield server
    finally:
        server.remove()


def test_a_server_without_logical_decoding_or_free_slots_says_what_to_change(
    small_server: SmallServer,
) -> None:
    small_server.start("-c wal_level=replica")
    with pytest.raises(LogicalDecodingUnavailable) as refused:
        create_slot(small_server.url, "vo_one", QUICK)
    assert "wal_level = replica" in str(refused.value)
    assert "set wal_level = logical in postgresql.conf" in str(refused.value)
    small_server.start("-c wal_level=logical", "-c max_replication_slots=1")
    create_slot(small_server.url, "vo_one", QUICK)
    with pytest.raises(LogicalDecodingUnavailable, match=r"raise max_replication_slots in postgresql\.conf"):
        create_slot(small_server.url, "vo_two", QUICK)
    assert drop_slot(small_server.url, "vo_one", QUICK) is True
    small_server.start("-c wal_level=logical", "-c max_replication_slots=0")
    with pytest.raises(LogicalDecodingUnavailable, match="max_replication_slots = 0"):
        create_slot(small_server.url, "vo_one", QUICK)

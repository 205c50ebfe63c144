"""The sync's reads of a real SQLite and a real PostgreSQL table: the change watermark exactly as
the database holds it (SQLite's text timestamps never re-formatted), changed rows by keyset
pages that neither skip nor repeat rows sharing a change value, soft deletes flagged, every row
for a full check, rows by key in chunks, and the backfill leaving soft-deleted rows out."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from worker_support import PostgresServer

from vector_operator.contract.assignment import KeyRange
from vector_operator.contract.sync import Watermark
from vector_operator.sources import SourceMisconfigured
from vector_operator.sources.sql_changes import ChangedRow, SqlChangeSource, change_watermark
from vector_operator.sources.sql_engine import Timeouts
from vector_operator.sources.sql_pages import SqlTableSource

STAMPS = ["2024-01-01 10:00:00", "2024-01-01 10:00:00", "2024-01-01 10:00:00", "2024-01-02 08:30:00.5"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """notes(id, body, stars, updated_at TIMESTAMP stored as text, deleted_at): 10 rows, the change
    values shared by several rows; row 4 soft-deleted."""
    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, stars INTEGER, updated_at TIMESTAMP,"
            " deleted_at TEXT)"
        )
        connection.executemany(
            "INSERT INTO notes VALUES (?, ?, ?, ?, ?)",
            [(key, f"body {key} " + "x" * key, key % 3, STAMPS[key % 4], None) for key in range(10)],
        )
        connection.execute("UPDATE notes SET deleted_at = 'yes' WHERE id = 4")
    return f"sqlite:///{path}"


def changes(url: str, **options: object) -> SqlChangeSource:
    settings: dict[str, object] = {
        "table": "notes",
        "primary_key": "id",
        "text_columns": ["body"],
        "fields": {"stars": "stars", "origin": "'notes'"},
        "change_column": "updated_at",
        "soft_delete_column": "deleted_at",
        "page_size": 2,
    }
    settings.update(options)
    return SqlChangeSource(url, **settings)  # type: ignore[arg-type]


def keys(rows: list[ChangedRow]) -> list[object]:
    return [row.row.key for row in rows]


def test_the_watermark_is_the_change_columns_largest_value_as_stored(sqlite_url: str) -> None:
    watermark = change_watermark(sqlite_url, "notes", "updated_at", Timeouts())
    assert watermark == Watermark(kind="text", value="2024-01-02 08:30:00.5")
    assert change_watermark(sqlite_url, "notes", "stars", Timeouts()) == Watermark(kind="integer", value="2")
    with pytest.raises(SourceMisconfigured, match="table notes has no column version"):
        change_watermark(sqlite_url, "notes", "version", Timeouts())


def test_changed_rows_come_in_change_and_key_order_from_the_watermark_on(sqlite_url: str) -> None:
    source = changes(sqlite_url)
    try:
        pages = list(source.changed_pages(None))
        rows = [row for page in pages for row in page]
        assert max(len(page) for page in pages) == 2
        assert keys(rows) == [0, 1, 2, 4, 5, 6, 8, 9, 3, 7]  # ties on the change value: by key
        assert [row.change_value for row in rows[:2]] == ["2024-01-01 10:00:00"] * 2
        assert [row.deleted for row in rows].count(True) == 1
        assert next(row for row in rows if row.row.key == 4).deleted
        assert rows[0].row.field_values == {"stars": 0, "origin": "notes"}

        since = Watermark(kind="text", value="2024-01-01 10:00:00")  # at or past: the equal ones too
        assert keys([row for page in source.changed_pages(since) for row in page]) == keys(rows)
        latest = Watermark(kind="text", value="2024-01-02 08:30:00.5")
        assert keys([row for page in source.changed_pages(latest) for row in page]) == [3, 7]
    finally:
        source.close()


def test_a_full_check_reads_every_row_in_key_order_and_rows_by_key_in_chunks(sqlite_url: str) -> None:
    source = changes(sqlite_url, change_column=None, max_text_chars=10, keys_per_lookup=3)
    try:
        rows = [row for page in source.all_pages() for row in page]
        assert keys(rows) == list(range(10))
        assert [row.row.key for row in rows if row.deleted] == [4]
        assert rows[9].row.text_values == {"body": "body 9 xxx"}  # cut in the database
        found = source.rows_by_keys([9, 2, 42, "7", "not-a-key", 4, 0])
        assert sorted(keys(found)) == [0, 2, 4, 7, 9]  # 42 and "not-a-key" are not there
        assert [row.row.key for row in found if row.deleted] == [4]
    finally:
        source.close()


def test_the_backfill_leaves_soft_deleted_rows_out(sqlite_url: str) -> None:
    source = SqlTableSource(
        sqlite_url, table="notes", primary_key="id", text_columns=["body"], fields={},
        key_range=KeyRange(), page_size=3, soft_delete_column="deleted_at",
    )  # fmt: skip
    try:
        assert [row.key for page in source.pages() for row in page] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    finally:
        source.close()
    missing = SqlTableSource(
        sqlite_url, table="notes", primary_key="id", text_columns=["body"], fields={},
        key_range=KeyRange(), soft_delete_column="removed_at",
    )  # fmt: skip
    with pytest.raises(SourceMisconfigured, match="table notes has no column removed_at"):
        list(missing.pages())


def test_a_timestamp_watermark_on_postgresql_binds_back_as_a_timestamp(postgres: PostgresServer) -> None:
    engine = sa.create_engine(postgres.url)
    base = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS sync_stamps"))
        connection.execute(
            sa.text("CREATE TABLE sync_stamps (id bigint PRIMARY KEY, body text, at timestamptz)")
        )
    try:
        assert change_watermark(postgres.url, "sync_stamps", "at", Timeouts()) is None  # empty
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO sync_stamps VALUES (:id, 'b', :at)"),
                [{"id": key, "at": base + datetime.timedelta(microseconds=key // 2)} for key in range(7)],
            )
        watermark = change_watermark(postgres.url, "sync_stamps", "at", Timeouts())
        assert watermark is not None
        assert watermark.kind == "timestamp"
        assert watermark.python() == base + datetime.timedelta(microseconds=3)
        source = SqlChangeSource(
            postgres.url, table="sync_stamps", primary_key="id", text_columns=["body"], fields={},
            change_column="at", page_size=1,
        )  # fmt: skip
        try:
            since = Watermark.of(base + datetime.timedelta(microseconds=2))
            rows = [row for page in source.changed_pages(since) for row in page]
            assert keys(rows) == [4, 5, 6]
            assert Watermark.of(rows[-1].change_value) == watermark
        finally:
            source.close()
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS sync_stamps"))
        engine.dispose()

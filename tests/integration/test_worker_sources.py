"""The worker's sources against real databases and real files: every row of the key range exactly
once, in order, whatever the page size; memory held to one page."""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from worker_support import PostgresServer

from vector_operator.api.migrationplan import FileFormat
from vector_operator.contract.assignment import KeyRange
from vector_operator.sources import SourceMisconfigured, SourceUnavailable
from vector_operator.sources.files import FileRecordsSource
from vector_operator.sources.records import UndecodableText
from vector_operator.sources.sql_pages import SqlTableSource


def read_all(source: SqlTableSource | FileRecordsSource) -> tuple[list[object], int]:
    keys, largest_page = [], 0
    try:
        for page in source.pages():
            largest_page = max(largest_page, len(page))
            keys += [row.key for row in page]
    finally:
        source.close()
    return keys, largest_page


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    path = tmp_path / "source.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, slug TEXT UNIQUE, body TEXT, stars INTEGER)"
        )
        connection.executemany(
            "INSERT INTO notes VALUES (?, ?, ?, ?)",
            [(key, f"note-{key:04d}", f"body {key}", key % 5) for key in range(0, 1000, 3)],
        )
        connection.execute("INSERT INTO notes VALUES (5000, 'broken', CAST(X'62616400ff' AS TEXT), 1)")
    return f"sqlite:///{path}"


def sql_source(url: str, table: str = "notes", key: str = "id", **changes: object) -> SqlTableSource:
    options: dict[str, object] = {
        "table": table,
        "primary_key": key,
        "text_columns": ["body"],
        "fields": {"stars": "stars", "source": "'notes'"},
        "key_range": KeyRange(start=100, end=700),
        "page_size": 7,
    }
    options.update(changes)
    return SqlTableSource(url, **options)  # type: ignore[arg-type]


def test_sqlite_keyset_pages_cover_the_range_exactly_once(sqlite_url: str) -> None:
    keys, largest_page = read_all(sql_source(sqlite_url))
    assert keys == list(range(102, 700, 3))
    assert largest_page == 7


def test_sqlite_string_keys_and_open_bounds(sqlite_url: str) -> None:
    source = sql_source(sqlite_url, key="slug", key_range=KeyRange(start="note-0500"))
    keys, _ = read_all(source)
    assert keys == [f"note-{key:04d}" for key in range(501, 1000, 3)]


def test_sqlite_fields_are_columns_or_constants(sqlite_url: str) -> None:
    source = sql_source(sqlite_url, key_range=KeyRange(start=300, end=304))
    rows = [row for page in source.pages() for row in page]
    assert [(row.key, row.text_values, row.field_values) for row in rows] == [
        (300, {"body": "body 300"}, {"stars": 0, "source": "notes"}),
        (303, {"body": "body 303"}, {"stars": 3, "source": "notes"}),
    ]


def test_sqlite_text_that_is_not_utf8_arrives_marked_not_raised(sqlite_url: str) -> None:
    rows = [row for page in sql_source(sqlite_url, key_range=KeyRange(start=5000)).pages() for row in page]
    assert rows[0].text_values == {"body": UndecodableText(b"bad\x00\xff")}


def test_a_missing_table_or_column_says_what_exists(sqlite_url: str) -> None:
    with pytest.raises(SourceMisconfigured, match="table nodes does not exist"):
        read_all(sql_source(sqlite_url, table="nodes"))
    with pytest.raises(
        SourceMisconfigured, match="has no column title; its columns are body, id, slug, stars"
    ):
        read_all(sql_source(sqlite_url, text_columns=["title"]))


def test_postgres_keyset_pages_cover_the_range_exactly_once(postgres: PostgresServer) -> None:
    engine = sa.create_engine(postgres.url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS pages_probe"))
        connection.execute(
            sa.text("CREATE TABLE pages_probe (id bigint PRIMARY KEY, slug text UNIQUE, body text)")
        )
        connection.execute(
            sa.text(
                "INSERT INTO pages_probe SELECT g, 'k' || lpad(g::text, 5, '0'), 'body ' || g"
                " FROM generate_series(1, 2000) g"
            )
        )
    engine.dispose()
    keys, largest_page = read_all(
        sql_source(
            postgres.url,
            table="public.pages_probe",
            fields={},
            key_range=KeyRange(start=10, end=1990),
            page_size=64,
        )
    )
    assert keys == list(range(10, 1990))
    assert largest_page == 64
    keys, _ = read_all(
        sql_source(
            postgres.url,
            table="pages_probe",
            key="slug",
            fields={},
            key_range=KeyRange(start="k01000", end="k01010"),
        )
    )
    assert keys == [f"k{key:05d}" for key in range(1000, 1010)]


def test_postgres_that_cannot_be_reached_is_unavailable_and_keeps_the_password(
    postgres: PostgresServer,
) -> None:
    unreachable = postgres.url.replace(f":{postgres.port}/", ":1/")
    with pytest.raises(SourceUnavailable) as raised:
        read_all(sql_source(unreachable, fields={}))
    assert postgres.password not in str(raised.value)


# -- files -------------------------------------------------------------------------------------


def write_jsonl(path: Path, first: int, count: int) -> None:
    with path.open("wb") as out:
        for key in range(first, first + count):
            body = b"caf\xe9 latin-1" if key == first + 1 else json.dumps(f"text {key}").encode()[1:-1]
            out.write(b'{"id": %d, "body": "%s", "lang": "en"}\n' % (key, body))


def files_source(path: Path | str, file_format: FileFormat, key_range: KeyRange) -> FileRecordsSource:
    return FileRecordsSource(
        file_format=file_format,
        path=str(path),
        id_field="id",
        text_fields=["body"],
        fields={"language": "lang"},
        key_range=key_range,
    )


def test_jsonl_record_numbers_run_across_the_files_of_a_glob(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "part-0.jsonl", 0, 30)
    write_jsonl(tmp_path / "part-1.jsonl", 30, 30)
    source = files_source(tmp_path / "part-*.jsonl", FileFormat.JSONL, KeyRange(start=25, end=40))
    rows = [row for page in source.pages() for row in page]
    assert [row.key for row in rows] == list(range(25, 40))
    assert rows[0].text_values == {"body": b"text 25"}
    assert rows[0].field_values == {"language": "en"}
    assert next(row for row in rows if row.key == 31).text_values == {"body": b"caf\xe9 latin-1"}


def test_parquet_skips_row_groups_outside_the_range(tmp_path: Path) -> None:
    table = pa.table(
        {"id": list(range(1000)), "body": [f"text {k}" for k in range(1000)], "lang": ["de"] * 1000}
    )
    pq.write_table(table, tmp_path / "records.parquet", row_group_size=100)
    keys, _ = read_all(
        files_source(tmp_path / "records.parquet", FileFormat.PARQUET, KeyRange(start=250, end=420))
    )
    assert keys == list(range(250, 420))


def test_csv_reads_the_range(tmp_path: Path) -> None:
    lines = ["id,body,lang"] + [f"k{key},text {key},fr" for key in range(50)]
    (tmp_path / "records.csv").write_text("\n".join(lines) + "\n")
    source = files_source(tmp_path / "records.csv", FileFormat.CSV, KeyRange(start=45))
    rows = [row for page in source.pages() for row in page]
    assert [row.key for row in rows] == [f"k{key}" for key in range(45, 50)]
    assert rows[0].field_values == {"language": "fr"}


def test_no_matching_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceMisconfigured, match=r"no file matches .*missing-\*\.jsonl in the worker"):
        read_all(files_source(tmp_path / "missing-*.jsonl", FileFormat.JSONL, KeyRange()))


def test_reading_a_large_range_holds_one_page_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "large.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, body TEXT)")
        connection.executemany("INSERT INTO big VALUES (?, ?)", ((key, "x" * 200) for key in range(200_000)))
    source = SqlTableSource(
        f"sqlite:///{path}",
        table="big",
        primary_key="id",
        text_columns=["body"],
        fields={},
        key_range=KeyRange(),
    )
    tracemalloc.start()
    rows = 0
    try:
        for page in source.pages():
            rows += len(page)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        source.close()
    assert rows == 200_000  # about 50 MB of text in all
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB"

"""The sync worker (`vector-operator sync`) against real sources (SQLite, PostgreSQL), the real
Milvus Lite server and the real model: passes run in this process one at a time
(:meth:`SyncLoop.run_pass`), after a backfill by the batch worker, on collections created as the
operator creates them (with the nullable content_hash field). One model load for the module."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from pymilvus import DataType, MilvusClient
from worker_support import DIMENSION, MODEL, PostgresServer, article_texts, entity_count, sql_assignment

from localcluster.milvus_lite import MilvusLiteServer
from vector_operator.api.vectorcollection import EmbeddingSpec
from vector_operator.contract.assignment import WorkerAssignment
from vector_operator.contract.content_hash import CONTENT_HASH_FIELD, content_hash, model_fingerprint
from vector_operator.contract.sync import SYNC_STATE_PROPERTY, SyncAssignment, SyncState, Watermark
from vector_operator.sources.pg_logical import create_slot, drop_slot
from vector_operator.sources.sql_changes import change_watermark
from vector_operator.sources.sql_engine import Timeouts
from vector_operator.worker.batch_run import BatchRun
from vector_operator.worker.embedding_model import EmbeddingModel, load_embedding_model
from vector_operator.worker.milvus_collection import CollectionMismatch, key_literal
from vector_operator.worker.model_loading import ModelNotAvailable
from vector_operator.worker.pass_accounting import PassOutcome
from vector_operator.worker.redaction import Redactor, secret_values_of
from vector_operator.worker.sync_loop import SyncLoop, record_startup_failure

pytestmark = pytest.mark.milvus

URL_ENV = "SOURCE_DATABASE_URL"
ROWS = 20
FIELDS = {"category": "category", "score": "score"}
SCALAR_FIELDS = [
    {"name": "category", "type": "VARCHAR", "maxLength": 16},
    {"name": "score", "type": "FLOAT"},
]
FINGERPRINT = model_fingerprint(EmbeddingSpec(model=MODEL))
VECTOR_OPERATOR = str(Path(sys.executable).with_name("vector-operator"))


@pytest.fixture(scope="module")
def model() -> EmbeddingModel:
    return load_embedding_model(EmbeddingSpec(model=MODEL))


# -- collections as the operator creates them ----------------------------------------------------

NewSyncCollection = Callable[..., str]


@pytest.fixture
def operator_collection(
    milvus_client: MilvusClient, request: pytest.FixtureRequest
) -> Iterator[NewSyncCollection]:
    """A physical collection with the operator's schema: id, vector, a nullable content_hash and
    nullable scalar fields category (VARCHAR 16) and score (FLOAT)."""
    created: list[str] = []

    def create(*, key_type: str = "INT64") -> str:
        name = f"sync_{len(created)}_{abs(hash(request.node.name)) % 10**8}__v1"
        if milvus_client.has_collection(name):
            milvus_client.drop_collection(name)
        schema = milvus_client.create_schema(auto_id=False, enable_dynamic_field=False)
        if key_type == "VARCHAR":
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        else:
            schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIMENSION)
        schema.add_field(CONTENT_HASH_FIELD, DataType.INT64, nullable=True)
        schema.add_field("category", DataType.VARCHAR, max_length=16, nullable=True)
        schema.add_field("score", DataType.FLOAT, nullable=True)
        index = milvus_client.prepare_index_params()
        index.add_index(field_name="vector", index_type="HNSW", metric_type="COSINE",
                        params={"M": 16, "efConstruction": 100})  # fmt: skip
        milvus_client.create_collection(name, schema=schema, index_params=index)
        created.append(name)
        return name

    yield create
    for name in created:
        milvus_client.drop_collection(name)


# -- assignments ---------------------------------------------------------------------------------


def backfill_document(
    milvus_server: MilvusLiteServer, collection: str, table: str, *, key_type: str = "INT64"
) -> dict[str, Any]:
    document = sql_assignment(
        milvus_uri=milvus_server.uri,
        collection=collection,
        table=table,
        fields=FIELDS,
        scalar_fields=SCALAR_FIELDS,
        quality={"sampleSize": 5},
    )
    document["source"]["sql"]["softDeleteColumn"] = "deleted_at"
    if key_type == "VARCHAR":
        document["collection"]["primaryKey"] = {"type": "VARCHAR", "maxLength": 64}
    return document


def sync_document(
    milvus_server: MilvusLiteServer,
    collection: str,
    table: str,
    *,
    plan_uid: str = "plan-uid-1",
    key_type: str = "INT64",
    **settings: Any,
) -> dict[str, Any]:
    backfill = backfill_document(milvus_server, collection, table, key_type=key_type)
    return {
        "version": 1,
        "plan": {"namespace": "tests", "name": "sync-it", "uid": plan_uid},
        "milvus": backfill["milvus"],
        "collection": backfill["collection"],
        "source": backfill["source"]["sql"],
        "model": {"model": MODEL},
        "sync": {"continuous": True, "intervalS": 1, "softDeleteColumn": "deleted_at", **settings},
    }


def backfill(document: dict[str, Any], url: str, model: EmbeddingModel) -> dict[str, Any]:
    result = BatchRun(WorkerAssignment.model_validate(document), {URL_ENV: url}, model=model).execute()
    assert result.status == "Succeeded", result.message
    return result.records.model_dump()


def sync_loop(document: dict[str, Any], url: str, model: EmbeddingModel) -> SyncLoop:
    return SyncLoop(SyncAssignment.model_validate(document), {URL_ENV: url}, model=model)


def run_pass(document: dict[str, Any], url: str, model: EmbeddingModel) -> PassOutcome:
    loop = sync_loop(document, url, model)
    try:
        return loop.run_pass()
    finally:
        loop.close()


def counts(outcome: PassOutcome) -> dict[str, int]:
    c = outcome.counts
    return {
        "changes": c.changes_applied, "deletes": c.deletes_applied, "reembedded": c.reembedded,
        "reused": c.reused, "skipped": c.skipped,
    }  # fmt: skip


NOTHING = {"changes": 0, "deletes": 0, "reembedded": 0, "reused": 0, "skipped": 0}


# -- Milvus reads ----------------------------------------------------------------------------------


def stored_state(client: MilvusClient, collection: str) -> SyncState:
    properties = client.describe_collection(collection).get("properties") or {}
    state = SyncState.from_property(properties.get(SYNC_STATE_PROPERTY))
    assert state is not None, properties
    return state


def entities(client: MilvusClient, collection: str, keys: list[Any]) -> dict[Any, dict[str, Any]]:
    """The entities of ``keys`` that exist (pymilvus's get(ids=...) cannot name a key holding a
    backslash)."""
    expression = f"id in [{','.join(key_literal(key) for key in keys)}]"
    rows = client.query(collection, filter=expression, output_fields=["*"], consistency_level="Strong")
    return {row["id"]: row for row in rows}


def vector(row: dict[str, Any]) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.asarray(row["vector"], dtype=np.float32)


def cosine(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# -- SQLite --------------------------------------------------------------------------------------


SQLITE_TABLE = (
    "CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT, category TEXT, score REAL,"
    " version INTEGER NOT NULL DEFAULT 1, deleted_at TEXT)"
)


@pytest.fixture
def sqlite_articles(tmp_path: Path) -> tuple[str, Callable[..., None]]:
    """articles(id 0..19, version 1, row 5 soft-deleted); returns its URL and a statement runner."""
    path = tmp_path / "articles.db"
    texts = article_texts(ROWS, seed=3)
    with sqlite3.connect(path) as connection:
        connection.execute(SQLITE_TABLE)
        connection.executemany(
            "INSERT INTO articles (id, title, body, category, score) VALUES (?, ?, ?, ?, ?)",
            [
                (key, f"Article {key}", texts[key], ("news", "science")[key % 2], key / 10)
                for key in range(ROWS)
            ],
        )
        connection.execute("UPDATE articles SET deleted_at = '2024-01-01' WHERE id = 5")

    def execute(statement: str, *parameters: Any) -> None:
        with sqlite3.connect(path) as connection:
            connection.execute(statement, parameters)

    return f"sqlite:///{path}", execute


def test_the_backfill_writes_content_hashes_and_skips_soft_deleted_rows(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    operator_collection: NewSyncCollection,
    sqlite_articles: tuple[str, Callable[..., None]],
    model: EmbeddingModel,
) -> None:
    url, _ = sqlite_articles
    collection = operator_collection()
    records = backfill(backfill_document(milvus_server, collection, "articles"), url, model)
    assert (records["read"], records["upserted"]) == (ROWS - 1, ROWS - 1)
    assert entity_count(milvus_client, collection) == ROWS - 1
    stored = entities(milvus_client, collection, [3, 5])
    assert 5 not in stored
    text = f"Article 3\n{article_texts(ROWS, seed=3)[3]}"
    assert stored[3][CONTENT_HASH_FIELD] == content_hash(text, FINGERPRINT)
    assert stored[3]["score"] == pytest.approx(0.3)


def test_a_catch_up_applies_inserts_updates_and_soft_deletes_from_the_initial_watermark(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    operator_collection: NewSyncCollection,
    sqlite_articles: tuple[str, Callable[..., None]],
    model: EmbeddingModel,
) -> None:
    url, execute = sqlite_articles
    collection = operator_collection()
    backfill(backfill_document(milvus_server, collection, "articles"), url, model)
    initial = change_watermark(url, "articles", "version", Timeouts())
    assert initial == Watermark(kind="integer", value="1")
    before = entities(milvus_client, collection, [1, 2, 3])

    new_text = "The harbour opened a quiet reading room for the night train's passengers."
    execute(
        "INSERT INTO articles (id, title, body, category, score, version)"
        " VALUES (100, 'New', ?, 'news', 1.5, 2)",
        new_text,
    )
    execute("UPDATE articles SET body = ?, version = 2 WHERE id = 1", new_text)  # text: re-embedded
    execute("UPDATE articles SET category = 'culture', version = 2 WHERE id = 2")  # fields only: reused
    execute("UPDATE articles SET version = 2 WHERE id = 3")  # touched, unchanged: a no-op
    execute("UPDATE articles SET deleted_at = '2024-02-02', version = 2 WHERE id = 4")  # soft delete
    execute("UPDATE articles SET title = NULL, body = NULL, version = 2 WHERE id = 6")  # now skipped: leaves

    document = sync_document(
        milvus_server, collection, "articles", changeColumn="version", initialWatermark=initial.model_dump()
    )
    loop = sync_loop(document, url, model)
    try:
        first = loop.run_pass()
        assert counts(first) == {"changes": 3, "deletes": 2, "reembedded": 2, "reused": 1, "skipped": 1}
        assert first.watermark == Watermark(kind="integer", value="2")
        assert first.coherence is not None  # the two re-embedded rows, read back and encoded again
        assert first.coherence[1] >= 0.999
        second = loop.run_pass()  # the rows at the watermark are read again: all no-ops
        assert counts(second) == NOTHING
        assert second.coherence is None  # nothing re-embedded: nothing sampled
    finally:
        loop.close()

    assert entity_count(milvus_client, collection) == ROWS - 1 + 1 - 2
    after = entities(milvus_client, collection, [1, 2, 3, 4, 6, 100])
    assert {4, 6}.isdisjoint(after)
    assert cosine(vector(after[1]), model.encode([f"Article 1\n{new_text}"])[0]) > 0.999
    assert cosine(vector(after[1]), vector(before[1])) < 0.99
    assert after[2]["category"] == "culture"
    assert np.array_equal(vector(after[2]), vector(before[2]))
    assert after[3] == before[3]
    assert after[100][CONTENT_HASH_FIELD] == content_hash(f"New\n{new_text}", FINGERPRINT)

    state = stored_state(milvus_client, collection)
    assert (state.plan_uid, state.passes, state.watermark) == (
        "plan-uid-1",
        2,
        Watermark(kind="integer", value="2"),
    )
    assert (state.changes_applied, state.deletes_applied, state.reembedded, state.reused, state.skipped) == (
        3, 2, 2, 1, 1,
    )  # fmt: skip
    assert state.synced_through is not None
    assert state.last_error is None
    assert state.full_check_at is None  # a change column and no fullCheckInterval: no full check
    assert state.coherence is not None  # the last pass that re-embedded rows; kept by no-op passes
    assert state.coherence >= 0.999

    # A new worker resumes from the state; a pass lost before its state was written is applied
    # again from the plan's initial watermark and changes nothing.
    resumed = run_pass(document, url, model)
    assert counts(resumed) == NOTHING
    assert stored_state(milvus_client, collection).passes == 3
    lost = run_pass({**document, "plan": {**document["plan"], "uid": "plan-uid-2"}}, url, model)
    assert counts(lost) == {**NOTHING, "skipped": 1}  # row 6, past the initial watermark
    assert lost.watermark == Watermark(kind="integer", value="2")
    assert entities(milvus_client, collection, [1, 2, 3]) == {key: after[key] for key in (1, 2, 3)}
    restarted = stored_state(milvus_client, collection)
    assert (restarted.plan_uid, restarted.passes, restarted.changes_applied) == ("plan-uid-2", 1, 0)


def test_a_full_check_deletes_hard_deleted_rows_only_with_delete_unknown_keys(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    operator_collection: NewSyncCollection,
    sqlite_articles: tuple[str, Callable[..., None]],
    model: EmbeddingModel,
) -> None:
    url, execute = sqlite_articles
    collection = operator_collection()
    backfill(backfill_document(milvus_server, collection, "articles"), url, model)
    execute("DELETE FROM articles WHERE id IN (7, 8)")
    execute("UPDATE articles SET body = 'A rare orchid was found near the old bridge.' WHERE id = 9")
    execute("UPDATE articles SET deleted_at = '2024-03-03' WHERE id = 10")
    execute("UPDATE articles SET score = 0.25 WHERE id = 11")
    stray = entities(milvus_client, collection, [12])[12]
    milvus_client.upsert(collection, [{**stray, "id": 999}])  # a key the source never had

    kept = sync_document(milvus_server, collection, "articles")  # no change column: each pass a full check
    first = run_pass(kept, url, model)
    assert counts(first) == {"changes": 2, "deletes": 1, "reembedded": 1, "reused": 1, "skipped": 0}
    assert first.full_check_at is not None
    assert set(entities(milvus_client, collection, [7, 8, 10, 999])) == {7, 8, 999}
    assert entities(milvus_client, collection, [11])[11]["score"] == pytest.approx(0.25)

    deleting = sync_document(milvus_server, collection, "articles", deleteUnknownKeys=True)
    second = run_pass(deleting, url, model)
    assert counts(second) == {**NOTHING, "deletes": 3}
    assert entities(milvus_client, collection, [7, 8, 999]) == {}
    assert entity_count(milvus_client, collection) == ROWS - 1 - 3
    state = stored_state(milvus_client, collection)
    assert (state.passes, state.deletes_applied, state.changes_applied) == (2, 4, 2)
    assert state.full_check_at is not None

    assert counts(run_pass(deleting, url, model)) == NOTHING


def test_a_failing_pass_is_recorded_in_the_state_and_cleared_by_the_next(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    operator_collection: NewSyncCollection,
    sqlite_articles: tuple[str, Callable[..., None]],
    model: EmbeddingModel,
) -> None:
    url, _ = sqlite_articles
    collection = operator_collection()
    document = sync_document(milvus_server, collection, "articles", changeColumn="no_such_column")
    loop = sync_loop(document, url, model)
    try:
        with pytest.raises(Exception, match="has no column no_such_column") as failure:
            loop.run_pass()
        loop.record_failure(failure.value)
    finally:
        loop.close()
    state = stored_state(milvus_client, collection)
    assert state.last_error_reason == "SourceMisconfigured"
    assert state.last_error is not None
    assert "no_such_column" in state.last_error
    assert state.passes == 0

    mismatched = sync_document(milvus_server, collection, "articles", changeColumn="version")
    mismatched["collection"] = {**mismatched["collection"], "scalarFields": [
        {"name": "category", "type": "INT64"}, SCALAR_FIELDS[1],
    ]}  # fmt: skip
    loop = sync_loop(mismatched, url, model)
    try:
        with pytest.raises(CollectionMismatch, match="field category is VARCHAR, not INT64") as mismatch:
            loop.run_pass()
        loop.record_failure(mismatch.value)
    finally:
        loop.close()
    assert stored_state(milvus_client, collection).last_error_reason == "CollectionMismatch"

    fixed = sync_document(milvus_server, collection, "articles", changeColumn="version")
    outcome = run_pass(fixed, url, model)
    assert outcome.counts.changes_applied == ROWS - 1  # from no watermark: every row, embedded
    state = stored_state(milvus_client, collection)
    assert (state.last_error, state.last_error_reason, state.passes) == (None, None, 1)


def test_a_worker_that_cannot_start_says_why_in_the_state(
    milvus_server: MilvusLiteServer, milvus_client: MilvusClient, operator_collection: NewSyncCollection
) -> None:
    collection = operator_collection()
    assignment = SyncAssignment.model_validate(sync_document(milvus_server, collection, "articles"))
    missing = ModelNotAvailable("model 'BAAI/bge-small-en-v1.5' is not available offline")
    record_startup_failure(assignment, {}, missing, str)
    state = stored_state(milvus_client, collection)
    assert (state.last_error_reason, state.last_error, state.passes) == ("ModelNotAvailable", str(missing), 0)


def test_the_loop_retries_a_failing_pass_with_back_off_and_stops_promptly(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    operator_collection: NewSyncCollection,
    postgres: PostgresServer,
    model: EmbeddingModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    collection = operator_collection()
    unreachable = postgres.url.replace(f":{postgres.port}/", ":1/")
    assignment = SyncAssignment.model_validate(
        sync_document(milvus_server, collection, "articles", changeColumn="version", intervalS=0.2)
    )
    environ = {URL_ENV: unreachable}
    stop = threading.Event()
    loop = SyncLoop(
        assignment, environ, model=model, stop=stop, redact=Redactor(secret_values_of([URL_ENV], environ))
    )
    runner = threading.Thread(target=loop.run)
    with caplog.at_level(logging.WARNING, logger="vector_operator"):
        runner.start()
        time.sleep(2.5)  # failures at about 0 s, 1 s and 2.2 s: 1 s, then at most 6 intervals (1.2 s)
        stop.set()
        runner.join(5)
    assert not runner.is_alive()
    loop.close()
    failures = [
        record for record in caplog.records if "sync pass failed (SourceUnavailable)" in record.message
    ]
    assert 2 <= len(failures) <= 6
    state = stored_state(milvus_client, collection)
    assert (state.last_error_reason, state.passes) == ("SourceUnavailable", 0)
    assert state.last_error is not None
    assert "127.0.0.1" in state.last_error
    assert postgres.password not in state.last_error + caplog.text


# -- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture
def pg_articles(
    postgres: PostgresServer, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Callable[..., None]]]:
    """public.<table>(id text, updated_at timestamptz, ...) with text keys, one of them holding a
    quote and a backslash; returns the table and a statement runner (one transaction per call)."""
    table = f"sync_{abs(hash(request.node.name)) % 10**6}"
    engine = sa.create_engine(postgres.url)
    texts = article_texts(ROWS, seed=9)

    def execute(statement: str, **parameters: Any) -> None:
        with engine.begin() as connection:
            connection.execute(sa.text(statement), parameters)

    execute(f"DROP TABLE IF EXISTS {table}")
    execute(
        f"CREATE TABLE {table} (id text PRIMARY KEY, title text, body text, category text, score real,"
        " updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)"
    )
    for key in range(ROWS):
        execute(
            f"INSERT INTO {table} (id, title, body, category, score, updated_at)"
            " VALUES (:id, :title, :body, 'news', 0.5, now() - interval '1 hour')",
            id=f"doc-{key}" if key else 'doc-"q\\', title=f"Story {key}", body=texts[key],
        )  # fmt: skip
    try:
        yield table, execute
    finally:
        execute(f"DROP TABLE IF EXISTS {table}")
        engine.dispose()


def test_a_timestamp_change_column_on_postgresql(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    operator_collection: NewSyncCollection,
    postgres: PostgresServer,
    pg_articles: tuple[str, Callable[..., None]],
    model: EmbeddingModel,
) -> None:
    table, execute = pg_articles
    collection = operator_collection(key_type="VARCHAR")
    backfill(backfill_document(milvus_server, collection, table, key_type="VARCHAR"), postgres.url, model)
    assert entity_count(milvus_client, collection) == ROWS
    initial = change_watermark(postgres.url, table, "updated_at", Timeouts())
    assert initial is not None
    assert initial.kind == "timestamp"

    execute(
        f"UPDATE {table} SET body = 'The city council repaired the broken water main.', updated_at = now()"
        " WHERE id = 'doc-3'"
    )
    execute(f"INSERT INTO {table} (id, title, body, category, score) VALUES ('doc-new', 'New', 'A bright new"
            " comet was recorded by the weather service.', 'science', 0.75)")  # fmt: skip
    execute(f"UPDATE {table} SET deleted_at = now(), updated_at = now() WHERE id = 'doc-4'")
    execute(f"DELETE FROM {table} WHERE id = 'doc-\"q\\'")  # a hard delete: only a full check sees it

    document = sync_document(
        milvus_server, collection, table, key_type="VARCHAR", changeColumn="updated_at",
        initialWatermark=initial.model_dump(), fullCheckIntervalS=3600, deleteUnknownKeys=True,
    )  # fmt: skip
    loop = sync_loop(document, postgres.url, model)
    try:
        first = loop.run_pass()  # the changes, then the first full check (none ran yet)
        assert counts(first) == {"changes": 2, "deletes": 2, "reembedded": 2, "reused": 0, "skipped": 0}
        assert first.full_check_at is not None
        assert first.watermark is not None
        assert first.watermark.kind == "timestamp"
        assert first.watermark.python() > initial.python()  # type: ignore[operator]
        second = loop.run_pass()  # no full check before the interval: only the rows at the watermark
        assert counts(second) == NOTHING
        assert second.full_check_at is None
    finally:
        loop.close()
    stored = entities(milvus_client, collection, ["doc-3", "doc-4", "doc-new", 'doc-"q\\'])
    assert set(stored) == {"doc-3", "doc-new"}
    assert stored["doc-new"]["score"] == pytest.approx(0.75)
    assert entity_count(milvus_client, collection) == ROWS - 1
    state = stored_state(milvus_client, collection)
    assert state.watermark == first.watermark
    assert state.full_check_at == first.full_check_at


def test_logical_decoding_applies_the_keys_the_slot_reports_and_confirms_them(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    operator_collection: NewSyncCollection,
    postgres: PostgresServer,
    pg_articles: tuple[str, Callable[..., None]],
    model: EmbeddingModel,
) -> None:
    table, execute = pg_articles
    slot = "vo_sync_worker_it"
    drop_slot(postgres.url, slot)
    create_slot(postgres.url, slot)
    try:
        collection = operator_collection(key_type="VARCHAR")
        backfill(backfill_document(milvus_server, collection, table, key_type="VARCHAR"), postgres.url, model)
        execute(f"UPDATE {table} SET category = 'culture' WHERE id = 'doc-2'")
        execute(f"DELETE FROM {table} WHERE id = 'doc-\"q\\'")
        execute(f"INSERT INTO {table} (id, title, body, category, score) VALUES ('doc-new', 'New',"
                " 'The orchestra visited the coastal wetlands.', 'news', 0.5)")  # fmt: skip
        execute(f"UPDATE {table} SET deleted_at = now() WHERE id = 'doc-7'")
        # Rows the backfill already holds, written while it ran: unchanged, so no-ops.
        execute(f"UPDATE {table} SET title = title WHERE id IN ('doc-8', 'doc-9')")

        document = sync_document(
            milvus_server, collection, table, key_type="VARCHAR", capture="LogicalDecoding", slot=slot
        )
        loop = sync_loop(document, postgres.url, model)
        try:
            first = loop.run_pass()
            assert counts(first) == {"changes": 2, "deletes": 2, "reembedded": 1, "reused": 1, "skipped": 0}
            assert first.watermark is not None
            assert first.watermark.kind == "lsn"
            assert first.full_check_at is None
            assert counts(loop.run_pass()) == NOTHING  # confirmed: the slot does not report them again
        finally:
            loop.close()
        stored = entities(milvus_client, collection, ["doc-2", "doc-7", "doc-new", 'doc-"q\\'])
        assert set(stored) == {"doc-2", "doc-new"}
        assert stored["doc-2"]["category"] == "culture"
        assert entity_count(milvus_client, collection) == ROWS - 1
    finally:
        drop_slot(postgres.url, slot)


# -- the command ---------------------------------------------------------------------------------


def test_the_command_syncs_until_sigterm_and_exits_promptly(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    operator_collection: NewSyncCollection,
    sqlite_articles: tuple[str, Callable[..., None]],
    tmp_path: Path,
) -> None:
    url, _ = sqlite_articles
    collection = operator_collection()
    health = tmp_path / "healthy"
    document = sync_document(milvus_server, collection, "articles", changeColumn="version")
    document["healthFile"] = str(health)
    environ = {**os.environ, "VO_SYNC_ASSIGNMENT": json.dumps(document), URL_ENV: url}
    process = subprocess.Popen(
        [VECTOR_OPERATOR, "sync"], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 180
        while not health.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no pass completed within 180 s"
            time.sleep(0.5)
        assert entity_count(milvus_client, collection) == ROWS - 1
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        _, stderr = process.communicate(timeout=30)
        assert time.monotonic() - signalled < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode in (0, 143), stderr
    assert "sync pass 1: 19 changes applied (19 re-embedded, 0 reused)" in stderr
    assert stored_state(milvus_client, collection).passes >= 1

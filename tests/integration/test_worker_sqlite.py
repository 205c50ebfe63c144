"""`vector-operator worker` from a real SQLite table into the real Milvus Lite server: exact
counts in Milvus, skipped records by reason, idempotent re-runs, coherence in both directions."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymilvus import MilvusClient
from worker_support import MODEL, article_texts, entity_count, sql_assignment

from localcluster.milvus_lite import MilvusLiteServer
from vector_operator.api.vectorcollection import EmbeddingSpec, MetricType
from vector_operator.contract.assignment import CollectionTarget, MilvusTarget
from vector_operator.worker.cpu_budget import available_cpus
from vector_operator.worker.embedding_model import load_embedding_model
from vector_operator.worker.milvus_collection import MilvusCollection
from vector_operator.worker.quality import SampledRecord, measure_quality

pytestmark = pytest.mark.milvus

ARTICLES = 300
GOOD_RECORDS = ARTICLES + 1  # the articles and one over-long text, which is embedded truncated
SKIPPED = {"nullText": 1, "emptyText": 1, "invalidUtf8": 1, "nullField": 1, "fieldTooLong": 1}
FIELDS = {"category": "category", "source_table": "'articles'"}
SCALAR_FIELDS = [
    {"name": "category", "type": "VARCHAR", "maxLength": 16},
    {"name": "source_table", "type": "VARCHAR", "maxLength": 32},
]
VARCHAR_FIELDS = {"category": 16, "source_table": 32}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """articles(id, title, body, category): 300 healthy articles, then one row per way to be bad."""
    path = tmp_path_factory.mktemp("sqlite") / "articles.db"
    texts = article_texts(ARTICLES)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT, category TEXT)"
        )
        connection.executemany(
            "INSERT INTO articles VALUES (?, ?, ?, ?)",
            [
                (key, f"Article {key}", text, ("news", "science", "culture")[key % 3])
                for key, text in enumerate(texts)
            ],
        )
        connection.executemany(
            "INSERT INTO articles VALUES (?, ?, ?, ?)",
            [
                (1000, None, None, "news"),  # nullText
                (1001, "", "   ", "news"),  # emptyText
                (1002, "Broken", None, "news"),  # invalidUtf8, below
                (1003, "Long", " ".join(texts[:6]), "news"),  # longer than 256 tokens: truncated
                (1004, "No category", texts[0], None),  # nullField
                (1005, "Long category", texts[1], "a category name far too long"),  # fieldTooLong
            ],
        )
        connection.execute("UPDATE articles SET body = CAST(X'4272c3a46b656e20ff' AS TEXT) WHERE id = 1002")
    return f"sqlite:///{path}"


def assignment(milvus_server: MilvusLiteServer, collection: str, **changes: Any) -> dict[str, Any]:
    return sql_assignment(
        milvus_uri=milvus_server.uri,
        collection=collection,
        table="articles",
        fields=FIELDS,
        scalar_fields=SCALAR_FIELDS,
        **changes,
    )


def test_a_table_lands_in_milvus_with_exact_counts(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    new_collection: Any,
    run_worker: Any,
    database: str,
) -> None:
    collection = new_collection(varchar_fields=VARCHAR_FIELDS)
    run = run_worker(assignment(milvus_server, collection), SOURCE_DATABASE_URL=database)

    assert run.exit_code == 0, run.result
    result = run.result
    assert (result["status"], result["reason"]) == ("Succeeded", "Completed")
    assert result["records"] == {
        "read": ARTICLES + 6,
        "embedded": GOOD_RECORDS,
        "upserted": GOOD_RECORDS,
        "skipped": SKIPPED,
        "truncated": 1,
    }
    assert entity_count(milvus_client, collection) == GOOD_RECORDS
    assert entity_count(milvus_client, collection, 'category == "science"') == ARTICLES // 3
    stored = milvus_client.get(collection, ids=[4], output_fields=["category", "source_table"])
    assert (stored[0]["category"], stored[0]["source_table"]) == ("science", "articles")

    quality = result["quality"]
    assert quality["sampled"] == 100
    assert quality["coherence"]["min"] >= 0.99
    assert quality["retrievability"] == 1.0
    assert quality["missing"] == 0
    assert quality["anomalies"]["collapse"] is False
    sizes = result["batchSizes"]
    assert sizes["first"] == 1  # no earlier Job settled a size: the first call probes at minBatchSize
    assert 1 <= sizes["min"] <= sizes["max"] <= 1024
    assert sum(count for _, count in sizes["runs"]) == sizes["count"]
    assert result["timings"]["batchP50Ms"] > 0
    assert result["model"] == {
        "name": MODEL,
        "device": "cpu",
        "backend": "torch",
        "precision": "float32",
        "maxSeqLength": 256,
        "fullMaxSeqLength": 256,
        "dimension": 384,
        "threads": available_cpus(),
    }


def test_a_rerun_overwrites_instead_of_duplicating(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    new_collection: Any,
    run_worker: Any,
    database: str,
) -> None:
    collection = new_collection(varchar_fields=VARCHAR_FIELDS)
    first = run_worker(assignment(milvus_server, collection), SOURCE_DATABASE_URL=database)
    second = run_worker(assignment(milvus_server, collection), SOURCE_DATABASE_URL=database)
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert second.result["records"] == first.result["records"]
    assert entity_count(milvus_client, collection) == GOOD_RECORDS
    assert second.result["quality"]["coherence"]["min"] >= 0.99


def test_key_ranges_split_the_table_without_overlap(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    new_collection: Any,
    run_worker: Any,
    database: str,
) -> None:
    collection = new_collection(varchar_fields=VARCHAR_FIELDS)
    low = run_worker(
        assignment(milvus_server, collection, key_range={"end": 120}), SOURCE_DATABASE_URL=database
    )
    high = run_worker(
        assignment(milvus_server, collection, key_range={"start": 120}), SOURCE_DATABASE_URL=database
    )
    assert (low.result["records"]["upserted"], high.result["records"]["upserted"]) == (
        120,
        GOOD_RECORDS - 120,
    )
    assert entity_count(milvus_client, collection) == GOOD_RECORDS
    assert entity_count(milvus_client, collection, "id < 120") == 120


def test_a_short_max_seq_length_lowers_coherence(
    milvus_server: MilvusLiteServer, new_collection: Any, run_worker: Any, database: str
) -> None:
    collection = new_collection(varchar_fields=VARCHAR_FIELDS)
    settings = {"model": MODEL, "maxSeqLength": 16}
    run = run_worker(assignment(milvus_server, collection, model=settings), SOURCE_DATABASE_URL=database)
    assert run.exit_code == 0, run.result
    coherence = run.result["quality"]["coherence"]
    # all-MiniLM-L6-v2 on 30-80-word texts reads about 0.7-0.8 at 16 tokens (DESIGN.md: 0.77)
    assert 0.5 < coherence["mean"] < 0.85, coherence
    assert coherence["max"] < 0.95
    assert run.result["records"]["truncated"] == GOOD_RECORDS
    assert run.result["model"]["maxSeqLength"] == 16
    assert run.result["recommendations"][0].startswith("coherence 0.")
    assert "maxSeqLength 16 cut 301 of 301 texts short" in run.result["recommendations"][0]


def test_vectors_swapped_between_ids_lower_coherence(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    new_collection: Any,
    run_worker: Any,
    database: str,
) -> None:
    collection = new_collection(varchar_fields=VARCHAR_FIELDS)
    assert run_worker(assignment(milvus_server, collection), SOURCE_DATABASE_URL=database).exit_code == 0
    target = CollectionTarget.model_validate(
        {"name": collection, "dimension": 384, "scalarFields": SCALAR_FIELDS, "searchParams": {"ef": 64}}
    )
    stored = MilvusCollection(MilvusTarget(uri=milvus_server.uri), target, token=None)
    model = load_embedding_model(EmbeddingSpec(model=MODEL))
    with sqlite3.connect(database.removeprefix("sqlite:///")) as connection:
        sample = [
            SampledRecord(key, f"{title}\n{body}")
            for key, title, body in connection.execute("SELECT id, title, body FROM articles WHERE id < 100")
        ]

    before = measure_quality(sample, stored, model, MetricType.COSINE)
    assert before.coherence is not None
    assert before.coherence.min >= 0.99

    # Swap the vectors of ids 0<->1, 2<->3, ... 38<->39: 40 of the 100 sampled records.
    rows = milvus_client.get(collection, ids=list(range(40)), output_fields=["*"])
    by_id = {row["id"]: row for row in rows}
    swapped = []
    for key in range(0, 40, 2):
        first, second = by_id[key], by_id[key + 1]
        swapped += [{**first, "vector": second["vector"]}, {**second, "vector": first["vector"]}]
    milvus_client.upsert(collection, swapped)
    milvus_client.flush(collection)

    after = measure_quality(sample, stored, model, MetricType.COSINE)
    stored.close()
    assert after.coherence is not None
    assert after.coherence.min < 0.8
    assert after.coherence.mean < before.coherence.mean - 0.08
    assert after.retrievability == 1.0  # the index serves what is stored; only coherence sees the mix-up
    assert entity_count(milvus_client, collection) == GOOD_RECORDS
    assert np.isfinite(after.coherence.mean)


def test_a_collection_that_does_not_fit_fails_permanently_and_writes_nothing(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    new_collection: Any,
    run_worker: Any,
    database: str,
) -> None:
    collection = new_collection(dimension=128, varchar_fields=VARCHAR_FIELDS)
    run = run_worker(assignment(milvus_server, collection), SOURCE_DATABASE_URL=database)
    assert run.exit_code == 2
    assert (run.result["status"], run.result["reason"]) == ("Failed", "CollectionMismatch")
    assert "vector has dimension 128, not 384" in run.result["message"]
    assert entity_count(milvus_client, collection) == 0


def test_a_missing_secret_is_named(
    milvus_server: MilvusLiteServer, new_collection: Any, run_worker: Any
) -> None:
    collection = new_collection(varchar_fields=VARCHAR_FIELDS)
    run = run_worker(assignment(milvus_server, collection))
    assert run.exit_code == 2
    assert run.result["reason"] == "SourceMisconfigured"
    assert "environment variable SOURCE_DATABASE_URL" in run.result["message"]


def test_an_unreachable_milvus_fails_for_a_retry(run_worker: Any, database: str, tmp_path: Path) -> None:
    document = sql_assignment(
        milvus_uri="http://127.0.0.1:9", collection="nowhere__v1", table="articles", fields=FIELDS,
        scalar_fields=SCALAR_FIELDS, milvus={"timeoutS": 3},
    )  # fmt: skip
    run = run_worker(document, SOURCE_DATABASE_URL=database)
    assert run.exit_code == 1
    assert (run.result["status"], run.result["reason"]) == ("Failed", "MilvusUnavailable")


def test_unnormalised_vectors_under_ip_are_flagged(
    milvus_server: MilvusLiteServer, new_collection: Any, run_worker: Any, database: str
) -> None:
    collection = new_collection(metric="IP", varchar_fields=VARCHAR_FIELDS)
    document = assignment(
        milvus_server, collection, key_range={"end": 60}, model={"model": MODEL, "normalize": False}
    )
    document["collection"]["metricType"] = "IP"
    run = run_worker(document, SOURCE_DATABASE_URL=database)
    assert run.exit_code == 0, run.result
    assert run.result["quality"]["coherence"]["min"] >= 0.99  # the direction is right, the length is not
    assert any(
        text.startswith("normalise embeddings for the IP metric") for text in run.result["recommendations"]
    )

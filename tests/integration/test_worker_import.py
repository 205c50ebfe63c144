"""`vector-operator worker` importing precomputed vectors (files with vectorField) into Milvus Lite:
nothing is embedded, good vectors are stored bit for bit, bad ones are skipped by reason, and the
declared model encodes only the quality sample, so that vectors of another model score low
coherence. Local Parquet, JSONL and CSV files, and Parquet in a real S3 server (SeaweedFS)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pymilvus import DataType, MilvusClient
from worker_support import DIMENSION, MODEL, article_texts, entity_count

from localcluster.milvus_lite import MilvusLiteServer
from localcluster.s3_server import S3Server
from vector_operator.api.vectorcollection import EmbeddingSpec
from vector_operator.contract.assignment import S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV, WorkerAssignment
from vector_operator.contract.content_hash import CONTENT_HASH_FIELD
from vector_operator.worker.embedding_model import EmbeddingModel, load_embedding_model
from vector_operator.worker.vector_import import ImportRun

pytestmark = pytest.mark.milvus

GOOD = 2000
SCALAR_FIELDS = [{"name": "category", "type": "VARCHAR", "maxLength": 32}]


@pytest.fixture(scope="module")
def minilm() -> EmbeddingModel:
    return load_embedding_model(EmbeddingSpec(model=MODEL))


@pytest.fixture(scope="module")
def corpus(minilm: EmbeddingModel) -> tuple[list[str], np.ndarray]:
    """2,000 texts and their vectors by the declared model (normalised float32, as the worker makes them)."""
    texts = article_texts(GOOD, seed=21)
    vectors = np.concatenate([minilm.encode(texts[start : start + 64]) for start in range(0, GOOD, 64)])
    return texts, vectors


def unit_vector(rng: np.random.Generator) -> np.ndarray:
    vector = rng.standard_normal(DIMENSION).astype(np.float32)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def import_assignment(
    milvus_uri: str, collection: str, files: dict[str, Any], *, sample_size: int = 200, **sections: Any
) -> dict[str, Any]:
    """An assignment as the MigrationPlan controller writes it, for files that carry their vectors."""
    document: dict[str, Any] = {
        "batch": {"namespace": "tests", "plan": "import", "index": 0},
        "milvus": {"uri": milvus_uri, "timeoutS": 30},
        "collection": {
            "name": collection,
            "dimension": DIMENSION,
            "metricType": "COSINE",
            "scalarFields": SCALAR_FIELDS,
            "searchParams": {"ef": 64},
        },
        "source": {"files": {"idField": "id", "vectorField": "embedding", **files}},
        "model": {"model": MODEL},
        "quality": {"sampleSize": sample_size},
    }
    document.update(sections)
    return document


def stored_vectors(client: MilvusClient, collection: str) -> dict[Any, np.ndarray]:
    """Every entity's vector as Milvus returns it, by key."""
    found: dict[Any, np.ndarray] = {}
    iterator = client.query_iterator(collection, batch_size=1000, output_fields=["id", "vector"])
    while page := iterator.next():
        found.update({row["id"]: np.asarray(row["vector"], dtype=np.float32) for row in page})
    iterator.close()
    return found


def assert_bit_for_bit(stored: dict[Any, np.ndarray], expected: dict[Any, np.ndarray]) -> None:
    assert stored.keys() == expected.keys()
    unequal = [key for key, vector in expected.items() if stored[key].tobytes() != vector.tobytes()]
    assert not unequal, f"{len(unequal)} vectors differ from the file's, e.g. {unequal[:5]}"


# -- Parquet with the model's own vectors, and every kind of bad vector -----------------------


def test_parquet_vectors_of_the_declared_model_are_imported_bit_for_bit(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    new_collection: Any,
    run_worker: Any,
    corpus: tuple[list[str], np.ndarray],
    tmp_path: Path,
) -> None:
    texts, vectors = corpus
    ids: list[int | None] = list(range(GOOD))
    rows: list[list[float] | None] = [vector.tolist() for vector in vectors]
    bodies = list(texts)
    bad = np.random.default_rng(5)

    def add(key: int | None, vector: list[float] | None, text: str = "a record with a bad vector") -> None:
        ids.append(key)
        rows.append(vector)
        bodies.append(text)

    nan = unit_vector(bad).tolist()
    nan[7] = float("nan")
    infinite = unit_vector(bad).tolist()
    infinite[0] = float("inf")
    add(GOOD + 0, nan)  # nonFiniteVector
    add(GOOD + 1, infinite)  # nonFiniteVector
    add(GOOD + 2, [0.0] * DIMENSION)  # zeroVector
    add(GOOD + 3, unit_vector(bad).tolist()[:-1])  # wrongDimension
    add(GOOD + 4, None)  # nullVector
    add(GOOD + 5, (2.0 * unit_vector(bad)).tolist())  # notNormalized (the model normalizes)
    add(5, unit_vector(bad).tolist(), texts[5])  # duplicateKey: the first record 5 stays
    add(None, unit_vector(bad).tolist())  # nullKey
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "body": bodies,
            "kind": [f"kind-{index % 3}" for index in range(len(ids))],
            "embedding": pa.array(rows, pa.list_(pa.float32())),
        }
    )
    # Two files, several row groups each: record numbers run across them.
    half = 1200
    pq.write_table(table.slice(0, half), tmp_path / "part-0.parquet", row_group_size=500)
    pq.write_table(table.slice(half), tmp_path / "part-1.parquet", row_group_size=300)
    collection = new_collection(varchar_fields={"category": 32})
    document = import_assignment(
        milvus_server.uri,
        collection,
        {
            "format": "Parquet",
            "path": str(tmp_path / "part-*.parquet"),
            "textFields": ["body"],
            "fields": {"category": "kind"},
        },
    )

    run = run_worker(document)

    assert run.exit_code == 0, run.result
    assert run.result["records"] == {
        "read": GOOD + 8,
        "embedded": 0,
        "upserted": GOOD,
        "skipped": {
            "duplicateKey": 1,
            "nonFiniteVector": 2,
            "notNormalized": 1,
            "nullKey": 1,
            "nullVector": 1,
            "wrongDimension": 1,
            "zeroVector": 1,
        },
        "truncated": 0,
    }
    assert entity_count(milvus_client, collection) == GOOD
    assert_bit_for_bit(stored_vectors(milvus_client, collection), dict(enumerate(vectors)))
    kinds = milvus_client.query(collection, filter="id in [0, 1, 1999]", output_fields=["category"])
    assert {row["id"]: row["category"] for row in kinds} == {0: "kind-0", 1: "kind-1", 1999: "kind-1"}
    quality = run.result["quality"]
    assert quality["sampled"] == 200
    assert quality["coherence"]["min"] > 0.95
    assert quality["retrievability"] >= 0.95
    assert run.result["model"]["name"] == MODEL
    assert run.result["timings"]["encodeMs"] == 0


# -- vectors of another model ------------------------------------------------------------------


@pytest.mark.parametrize("made_by", ["random-unit-vectors", "another-model"])
def test_vectors_of_another_model_score_low_coherence(
    milvus_server: MilvusLiteServer,
    new_collection: Any,
    run_worker: Any,
    corpus: tuple[list[str], np.ndarray],
    tmp_path: Path,
    made_by: str,
) -> None:
    texts, vectors = corpus
    count = 300
    rng = np.random.default_rng(11)
    if made_by == "random-unit-vectors":
        foreign = np.stack([unit_vector(rng) for _ in range(count)])
    else:  # the same model's geometry in another basis: what a different model of this dimension looks like
        rotation, _ = np.linalg.qr(rng.standard_normal((DIMENSION, DIMENSION)))
        foreign = (vectors[:count].astype(np.float64) @ rotation).astype(np.float32)
    table = pa.table(
        {
            "id": list(range(count)),
            "body": texts[:count],
            "kind": ["k"] * count,
            "embedding": pa.array(list(foreign), pa.list_(pa.float32(), DIMENSION)),
        }
    )
    pq.write_table(table, tmp_path / "foreign.parquet")
    collection = new_collection(varchar_fields={"category": 32})
    document = import_assignment(
        milvus_server.uri,
        collection,
        {
            "format": "Parquet",
            "path": str(tmp_path / "foreign.parquet"),
            "textTemplate": "{body}",
            "fields": {"category": "kind"},
        },
        sample_size=100,
    )

    run = run_worker(document)

    assert run.exit_code == 0, run.result
    assert run.result["records"]["upserted"] == count
    assert run.result["records"]["embedded"] == 0
    assert run.result["quality"]["coherence"]["mean"] < 0.5
    assert any("imported vectors differ" in advice for advice in run.result["recommendations"])


# -- no text: imported, no quality -------------------------------------------------------------


def write_vectors_file(path: Path, file_format: str, vectors: np.ndarray, *, first: int = 0) -> None:
    """Records id, kind, embedding in JSONL (a JSON array) or CSV (the array as text)."""
    with path.open("w", encoding="utf-8") as out:
        if file_format == "CSV":
            out.write("id,kind,embedding\n")
        for offset, vector in enumerate(vectors):
            key = first + offset
            numbers = [float(component) for component in vector]  # repr of a float32 reads back exactly
            if file_format == "CSV":
                out.write(f'{key},k{key % 2},"{json.dumps(numbers)}"\n')
            else:
                out.write(json.dumps({"id": key, "kind": f"k{key % 2}", "embedding": numbers}) + "\n")


@pytest.mark.parametrize("file_format", ["JSONL", "CSV"])
def test_vectors_without_text_are_imported_without_quality(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    new_collection: Any,
    run_worker: Any,
    corpus: tuple[list[str], np.ndarray],
    tmp_path: Path,
    file_format: str,
) -> None:
    _, vectors = corpus
    extension = file_format.lower()
    write_vectors_file(tmp_path / f"a.{extension}", file_format, vectors[:150])
    write_vectors_file(tmp_path / f"b.{extension}", file_format, vectors[150:300], first=150)
    with (tmp_path / f"b.{extension}").open("a", encoding="utf-8") as out:  # no vector: nullVector
        out.write("300,k0,\n" if file_format == "CSV" else '{"id": 300, "kind": "k0", "embedding": null}\n')
    collection = new_collection(varchar_fields={"category": 32})
    document = import_assignment(
        milvus_server.uri,
        collection,
        {"format": file_format, "path": str(tmp_path / f"*.{extension}"), "fields": {"category": "kind"}},
        keyRange={"start": 100, "end": 301},
    )

    run = run_worker(document)

    assert run.exit_code == 0, run.result
    assert run.result["records"] == {
        "read": 201,
        "embedded": 0,
        "upserted": 200,
        "skipped": {"nullVector": 1},
        "truncated": 0,
    }
    assert "quality" not in run.result
    assert "model" not in run.result
    assert_bit_for_bit(
        stored_vectors(milvus_client, collection), {key: vectors[key] for key in range(100, 300)}
    )


# -- a restore: the files' content hashes pass through ------------------------------------------


@pytest.fixture
def hashed_collection(milvus_client: MilvusClient) -> Iterator[str]:
    """A collection with the operator's nullable content_hash field."""
    name = f"worker_import_{uuid.uuid4().hex[:10]}__v1"
    schema = milvus_client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIMENSION)
    schema.add_field("category", DataType.VARCHAR, max_length=32)
    schema.add_field(CONTENT_HASH_FIELD, DataType.INT64, nullable=True)
    index = milvus_client.prepare_index_params()
    index.add_index(
        field_name="vector", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 100}
    )
    milvus_client.create_collection(name, schema=schema, index_params=index)
    try:
        yield name
    finally:
        milvus_client.drop_collection(name)


@pytest.mark.parametrize("keep_content_hash", [True, False])
def test_a_restore_writes_back_the_content_hashes_of_its_files(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    hashed_collection: str,
    corpus: tuple[list[str], np.ndarray],
    tmp_path: Path,
    keep_content_hash: bool,
) -> None:
    _, vectors = corpus
    count = 50
    hashes = [(-1) ** key * (key * 7_919_111_111_111 + 3) for key in range(count)]
    table = pa.table(
        {
            "id": list(range(count)),
            "vector": pa.array(list(vectors[:count]), pa.list_(pa.float32(), DIMENSION)),
            "category": ["restored"] * count,
            CONTENT_HASH_FIELD: pa.array(hashes, pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "backup-00000.parquet")
    document = import_assignment(
        milvus_server.uri,
        hashed_collection,
        {
            "format": "Parquet",
            "path": str(tmp_path / "backup-*.parquet"),
            "vectorField": "vector",
            "fields": {"category": "category"},
        },
    )

    result = ImportRun(
        WorkerAssignment.model_validate(document), {}, keep_content_hash=keep_content_hash
    ).execute()

    assert result.records.upserted == count
    rows = milvus_client.query(
        hashed_collection, filter="id >= 0", output_fields=["id", CONTENT_HASH_FIELD], limit=count + 1
    )
    stored = {row["id"]: row[CONTENT_HASH_FIELD] for row in rows}
    assert stored == {key: hashes[key] if keep_content_hash else None for key in range(count)}


# -- S3 ------------------------------------------------------------------------------------------


def test_parquet_in_s3_is_imported_and_no_credential_is_ever_shown(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    s3_server: S3Server,
    new_collection: Any,
    run_worker: Any,
    corpus: tuple[list[str], np.ndarray],
) -> None:
    texts, vectors = corpus
    bucket = "import-vectors"
    s3_server.create_bucket(bucket)
    store = s3_server.filesystem()
    for part, (start, stop) in enumerate([(0, 250), (250, 400)]):
        table = pa.table(
            {
                "id": list(range(start, stop)),
                "body": texts[start:stop],
                "kind": ["s3"] * (stop - start),
                "embedding": pa.array(list(vectors[start:stop]), pa.list_(pa.float32(), DIMENSION)),
            }
        )
        pq.write_table(table, f"{bucket}/corpus/part-{part}.parquet", filesystem=store, row_group_size=100)
    store.open_output_stream(f"{bucket}/corpus/README.txt").close()  # matched by no glob
    collection = new_collection(varchar_fields={"category": 32})
    files = {
        "format": "Parquet",
        "path": f"s3://{bucket}/corpus/part-*.parquet",
        "s3": {"endpoint": s3_server.endpoint, "region": s3_server.region},
        "textFields": ["body"],
        "fields": {"category": "kind"},
    }
    credentials = {S3_ACCESS_KEY_ENV: s3_server.access_key, S3_SECRET_KEY_ENV: s3_server.secret_key}

    run = run_worker(
        import_assignment(
            milvus_server.uri, collection, files, sample_size=50, keyRange={"start": 50, "end": 350}
        ),
        **credentials,
    )

    assert run.exit_code == 0, run.result
    assert run.result["records"]["read"] == 300
    assert run.result["records"]["upserted"] == 300
    assert run.result["quality"]["coherence"]["min"] > 0.95
    assert_bit_for_bit(
        stored_vectors(milvus_client, collection), {key: vectors[key] for key in range(50, 350)}
    )

    wrong = {**credentials, S3_SECRET_KEY_ENV: "not-the-" + s3_server.secret_key}
    refused = run_worker(import_assignment(milvus_server.uri, collection, files), **wrong)
    assert refused.exit_code == 2, refused.result  # retrying does not fix wrong credentials
    assert refused.result["reason"] == "SourceMisconfigured"
    assert "are the credentials in the Secret" in refused.result["message"]
    assert s3_server.secret_key not in refused.result["message"]
    assert s3_server.access_key not in refused.result["message"]

    missing = run_worker(import_assignment(milvus_server.uri, collection, files))
    assert missing.exit_code == 2
    assert missing.result["reason"] == "SourceMisconfigured"
    assert S3_SECRET_KEY_ENV in missing.result["message"]


def test_jsonl_in_s3_is_embedded(
    milvus_server: MilvusLiteServer,
    milvus_client: MilvusClient,
    s3_server: S3Server,
    new_collection: Any,
    run_worker: Any,
) -> None:
    """Without vectorField, a files source in S3 is read and embedded like a local one."""
    texts = article_texts(40, seed=4)
    bucket = "embed-texts"
    s3_server.create_bucket(bucket)
    with s3_server.filesystem().open_output_stream(f"{bucket}/articles.jsonl") as out:
        for key, text in enumerate(texts):
            out.write(json.dumps({"id": f"doc-{key:02d}", "text": text}).encode() + b"\n")
    collection = new_collection(key_type="VARCHAR")
    document = {
        "batch": {"plan": "s3-texts", "index": 0},
        "milvus": {"uri": milvus_server.uri},
        "collection": {"name": collection, "dimension": DIMENSION, "primaryKey": {"type": "VARCHAR"}},
        "source": {
            "files": {
                "format": "JSONL",
                "path": f"s3://{bucket}/articles.jsonl",
                "s3": {"endpoint": s3_server.endpoint, "region": s3_server.region},
                "idField": "id",
                "textFields": ["text"],
            }
        },
        "model": {"model": MODEL},
        "quality": {"sampleSize": 10},
    }

    run = run_worker(
        document, **{S3_ACCESS_KEY_ENV: s3_server.access_key, S3_SECRET_KEY_ENV: s3_server.secret_key}
    )

    assert run.exit_code == 0, run.result
    assert run.result["records"]["embedded"] == 40
    assert entity_count(milvus_client, collection) == 40


# -- files that are not what the source says ---------------------------------------------------


def test_files_that_cannot_hold_the_vectors_fail_the_batch_naming_file_and_column(
    milvus_server: MilvusLiteServer, new_collection: Any, run_worker: Any, tmp_path: Path
) -> None:
    collection = new_collection(varchar_fields={"category": 32})
    no_column = tmp_path / "no-column.parquet"
    pq.write_table(pa.table({"id": [1, 2], "kind": ["a", "b"], "vectors": [[0.1], [0.2]]}), no_column)
    words = tmp_path / "words.parquet"
    pq.write_table(pa.table({"id": [1, 2], "kind": ["a", "b"], "embedding": ["[0.5, 0.5]", "[x, y]"]}), words)
    not_parquet = tmp_path / "not.parquet"
    not_parquet.write_bytes(b"id,kind,embedding\n")
    cases = {
        no_column: f"{no_column} has no column embedding",
        words: f"{words}: column embedding cannot be vectors: it holds text that is not a list of numbers",
        not_parquet: f"{not_parquet}: ",
    }
    for path, message in cases.items():
        document = import_assignment(
            milvus_server.uri,
            collection,
            {"format": "Parquet", "path": str(path), "fields": {"category": "kind"}},
        )
        run = run_worker(document)
        assert run.exit_code == 2, run.result
        assert run.result["reason"] == "SourceMisconfigured"
        assert run.result["message"].startswith(message), run.result["message"]


def test_a_declared_model_of_another_dimension_fails_before_anything_is_read(
    milvus_server: MilvusLiteServer, new_collection: Any, run_worker: Any, tmp_path: Path
) -> None:
    collection = new_collection(dimension=128)
    document = import_assignment(
        milvus_server.uri,
        collection,
        {"format": "JSONL", "path": str(tmp_path / "never-read.jsonl"), "textFields": ["body"]},
    )
    document["collection"].update(dimension=128, scalarFields=[])
    run = run_worker(document)
    assert run.exit_code == 2, run.result
    assert run.result["reason"] == "CollectionMismatch"
    assert "384-dimensional" in run.result["message"]

"""Backups, restores and precomputed vectors, end to end: the real control plane and node agent,
Milvus Lite, a SeaweedFS S3 server built from its Go module, a PersistentVolumeClaim bound by the
real PV controller to a directory of the node, the real model.

1. An InPlace plan that changes every vector exports the collection to S3 first; a copy of that
   backup with one changed byte is refused by its checksum (nothing is created, the alias stays);
   `spec.rollback: true` restores the real backup into a new collection, and the collection the
   alias serves equals the backup exactly: the same ids, vectors bit for bit, fields.
2. 20,000 vectors computed by the model are adopted from Parquet files on a claim without
   embedding a row; rows with bad vectors are skipped by reason; vectors of another model's space
   (mislabelled) fail the coherence gate before the swap.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq
from pymilvus import MilvusClient
from tests.conftest import OperatorProcess
from tests.e2e.migration_support import (
    QueryLoop,
    apply,
    condition,
    count,
    event_reasons,
    eventually,
    phase_is,
    plan_status,
    quickstart,
)

from localcluster.cluster import Kubectl
from localcluster.milvus_lite import MilvusLiteServer
from localcluster.s3_server import S3Server
from vector_operator.api.vectorcollection import EmbeddingSpec
from vector_operator.worker.embedding_model import load_embedding_model

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
Snapshot = dict[int, tuple[bytes, str]]


def _s3_secret(s3: S3Server) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "backups-s3"},
        "type": "Opaque",
        "data": {
            "accessKeyId": base64.b64encode(s3.access_key.encode()).decode(),
            "secretAccessKey": base64.b64encode(s3.secret_key.encode()).decode(),
        },
    }


def _s3_store(s3: S3Server) -> dict[str, Any]:
    return {
        "endpoint": s3.endpoint,
        "region": s3.region,
        "credentials": {
            "accessKeyId": {"name": "backups-s3", "key": "accessKeyId"},
            "secretAccessKey": {"name": "backups-s3", "key": "secretAccessKey"},
        },
    }


def _client(s3: S3Server) -> pa_fs.S3FileSystem:
    return pa_fs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        region=s3.region,
        endpoint_override=s3.endpoint.removeprefix("http://"),
        scheme="http",
    )


def snapshot(milvus: MilvusClient, collection: str) -> Snapshot:
    """Every row: id -> (its vector's float32 bytes, its category)."""
    rows: Snapshot = {}
    iterator = milvus.query_iterator(
        collection, batch_size=1000, filter="", output_fields=["vector", "category"]
    )
    while batch := iterator.next():
        for row in batch:
            rows[row["id"]] = (np.asarray(row["vector"], dtype=np.float32).tobytes(), row["category"])
    iterator.close()
    return rows


def backup_rows(fs: pa_fs.S3FileSystem, directory: str) -> Snapshot:
    """The rows of a backup's Parquet files, read straight from the bucket."""
    manifest = json.loads(fs.open_input_stream(f"{directory}/manifest.json").read())
    rows: Snapshot = {}
    for file in manifest["files"]:
        table = pq.read_table(f"{directory}/{file['name']}", filesystem=fs)
        vectors = table.column("vector").combine_chunks().flatten().to_numpy().astype(np.float32)
        vectors = vectors.reshape(table.num_rows, -1)
        for key, vector, category in zip(
            table.column("id").to_pylist(), vectors, table.column("category").to_pylist(), strict=True
        ):
            rows[key] = (vector.tobytes(), category)
    return rows


def test_in_place_plan_backs_up_then_restores_exactly_and_refuses_a_corrupted_backup(
    kubectl: Kubectl,
    migration_operator: OperatorProcess,
    source_db: Path,
    milvus: MilvusClient,
    milvus_server: MilvusLiteServer,
    s3_server: S3Server,
) -> None:
    alias = f"restore_{uuid.uuid4().hex[:6]}"
    bucket = f"backups-{uuid.uuid4().hex[:6]}"
    s3_server.create_bucket(bucket)
    fs = _client(s3_server)
    apply(kubectl, [_s3_secret(s3_server), *quickstart(source_db, alias)])
    eventually("the first fill succeeds", phase_is(kubectl, "Succeeded"))
    before = snapshot(milvus, alias)
    assert len(before) == 200
    serving = milvus.describe_alias(alias)["collection_name"]  # the plan's new collection, v2

    # An InPlace plan that embeds another text: every vector changes, after a backup to S3.
    in_place = next(d for d in quickstart(source_db, alias) if d["kind"] == "MigrationPlan")
    in_place["metadata"]["name"] = "reembed"
    in_place["spec"].update(
        mode="InPlace",
        backup={"destination": {"path": f"s3://{bucket}/articles", "s3": _s3_store(s3_server)}},
    )
    sql = in_place["spec"]["source"]["sql"]
    sql.pop("textColumns")
    sql["textTemplate"] = "Category {category}. {body}"
    apply(kubectl, [in_place])
    status = eventually("the InPlace plan succeeds", phase_is(kubectl, "Succeeded", plan="reembed"))
    backup = status["backup"]
    assert backup["rows"] == 200
    assert backup["collection"] == serving
    assert backup["location"].startswith(f"s3://{bucket}/articles/reembed-")
    assert backup["checksum"].startswith("sha256:")
    assert {"BackupStarted", "BackupCompleted"} <= set(event_reasons(kubectl, "reembed"))
    directory = backup["location"].removeprefix("s3://")
    assert backup_rows(fs, directory) == before  # the backup is the collection as it was
    changed = snapshot(milvus, alias)
    assert changed.keys() == before.keys()
    assert all(changed[key][0] != before[key][0] for key in before)  # every vector changed

    # A copy of the backup with one byte changed is refused by its checksum: nothing is created.
    corrupt = f"{bucket}/corrupt"
    fs.create_dir(corrupt)
    for info in fs.get_file_info(pa_fs.FileSelector(directory)):
        data = bytearray(fs.open_input_stream(info.path).read())
        if info.base_name == "part-00000.parquet":
            data[len(data) // 2] ^= 0x01
        with fs.open_output_stream(f"{corrupt}/{info.base_name}") as out:
            out.write(bytes(data))
    refused = next(d for d in quickstart(source_db, alias) if d["kind"] == "MigrationPlan")
    refused["metadata"]["name"] = "restore-corrupt"
    refused["spec"]["source"] = {
        "backup": {"location": {"path": f"s3://{corrupt}", "s3": _s3_store(s3_server)}}
    }
    collections_before = sorted(milvus.list_collections())
    apply(kubectl, [refused])
    failed = eventually(
        "the corrupted backup is refused", phase_is(kubectl, "Failed", plan="restore-corrupt")
    )
    assert condition(failed, "Failed")["reason"] == "BackupCorrupted"
    assert "part-00000.parquet" in condition(failed, "Failed")["message"]
    assert sorted(milvus.list_collections()) == collections_before
    assert milvus.describe_alias(alias)["collection_name"] == serving
    assert snapshot(milvus, alias) == changed

    # Undo the InPlace plan: its backup is restored into a new collection, the alias swings to it.
    with QueryLoop(milvus_server.uri, alias) as loop:
        kubectl("patch", "migrationplan", "reembed", "--type=merge", "-p", '{"spec":{"rollback":true}}')
        undone = eventually(
            "the InPlace plan is rolled back", phase_is(kubectl, "RolledBack", plan="reembed")
        )
        (step,) = undone["rollback"]["steps"]
        assert (step["action"], step["result"]) == ("RestoreBackup", "Succeeded")
        restored = eventually(
            "the restore succeeds", phase_is(kubectl, "Succeeded", plan="reembed-restore"), timeout=300
        )
        time.sleep(1)
    assert loop.queries > 0
    assert loop.failures == []
    assert restored["previousPhysicalCollection"] == serving
    assert restored["progress"]["recordsDone"] == 200
    assert milvus.describe_alias(alias)["collection_name"] == restored["newPhysicalCollection"] != serving
    assert count(milvus, alias) == 200
    assert snapshot(milvus, alias) == before  # ids, vectors bit for bit, fields


def _write_vectors(path: Path, ids: list[int], texts: list[str], vectors: list[Any]) -> None:
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "text": pa.array(texts, pa.string()),
            "embedding": pa.array(vectors, pa.list_(pa.float32())),
        }
    )
    pq.write_table(table, path, row_group_size=4000)


def _claim(kubectl: Kubectl, directory: Path, name: str) -> None:
    """A PersistentVolume on the node's ``directory`` and a claim bound to it by the real PV binder.
    The claim is mounted at the same path, so the Jobs that run as host processes read it there."""
    namespace = kubectl.namespace
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-{name}"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "manual",
            "hostPath": {"path": str(directory), "type": "Directory"},
            "claimRef": {"namespace": namespace, "name": name},
        },
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "manual",
            "volumeName": f"{namespace}-{name}",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    apply(kubectl, [volume, claim])

    def bound() -> bool:
        got = json.loads(kubectl("get", "pvc", name, "-o", "json").stdout)
        return got.get("status", {}).get("phase") == "Bound"

    eventually("the claim is bound", bound, timeout=60)


def _adopt_plan(name: str, directory: Path, pattern: str) -> dict[str, Any]:
    return {
        "apiVersion": "vectors.aios.dev/v1alpha1",
        "kind": "MigrationPlan",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"name": "articles"},
            "source": {
                "files": {
                    "format": "Parquet",
                    "path": f"{directory}/{pattern}",
                    "idField": "id",
                    "textFields": ["text"],
                    "vectorField": "embedding",
                    "fields": {"category": "'adopted'"},
                    "persistentVolumeClaim": {"claimName": "corpus", "mountPath": str(directory)},
                }
            },
            "batching": {"recordsPerJob": 5000, "maxConcurrentJobs": 2},
            "quality": {"sampleSize": 50},
        },
    }


def test_adopt_precomputed_vectors_from_a_claim_skip_bad_ones_and_catch_mislabelled_ones(
    kubectl: Kubectl,
    migration_operator: OperatorProcess,
    source_db: Path,
    milvus: MilvusClient,
    tmp_path: Path,
) -> None:
    alias = f"adopt_{uuid.uuid4().hex[:6]}"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    corpus.chmod(0o755)
    texts = [
        f"Note {i}: the {('red', 'green', 'blue', 'grey')[i % 4]} report on topic {i % 97}"
        for i in range(20_000)
    ]
    model = load_embedding_model(EmbeddingSpec(model=MODEL))  # the packaged model, offline
    encoded = model.model.encode(texts, batch_size=256, normalize_embeddings=True, convert_to_numpy=True)
    vectors: list[Any] = [row.astype(np.float32).tolist() for row in encoded]
    half = 10_000
    _write_vectors(corpus / "vectors-0.parquet", list(range(half)), texts[:half], vectors[:half])
    bad_ids = list(range(20_000, 20_010))
    bad_vectors: list[Any] = [
        [float("nan")] * 384,  # nonFiniteVector
        [float("nan")] * 384,
        [0.0] * 384,  # zeroVector
        [0.0] * 384,
        [0.0] * 384,
        [0.1] * 128,  # wrongDimension
        None,  # nullVector
        None,
        (encoded[0] * 3).tolist(),  # notNormalized: the model normalizes
        (encoded[1] * 0.5).tolist(),
    ]
    _write_vectors(
        corpus / "vectors-1.parquet",
        [*range(half, 20_000), *bad_ids],
        [*texts[half:], *[f"bad {i}" for i in range(len(bad_ids))]],
        [*vectors[half:], *bad_vectors],
    )
    _claim(kubectl, corpus, "corpus")
    collection = [d for d in quickstart(source_db, alias) if d["kind"] in ("Secret", "VectorCollection")]
    apply(kubectl, [*collection, _adopt_plan("adopt", corpus, "vectors-*.parquet")])
    status = eventually("the adoption succeeds", phase_is(kubectl, "Succeeded", plan="adopt"), timeout=600)
    progress = status["progress"]
    assert progress["recordsDone"] == 20_000
    assert progress["skippedByReason"] == {
        "nonFiniteVector": 2,
        "zeroVector": 3,
        "wrongDimension": 1,
        "nullVector": 2,
        "notNormalized": 2,
    }
    assert count(milvus, alias) == 20_000
    assert status["quality"]["coherence"]["mean"] > 0.95
    stored = milvus.query(alias, filter="id in [0, 12345, 19999]", output_fields=["vector", "category"])
    for row in stored:
        assert (
            np.asarray(row["vector"], dtype=np.float32).tobytes()
            == encoded[row["id"]].astype(np.float32).tobytes()
        )
        assert row["category"] == "adopted"
    serving = milvus.describe_alias(alias)["collection_name"]

    # Vectors of another model's space (the model's own, rotated: lengths and their similarities
    # to one another kept, their direction unrelated to the declared model's) fail the gate.
    rotation, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(384, 384)))
    foreign = (encoded[:2000] @ rotation).astype(np.float32)
    _write_vectors(
        corpus / "mislabelled.parquet", list(range(2000)), texts[:2000], [row.tolist() for row in foreign]
    )
    apply(kubectl, [_adopt_plan("mislabelled", corpus, "mislabelled.parquet")])
    failed = eventually("the mislabelled vectors fail", phase_is(kubectl, "Failed", plan="mislabelled"))
    assert "coherence" in condition(failed, "Failed")["message"]
    assert milvus.describe_alias(alias)["collection_name"] == serving
    assert count(milvus, alias) == 20_000
    assert plan_status(kubectl, "adopt")["phase"] == "Succeeded"

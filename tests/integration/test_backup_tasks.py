"""A plan's one-off tasks against real components: a Milvus Lite server holding a collection of the
operator's own layout, Parquet files on a real filesystem and on a real S3 server (SeaweedFS),
and `vector-operator task` run as a Job pod runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pymilvus import DataType, MilvusClient

from localcluster.milvus_lite import MilvusLiteServer
from localcluster.s3_server import S3Server
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection.milvus_layout import layout_of
from vector_operator.collection.ownership import Owner
from vector_operator.contract.assignment import FileSource
from vector_operator.contract.backup_manifest import MANIFEST_NAME, BackupManifest
from vector_operator.contract.tasks import TaskAssignment
from vector_operator.milvus.collections import MilvusCollections
from vector_operator.milvus.connection import MilvusClients, MilvusEndpoint
from vector_operator.sources import SourceMisconfigured
from vector_operator.worker.backup_export import ROW_GROUP_ROWS, export_backup, row_groups
from vector_operator.worker.backup_verify import BackupCorrupted, BackupIncompatible, verify_stored_backup
from vector_operator.worker.files_inventory import count_file_records
from vector_operator.worker.task_command import main as task_main

pytestmark = pytest.mark.milvus

VECTOR_OPERATOR = str(Path(sys.executable).with_name("vector-operator"))
DIMENSION = 128
ROWS = 3_000
ROWS_PER_FILE = 1_200
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SCALAR_FIELDS: list[dict[str, Any]] = [
    {"name": "title", "type": "VARCHAR", "maxLength": 64},
    {"name": "year", "type": "INT64"},
    {"name": "score", "type": "FLOAT"},
    {"name": "extra", "type": "JSON"},
]


# -- the collection ------------------------------------------------------------------------------


def _vectors(count: int, seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """float32 vectors whose low mantissa bits matter (a float64 detour would show in them)."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, DIMENSION)).astype(np.float32)
    vectors[:, 0] = np.float32(1) / np.float32(3)
    vectors[:, 1] = np.nextafter(np.float32(1), np.float32(2))
    vectors[:, 2] = np.float32(1e-38)
    return vectors


def _rows(count: int, seed: int, *, key_type: str, content_hash: bool) -> list[dict[str, Any]]:
    vectors = _vectors(count, seed)
    rows: list[dict[str, Any]] = []
    for number in range(count):
        row: dict[str, Any] = {
            "id": number * 7 + 1 if key_type == "INT64" else f"doc-{number:05d}-é",
            "vector": vectors[number].tolist(),
            "title": None if number % 10 == 3 else f"Title {number} ✓",
            "year": None if number % 11 == 5 else 1900 + number % 125,
            "score": float(np.float32(number / 7)),
            "extra": None if number % 5 == 0 else {"n": number, "tags": ["a", str(number % 3)]},
        }
        if content_hash:
            row["content_hash"] = None if number % 4 == 0 else (number * 2654435761) % (1 << 62) - (1 << 61)
        rows.append(row)
    return rows


def _spec(**changes: Any) -> VectorCollectionSpec:
    raw: dict[str, Any] = {
        "collectionName": "backups",
        "dimension": DIMENSION,
        "metricType": "COSINE",
        "index": {"type": "HNSW", "params": {"M": 16, "efConstruction": 64}},
        "fields": SCALAR_FIELDS,
        "embedding": {"model": MODEL},
    }
    raw.update(changes)
    return VectorCollectionSpec.model_validate(raw)


def _insert(client: MilvusClient, name: str, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 1000):
        client.insert(name, rows[start : start + 1000])


@pytest.fixture(scope="module")
def operator_collection(milvus_server: MilvusLiteServer, milvus_client: MilvusClient) -> Iterator[str]:
    """A physical collection created by the operator's own code (MilvusCollections.create: an INT64
    key, the vector, a nullable content_hash and nullable scalar fields), holding ROWS rows."""
    name = f"backup_{uuid.uuid4().hex[:8]}__v1"
    collections = MilvusCollections(MilvusClients(), MilvusEndpoint(milvus_server.uri), lambda *_: None)
    collections.create(name, layout_of(_spec()), Owner("tests", "backups", "uid-1"))
    _insert(milvus_client, name, _rows(ROWS, seed=3, key_type="INT64", content_hash=True))
    yield name
    milvus_client.drop_collection(name)


@pytest.fixture(scope="module")
def plain_collection(milvus_client: MilvusClient) -> Iterator[str]:
    """A collection of a server without nullable fields' layout: a VARCHAR key and no content_hash."""
    name = f"backup_plain_{uuid.uuid4().hex[:8]}__v1"
    schema = milvus_client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIMENSION)
    schema.add_field("title", DataType.VARCHAR, max_length=64, nullable=True)
    schema.add_field("year", DataType.INT64, nullable=True)
    schema.add_field("score", DataType.FLOAT, nullable=True)
    schema.add_field("extra", DataType.JSON, nullable=True)
    index = milvus_client.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="COSINE")
    milvus_client.create_collection(name, schema=schema, index_params=index)
    _insert(milvus_client, name, _rows(500, seed=4, key_type="VARCHAR", content_hash=False))
    yield name
    milvus_client.drop_collection(name)


def _collection_target(name: str, *, key_type: str = "INT64", **changes: Any) -> dict[str, Any]:
    target: dict[str, Any] = {
        "name": name,
        "dimension": DIMENSION,
        "metricType": "COSINE",
        "scalarFields": SCALAR_FIELDS,
    }
    if key_type == "VARCHAR":
        target["primaryKey"] = {"type": "VARCHAR", "maxLength": 64}
    target.update(changes)
    return target


def backup_task(
    milvus_uri: str,
    collection: str,
    destination: str,
    *,
    key_type: str = "INT64",
    s3: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Backup task as the MigrationPlan controller writes it."""
    return {
        "version": 1,
        "plan": {"namespace": "tests", "plan": "backup-it", "index": 0},
        "backup": {
            "milvus": {"uri": milvus_uri, "timeoutS": 30},
            "collection": _collection_target(collection, key_type=key_type),
            "destination": {"path": destination, **({"s3": s3} if s3 else {})},
            "origin": {"namespace": "tests", "name": "backups", "alias": "backups"},
            "index": {"type": "HNSW"},
            "model": {"model": MODEL},
            "rowsPerFile": ROWS_PER_FILE,
        },
    }


def verify_task(
    collection: str,
    backup: str,
    *,
    key_type: str = "INT64",
    target: dict[str, Any] | None = None,
    storage: dict[str, Any] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """An Inventory task that verifies a backup before a restore into ``collection`` (``target``:
    changes to its schema)."""
    return {
        "version": 1,
        "plan": {"namespace": "tests", "plan": "backup-it", "index": 0},
        "inventory": {
            "backup": {"path": backup, **(storage or {})},
            "collection": _collection_target(collection, key_type=key_type, **(target or {})),
            **settings,
        },
    }


def _export(document: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
    task = TaskAssignment.model_validate(document)
    assert task.backup is not None
    return export_backup(task.backup, task.plan.plan, environ or {})


def _verify(document: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
    inventory = TaskAssignment.model_validate(document).inventory
    assert inventory is not None
    assert inventory.backup is not None
    assert inventory.collection is not None
    return verify_stored_backup(
        inventory.backup, inventory.collection, inventory.expected_checksum, environ or {}
    )


def _stored_rows(client: MilvusClient, name: str) -> dict[Any, dict[str, Any]]:
    iterator = client.query_iterator(name, batch_size=1000, filter="", output_fields=["*"])
    stored: dict[Any, dict[str, Any]] = {}
    try:
        while page := iterator.next():
            stored.update({row["id"]: row for row in page})
    finally:
        iterator.close()
    return stored


def _read_back(directory: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(path) for path in sorted(directory.glob("part-*.parquet")))


def _assert_same_as_collection(
    table: pa.Table, stored: dict[Any, dict[str, Any]], content_hash: bool
) -> None:
    assert table.num_rows == len(stored)
    ids = table.column("id").to_pylist()
    assert sorted(ids) == sorted(stored), "every key exactly once"
    assert ids == sorted(ids), "in key order"
    vectors = table.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, DIMENSION)
    expected = np.asarray([stored[key]["vector"] for key in ids], dtype=np.float32)
    assert vectors.dtype == np.float32
    assert np.array_equal(vectors.view(np.uint32), expected.view(np.uint32)), "vectors bit for bit"
    for name in ("title", "year", "score"):
        assert table.column(name).to_pylist() == [stored[key].get(name) for key in ids], name
    extras = [None if text is None else json.loads(text) for text in table.column("extra").to_pylist()]
    assert extras == [stored[key].get("extra") for key in ids]
    if content_hash:
        assert table.column("content_hash").to_pylist() == [stored[key]["content_hash"] for key in ids]
    else:
        assert "content_hash" not in table.column_names


# -- export and verify ---------------------------------------------------------------------------


def test_an_export_verifies_and_reads_back_bit_for_bit(
    milvus_server: MilvusLiteServer, milvus_client: MilvusClient, operator_collection: str, tmp_path: Path
) -> None:
    destination = tmp_path / "backup"
    exported = _export(backup_task(milvus_server.uri, operator_collection, str(destination)))
    manifest = exported.manifest
    assert (manifest.rows, [file.rows for file in manifest.files]) == (ROWS, [1200, 1200, 600])
    assert [file.name for file in manifest.files] == [f"part-0000{n}.parquet" for n in range(3)]
    assert (manifest.content_hash, manifest.collection) == (True, operator_collection)
    assert sorted(path.name for path in destination.iterdir()) == [
        MANIFEST_NAME,
        *(f.name for f in manifest.files),
    ]
    on_disk = BackupManifest.model_validate_json((destination / MANIFEST_NAME).read_text())
    assert on_disk == manifest
    assert json.loads((destination / MANIFEST_NAME).read_text())["primaryKey"] == {"type": "INT64"}

    verified = _verify(verify_task(operator_collection, str(destination), expectedChecksum=manifest.checksum))
    assert (verified.manifest.checksum, verified.bytes) == (manifest.checksum, exported.bytes)

    table = _read_back(destination)
    assert table.schema.field("vector").type == pa.list_(pa.float32(), DIMENSION)
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("content_hash").type == pa.int64()
    _assert_same_as_collection(table, _stored_rows(milvus_client, operator_collection), content_hash=True)


def test_a_varchar_key_without_content_hash(
    milvus_server: MilvusLiteServer, milvus_client: MilvusClient, plain_collection: str, tmp_path: Path
) -> None:
    destination = tmp_path / "plain"
    exported = _export(backup_task(milvus_server.uri, plain_collection, str(destination), key_type="VARCHAR"))
    assert (exported.manifest.content_hash, exported.manifest.rows) == (False, 500)
    _verify(verify_task(plain_collection, str(destination), key_type="VARCHAR"))
    table = _read_back(destination)
    assert table.schema.field("id").type == pa.string()
    _assert_same_as_collection(table, _stored_rows(milvus_client, plain_collection), content_hash=False)


@pytest.fixture(scope="module")
def finished_backup(
    milvus_server: MilvusLiteServer, operator_collection: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, BackupManifest]:
    """A finished backup of ``operator_collection``; tests copy it before they damage it."""
    destination = tmp_path_factory.mktemp("finished") / "backup"
    return destination, _export(
        backup_task(milvus_server.uri, operator_collection, str(destination))
    ).manifest


def _copy(backup: tuple[Path, BackupManifest], tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in backup[0].iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    return copy


def test_one_changed_byte_makes_the_backup_corrupted_naming_the_file(
    operator_collection: str, finished_backup: tuple[Path, BackupManifest], tmp_path: Path
) -> None:
    copy = _copy(finished_backup, tmp_path)
    part = copy / "part-00001.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    with pytest.raises(BackupCorrupted, match=r"part-00001\.parquet: sha256 differs from the manifest"):
        _verify(verify_task(operator_collection, str(copy)))


def test_a_missing_manifest_an_extra_or_missing_part_or_another_checksum_are_corrupted(
    operator_collection: str, finished_backup: tuple[Path, BackupManifest], tmp_path: Path
) -> None:
    copy = _copy(finished_backup, tmp_path)
    with pytest.raises(BackupCorrupted, match="not the expected"):
        _verify(verify_task(operator_collection, str(copy), expectedChecksum="sha256:" + "0" * 64))
    (copy / "part-00009.parquet").write_bytes((copy / "part-00000.parquet").read_bytes())
    with pytest.raises(BackupCorrupted, match=r"part-00009\.parquet: in .* but not in its manifest\.json"):
        _verify(verify_task(operator_collection, str(copy)))
    (copy / "part-00009.parquet").unlink()
    (copy / "part-00002.parquet").unlink()
    with pytest.raises(BackupCorrupted, match=r"part-00002\.parquet: missing"):
        _verify(verify_task(operator_collection, str(copy)))
    (copy / MANIFEST_NAME).unlink()
    with pytest.raises(BackupCorrupted, match=r"no manifest\.json in .*: not a finished backup"):
        _verify(verify_task(operator_collection, str(copy)))
    (copy / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(BackupCorrupted, match="not a valid backup manifest"):
        _verify(verify_task(operator_collection, str(copy)))


def test_a_collection_of_another_schema_is_incompatible(
    operator_collection: str, finished_backup: tuple[Path, BackupManifest]
) -> None:
    backup = str(finished_backup[0])
    with pytest.raises(BackupIncompatible, match="dimension 128, the collection's 256"):
        _verify(verify_task(operator_collection, backup, target={"dimension": 256}))
    fewer = [field for field in SCALAR_FIELDS if field["name"] != "year"]
    retyped = [{**field, "type": "INT32"} if field["name"] == "year" else field for field in SCALAR_FIELDS]
    with pytest.raises(BackupIncompatible, match="scalar field year, which the collection does not have"):
        _verify(verify_task(operator_collection, backup, target={"scalarFields": fewer}))
    with pytest.raises(BackupIncompatible, match="scalar field year of type INT64, the collection's INT32"):
        _verify(verify_task(operator_collection, backup, target={"scalarFields": retyped}))
    with pytest.raises(BackupIncompatible, match="metricType COSINE, the collection's L2"):
        _verify(verify_task(operator_collection, backup, target={"metricType": "L2"}))


def test_an_export_run_again_returns_the_finished_backup_without_writing(
    milvus_server: MilvusLiteServer, operator_collection: str, tmp_path: Path
) -> None:
    destination = tmp_path / "backup"
    document = backup_task(milvus_server.uri, operator_collection, str(destination))
    first = _export(document)
    written = {path.name: path.stat().st_mtime_ns for path in destination.iterdir()}
    again = _export(document)
    assert (first.reused, again.reused) == (False, True)
    assert again.manifest.checksum == first.manifest.checksum
    assert {path.name: path.stat().st_mtime_ns for path in destination.iterdir()} == written


def test_an_unfinished_attempt_is_overwritten(
    milvus_server: MilvusLiteServer, operator_collection: str, tmp_path: Path
) -> None:
    destination = tmp_path / "backup"
    destination.mkdir()
    for name in ("part-00000.parquet", "part-00007.parquet"):
        (destination / name).write_bytes(b"half a file")
    exported = _export(backup_task(milvus_server.uri, operator_collection, str(destination)))
    assert sorted(path.name for path in destination.glob("part-*")) == [
        f.name for f in exported.manifest.files
    ]
    _verify(verify_task(operator_collection, str(destination), expectedChecksum=exported.manifest.checksum))


def test_row_groups_follow_the_file_size() -> None:
    batches = [
        pa.record_batch({"id": pa.array(range(start, start + 7_000))}) for start in range(0, 63_000, 7_000)
    ]
    groups = list(row_groups(batches, rows_per_file=25_000))
    assert [group.num_rows for group in groups] == [
        10_000,
        10_000,
        5_000,
        10_000,
        10_000,
        5_000,
        10_000,
        3_000,
    ]
    assert pa.concat_tables(groups).column("id").to_pylist() == list(range(63_000))
    assert ROW_GROUP_ROWS == 10_000


# -- files inventory -----------------------------------------------------------------------------


def test_a_files_inventory_counts_records_in_every_format(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for number, (first, rows) in enumerate(((0, 2_500), (2_500, 1_700))):
        ids = range(first, first + rows)
        table = pa.table({"id": pa.array(ids), "text": pa.array([f"t{n}" for n in ids])})
        pq.write_table(table, data / f"articles-{number}.parquet", row_group_size=1_000)
    (data / "articles.jsonl").write_text(
        "".join(
            json.dumps({"id": n, "text": f"text \u00e9 {n}", "n": [n] if n % 2 else None}) + "\n"
            for n in range(321)
        )
    )
    (data / "articles.csv").write_text("id,text\n" + "".join(f'{n},"line {n}, quoted"\n' for n in range(45)))

    def source(path: Path, file_format: str) -> FileSource:
        return FileSource.model_validate(
            {"format": file_format, "path": str(path), "idField": "id", "textFields": ["text"]}
        )

    parquet = count_file_records(source(data / "*.parquet", "Parquet"), {})
    assert (parquet.records, parquet.files) == (4_200, 2)
    assert parquet.bytes == sum(path.stat().st_size for path in data.glob("*.parquet"))
    jsonl = count_file_records(source(data / "articles.jsonl", "JSONL"), {})
    assert (jsonl.records, jsonl.files) == (321, 1)
    csv = count_file_records(source(data / "*.csv", "CSV"), {})
    assert (csv.records, csv.files) == (45, 1)
    with pytest.raises(SourceMisconfigured, match="no file matches"):
        count_file_records(source(data / "*.txt", "JSONL"), {})
    # A key in two files (in two batches: each would overwrite the other) is refused, naming it.
    pq.write_table(pa.table({"id": [4_199, 9_000], "text": ["again", "new"]}), data / "articles-2.parquet")
    with pytest.raises(
        SourceMisconfigured, match=r"1 id values occur in more than one record .*\(e.g. '4199'\)"
    ):
        count_file_records(source(data / "*.parquet", "Parquet"), {})
    (data / "more.jsonl").write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    with pytest.raises(SourceMisconfigured, match="occur in more than one record"):
        count_file_records(source(data / "more.jsonl", "JSONL"), {})


# -- the command ---------------------------------------------------------------------------------


def run_task(document: dict[str, Any], tmp_path: Path, **environment: str) -> tuple[int, str, dict[str, Any]]:
    """`vector-operator task --assignment FILE` as a Job pod runs it: its own process, the result
    read from the termination-message file."""
    assignment = tmp_path / f"task-{uuid.uuid4().hex[:6]}.json"
    assignment.write_text(json.dumps(document))
    termination = tmp_path / "termination-log"
    environ = {**os.environ, **environment, "TERMINATION_MESSAGE_PATH": str(termination)}
    process = subprocess.run(
        [VECTOR_OPERATOR, "task", "--assignment", str(assignment)],
        env=environ, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    message = termination.read_text(encoding="utf-8")
    assert len(message.encode("utf-8")) <= 4096
    assert json.loads(process.stdout.strip().splitlines()[-1]) == json.loads(message), process.stderr
    return process.returncode, process.stderr, json.loads(message)


def test_the_command_backs_up_verifies_and_refuses_a_corrupted_backup(
    milvus_server: MilvusLiteServer, operator_collection: str, tmp_path: Path
) -> None:
    destination = tmp_path / "backup"
    code, log, result = run_task(
        backup_task(milvus_server.uri, operator_collection, str(destination)), tmp_path
    )
    assert code == 0, log
    assert (result["kind"], result["task"], result["status"], result["reason"]) == (
        "TaskResult", "Backup", "Succeeded", "Completed"
    )  # fmt: skip
    manifest = BackupManifest.model_validate_json((destination / MANIFEST_NAME).read_text())
    assert (result["records"], result["files"], result["checksum"]) == (ROWS, 3, manifest.checksum)
    assert result["bytes"] == sum(file.bytes for file in manifest.files)
    assert result["location"] == str(destination)
    assert result["recordsPerSecond"] > 0

    checked = verify_task(operator_collection, str(destination), expectedChecksum=manifest.checksum)
    code, log, result = run_task(checked, tmp_path)
    assert (code, result["task"], result["reason"], result["records"]) == (
        0,
        "Inventory",
        "Completed",
        ROWS,
    ), log

    part = destination / "part-00002.parquet"
    part.write_bytes(part.read_bytes()[:-100] + bytes(100))
    code, log, result = run_task(checked, tmp_path)
    assert (code, result["status"], result["reason"]) == (2, "Failed", "BackupCorrupted"), log
    assert "part-00002.parquet: sha256 differs from the manifest" in result["message"]


def _in_process(document: dict[str, Any], tmp_path: Path, **environment: str) -> tuple[int, dict[str, Any]]:
    termination = tmp_path / "termination-in-process"
    environ = {**environment, "VO_TASK": json.dumps(document), "TERMINATION_MESSAGE_PATH": str(termination)}
    code = task_main(None, environ)
    return code, json.loads(termination.read_text(encoding="utf-8"))


def test_failures_are_classified_and_secrets_redacted(
    milvus_server: MilvusLiteServer, operator_collection: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, result = _in_process(
        backup_task(milvus_server.uri, operator_collection, str(blocker / "backup")), tmp_path
    )
    assert (code, result["reason"]) == (1, "StorageUnavailable"), result

    code, result = _in_process(verify_task(operator_collection, str(tmp_path / "nothing")), tmp_path)
    assert (code, result["task"], result["reason"]) == (2, "Inventory", "BackupCorrupted"), result

    code, result = _in_process({"version": 1, "inventory": {}}, tmp_path)
    assert (code, result["task"], result["reason"]) == (2, "Inventory", "InvalidAssignment"), result

    secret = "s3cr3t-" + uuid.uuid4().hex
    unreachable = {"endpoint": "http://127.0.0.1:1", "region": "eu-1"}  # nothing listens on port 1
    document = backup_task(milvus_server.uri, operator_collection, f"s3://backups/{secret}", s3=unreachable)
    code, result = _in_process(
        document, tmp_path, VO_S3_ACCESS_KEY_ID="AKIATESTS", VO_S3_SECRET_ACCESS_KEY=secret
    )
    assert (code, result["reason"]) == (1, "StorageUnavailable"), result
    assert secret not in json.dumps(result), result
    assert "s3://backups/***" in result["message"], result

    document = backup_task(milvus_server.uri, operator_collection, str(tmp_path / "b"))
    document["backup"]["milvus"]["tokenEnv"] = "MILVUS_TOKEN"
    code, result = _in_process(document, tmp_path)
    assert (code, result["reason"]) == (2, "SourceMisconfigured"), result
    assert "MILVUS_TOKEN" in result["message"]


# -- S3 ------------------------------------------------------------------------------------------


def test_an_export_to_s3_verifies_and_a_files_inventory_counts_there(
    milvus_server: MilvusLiteServer, operator_collection: str, s3_server: S3Server
) -> None:
    bucket = f"backups-{uuid.uuid4().hex[:8]}"
    s3_server.create_bucket(bucket)
    environ = {"VO_S3_ACCESS_KEY_ID": s3_server.access_key, "VO_S3_SECRET_ACCESS_KEY": s3_server.secret_key}
    storage = {"s3": {"endpoint": s3_server.endpoint, "region": s3_server.region}}
    path = f"s3://{bucket}/plans/backup-it"
    exported = _export(backup_task(milvus_server.uri, operator_collection, path, s3=storage["s3"]), environ)
    assert (exported.manifest.rows, exported.location) == (ROWS, path)
    verified = _verify(verify_task(operator_collection, path, storage=storage), environ)
    assert verified.manifest.checksum == exported.manifest.checksum
    again = _export(backup_task(milvus_server.uri, operator_collection, path, s3=storage["s3"]), environ)
    assert (again.reused, again.manifest.checksum) == (True, exported.manifest.checksum)

    source = FileSource.model_validate(
        {
            "format": "Parquet",
            "path": f"{path}/part-*.parquet",
            "idField": "id",
            "textFields": ["title"],
            **storage,
        }
    )
    counted = count_file_records(source, environ)
    assert (counted.records, counted.files, counted.bytes) == (ROWS, 3, exported.bytes)

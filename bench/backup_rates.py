"""`make bench-backup`: how fast a backup is exported, verified and imported back, beside how fast
the model embeds the same rows, on real all-MiniLM-L6-v2 vectors in a Milvus Lite server, to a
local directory and to a SeaweedFS S3 server (both real, on 127.0.0.1).

Every rate is measured by the operator's own code: the backup task (``export_backup``), the
restore's verification (``verify_stored_backup``: every file's SHA-256 and rows) and the restore's
batch (``ImportRun``: the backup's vectors read from Parquet, checked and upserted into a new
collection, never embedded). The embedding rate is bare ``SentenceTransformer.encode`` of the
bench texts. Medians over ``--rounds``; the ratios are taken within this one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.fs as pa_fs
from index_tuning import encode_rate
from text_corpus import DIMENSION, MODEL, corpus, minilm_vectors

from localcluster.milvus_lite import MilvusLiteServer
from localcluster.s3_server import S3Server
from vector_operator.api.kubernetes_types import SecretKeyReference
from vector_operator.api.migration_storage import BackupSource, S3Credentials, S3Storage, StorageLocation
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection.milvus_layout import layout_of
from vector_operator.collection.ownership import Owner
from vector_operator.contract.assignment import (
    S3_ACCESS_KEY_ENV,
    S3_SECRET_KEY_ENV,
    BatchIdentity,
    S3Access,
    Source,
    StorageAccess,
    WorkerAssignment,
)
from vector_operator.contract.backup_manifest import CollectionOrigin
from vector_operator.contract.tasks import BackupTask
from vector_operator.migration.assignments import collection_target, milvus_target
from vector_operator.migration.storage_access import restore_files
from vector_operator.milvus.collections import MilvusCollections
from vector_operator.milvus.connection import MilvusClients, MilvusEndpoint
from vector_operator.worker.backup_export import export_backup
from vector_operator.worker.backup_verify import verify_stored_backup
from vector_operator.worker.vector_import import ImportRun

ALIAS = "bench_backup"
OWNER = Owner("bench", "bench-backup", "bench-uid")
SPEC = VectorCollectionSpec.model_validate(
    {
        "collectionName": ALIAS,
        "dimension": DIMENSION,
        "metricType": "COSINE",
        "index": {"type": "HNSW", "params": {"M": 16, "efConstruction": 100}},
        "searchParams": {"ef": 64},
        "fields": [{"name": "category", "type": "VARCHAR", "maxLength": 64}],
        "embedding": {"model": MODEL, "normalize": True},
    }
)


def fill(milvus: MilvusCollections, rows: int) -> str:
    physical = f"{ALIAS}__v1"
    milvus.create(physical, layout_of(SPEC), OWNER)
    vectors = minilm_vectors(rows)
    with milvus.session("fill") as client:
        for start in range(0, rows, 2000):
            page = vectors[start : start + 2000]
            client.insert(
                physical,
                [
                    {"id": start + i, "vector": v.tolist(), "category": f"c{(start + i) % 10}"}
                    for i, v in enumerate(page)
                ],
            )
        client.flush(physical)
    return physical


def median_rate(rows: int, rounds: int, run: Callable[[int], None]) -> float:
    rates = []
    for round_number in range(rounds):
        started = time.perf_counter()
        run(round_number)
        rates.append(rows / (time.perf_counter() - started))
    return statistics.median(rates)


class Bench:
    def __init__(self, milvus_uri: str, milvus: MilvusCollections, physical: str, rows: int) -> None:
        self.uri, self.milvus, self.physical, self.rows = milvus_uri, milvus, physical, rows
        self.environ: dict[str, str] = {}

    def export(self, destination: StorageAccess) -> None:
        task = BackupTask(
            milvus=milvus_target(SPEC, self.uri),
            collection=collection_target(SPEC, self.physical),
            destination=destination,
            origin=CollectionOrigin(namespace="bench", name="bench-backup", alias=ALIAS),
            index=SPEC.index,
            model=SPEC.embedding,
        )
        exported = export_backup(task, "bench", self.environ)
        assert exported.manifest.rows == self.rows, "the export lost rows"

    def verify(self, backup: StorageAccess) -> None:
        verified = verify_stored_backup(backup, collection_target(SPEC, self.physical), None, self.environ)
        assert verified.manifest.rows == self.rows

    def restore(self, backup: StorageAccess, target: str) -> None:
        self.milvus.create(target, layout_of(SPEC), OWNER)
        store = None
        if backup.s3 is not None:  # the Secret's name only: the keys are in the environment
            key = SecretKeyReference(name="bench-s3", key="key")
            credentials = S3Credentials(access_key_id=key, secret_access_key=key)
            store = S3Storage(endpoint=backup.s3.endpoint, region=backup.s3.region, credentials=credentials)
        location = StorageLocation(path=backup.path, s3=store)
        files = restore_files(BackupSource(location=location), SPEC)
        assignment = WorkerAssignment(
            batch=BatchIdentity(namespace="bench", plan="bench-restore", index=0),
            milvus=milvus_target(SPEC, self.uri),
            collection=collection_target(SPEC, target),
            source=Source(files=files),
            model=SPEC.embedding,
        )
        result = ImportRun(assignment, self.environ, keep_content_hash=True).execute()
        assert result.records.upserted == self.rows, result.records
        self.milvus.drop(target, OWNER)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000, help="vectors in the collection")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each measurement (median)")
    parser.add_argument("--encode-texts", type=int, default=1000, help="texts embedded per round")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as scratch:
        root = Path(scratch)
        server = MilvusLiteServer(data_dir=root / "milvus")
        (root / "milvus").mkdir()
        s3 = S3Server(data_dir=root / "s3")
        (root / "s3").mkdir()
        server.start()
        s3.start()
        try:
            s3.create_bucket("bench")
            milvus = MilvusCollections(MilvusClients(), MilvusEndpoint(uri=server.uri), lambda *_: None)
            physical = fill(milvus, args.rows)
            bench = Bench(server.uri, milvus, physical, args.rows)
            bench.environ = {S3_ACCESS_KEY_ENV: s3.access_key, S3_SECRET_KEY_ENV: s3.secret_key}
            s3_access = S3Access(endpoint=s3.endpoint, region=s3.region)

            def local(n: int) -> StorageAccess:
                return StorageAccess(path=str(root / "backups" / f"r{n}"))

            def remote(n: int) -> StorageAccess:
                return StorageAccess(path=f"s3://bench/backups/r{n}", s3=s3_access)

            rows, rounds = args.rows, args.rounds
            figures = {
                "export to a directory": median_rate(rows, rounds, lambda n: bench.export(local(n))),
                "export to S3": median_rate(rows, rounds, lambda n: bench.export(remote(n))),
                "verify from a directory": median_rate(rows, rounds, lambda n: bench.verify(local(n))),
                "verify from S3": median_rate(rows, rounds, lambda n: bench.verify(remote(n))),
                "import from a directory": median_rate(
                    rows, rounds, lambda n: bench.restore(local(n), f"{ALIAS}__v{n + 2}")
                ),
                "import from S3": median_rate(
                    rows, rounds, lambda n: bench.restore(remote(n), f"{ALIAS}__v{n + 10}")
                ),
            }
            embedding = encode_rate(corpus(args.encode_texts), rounds)
            size = sum(
                info.size
                for info in pa_fs.LocalFileSystem().get_file_info(
                    pa_fs.FileSelector(str(root / "backups" / "r0"))
                )
            )
        finally:
            s3.stop()
            server.stop()
    print(
        f"\n{rows} MiniLM vectors (384 dimensions, one VARCHAR field), {rounds} rounds, medians;"
        f" backup {size / 1e6:.1f} MB"
    )
    print(f"{'':28}{'vectors/s':>12}{'/ embedding':>14}")
    print(f"{'embedding (bare encode)':28}{embedding:>12,.0f}{1.0:>14.1f}")
    for what, rate in figures.items():
        print(f"{what:28}{rate:>12,.0f}{rate / embedding:>14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

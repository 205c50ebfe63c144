"""Exporting a physical collection to a backup directory: Parquet files, then the manifest.

The collection is counted (count(*)) and then read in key order with Milvus's query iterator,
page by page, into ``part-00000.parquet``, ``part-00001.parquet``, ... of at most
``rowsPerFile`` rows each (row groups of ROW_GROUP_ROWS rows; the columns of
:mod:`~vector_operator.worker.backup_schema`). Each file's SHA-256 is computed from the bytes as
they are written, so no file is ever read back or held in memory. ``manifest.json`` is written
last (to a temporary name, then moved), so a directory without one is an unfinished backup.

Vectors stay float32 all the way: Milvus sends FLOAT_VECTOR components as float32 values (pymilvus
widens them to Python floats, which narrow back exactly), and the files store float32.

A Job pod restarted after it finished finds the manifest: when it is a backup of the same
collection that verifies, it is returned as it is. Part files without a manifest are an
unfinished attempt's and are overwritten (those beyond the new export's are deleted).
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq

from vector_operator.api.vectorcollection import VECTOR_FIELD
from vector_operator.contract.backup_manifest import (
    MANIFEST_NAME,
    PART_GLOB,
    BackupFile,
    BackupManifest,
    files_checksum,
    part_name,
)
from vector_operator.contract.tasks import BackupTask
from vector_operator.sources import SourceMisconfigured, SourceUnavailable
from vector_operator.sources.object_store import glob_files, open_store
from vector_operator.worker.backup_schema import backup_schema
from vector_operator.worker.backup_verify import (
    BackupCorrupted,
    BackupIncompatible,
    read_manifest,
    verify_backup,
)
from vector_operator.worker.milvus_collection import (
    CollectionMismatch,
    MilvusCollection,
    MilvusUnavailable,
)

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 10_000
PAGE_BYTES = 8 << 20
"""Vector bytes per query-iterator page: fewer, larger pages export faster (each query has a
fixed cost in Milvus), and a page, widened to Python floats by pymilvus, must stay small."""
MIN_PAGE_ROWS, MAX_PAGE_ROWS = 500, 10_000
PROGRESS_INTERVAL_S = 10.0


class ExportStopped(Exception):
    """The export was asked to stop (SIGTERM) before it finished; no manifest was written."""


class DestinationTaken(Exception):
    """The destination holds the finished backup of another collection; it is never overwritten."""


@dataclass(frozen=True)
class ExportedBackup:
    manifest: BackupManifest
    location: str
    """The backup's directory as the task named it (a local path or s3://bucket/prefix)."""
    seconds: float
    """How long the export (or, when reused, the verification) took."""
    reused: bool = False
    """The destination already held this finished backup: nothing was written."""

    @property
    def bytes(self) -> int:
        return sum(file.bytes for file in self.manifest.files)


class _HashingStream:
    """A writable file for pyarrow that hashes (SHA-256) and counts the bytes it passes on."""

    def __init__(self, sink: pa.NativeFile) -> None:
        self._sink = sink
        self._digest = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        self._digest.update(view)
        self._sink.write(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._sink.close()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class _PartWriter:
    """One Parquet file of the backup, written row group by row group."""

    def __init__(self, filesystem: pa_fs.FileSystem, directory: str, name: str, schema: pa.Schema) -> None:
        self.name = name
        self.rows = 0
        self._stream = _HashingStream(filesystem.open_output_stream(posixpath.join(directory, name)))
        # The vector's components are near-random floats: a dictionary or statistics of them only
        # cost time and bytes. The key's statistics let a reader skip row groups.
        not_vector = [field.name for field in schema if field.name != VECTOR_FIELD]
        self._writer = pq.ParquetWriter(
            self._stream, schema, use_dictionary=not_vector, write_statistics=not_vector
        )

    def write(self, group: pa.Table) -> None:
        self._writer.write_table(group, row_group_size=ROW_GROUP_ROWS)
        self.rows += group.num_rows

    def close(self) -> BackupFile:
        self._writer.close()
        self._stream.close()
        return BackupFile(
            name=self.name, rows=self.rows, bytes=self._stream.size, sha256=self._stream.hexdigest()
        )

    def abandon(self) -> None:
        """Closes what is open after a failure (the file is left unfinished, without a manifest)."""
        try:
            self._writer.close()
        finally:
            self._stream.close()


def row_groups(batches: Iterable[pa.RecordBatch], rows_per_file: int) -> Iterator[pa.Table]:
    """The rows of ``batches``, in order, cut into tables that are each one row group of a part
    file: ROW_GROUP_ROWS rows, fewer where a file of ``rows_per_file`` rows ends, and at the end."""
    pending: list[pa.RecordBatch] = []
    pending_rows = written = 0
    for batch in batches:
        while batch.num_rows:
            wanted = min(ROW_GROUP_ROWS, rows_per_file - written % rows_per_file)
            take = min(batch.num_rows, wanted - pending_rows)
            pending.append(batch.slice(0, take))
            pending_rows += take
            batch = batch.slice(take)
            if pending_rows == wanted:
                # One chunk per column: the file's bytes then do not depend on Milvus's page size.
                yield pa.Table.from_batches(pending).combine_chunks()
                written += pending_rows
                pending, pending_rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending).combine_chunks()


def _record_batches(
    collection: MilvusCollection, schema: pa.Schema, stop: threading.Event | None
) -> Iterator[pa.RecordBatch]:
    """Every entity of ``collection`` as record batches of ``schema``, one per page."""
    dimension = schema.field(VECTOR_FIELD).type.list_size
    for page in collection.entity_pages([field.name for field in schema], page_rows(dimension)):
        if stop is not None and stop.is_set():
            raise ExportStopped(f"the export of {collection.name} was stopped before it finished")
        yield _record_batch(page, schema)


def page_rows(dimension: int) -> int:
    """Rows per page for vectors of ``dimension``: PAGE_BYTES of float32 components, within
    MIN_PAGE_ROWS and MAX_PAGE_ROWS."""
    return max(MIN_PAGE_ROWS, min(MAX_PAGE_ROWS, PAGE_BYTES // (4 * dimension)))


def _record_batch(page: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """One page of Milvus rows as a record batch of ``schema`` (see backup_schema)."""
    arrays: list[pa.Array] = []
    for field in schema:
        if pa.types.is_fixed_size_list(field.type):
            dimension = field.type.list_size
            vectors = np.asarray([row[field.name] for row in page], dtype=np.float32)
            if vectors.shape != (len(page), dimension):
                raise CollectionMismatch(
                    f"Milvus returned vectors of shape {vectors.shape[1:]}, not ({dimension},)"
                )
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dimension))
        elif field.type == pa.json_():
            arrays.append(pa.array([_json_text(row.get(field.name)) for row in page], type=field.type))
        else:
            arrays.append(pa.array([row.get(field.name) for row in page], type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | bytes):  # a server that hands JSON over as its text
        return value.decode() if isinstance(value, bytes) else value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _Progress:
    """Logs rows exported and the rate every PROGRESS_INTERVAL_S."""

    def __init__(self, collection: str, total: int) -> None:
        self._collection, self._total = collection, total
        self._started = self._last = time.monotonic()

    def rows(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_S:
            self._last = now
            log.info(
                "exported %d of %d rows of %s (%.0f rows/s)",
                done, self._total, self._collection, done / max(now - self._started, 1e-9),
            )  # fmt: skip


def _milvus_token(task: BackupTask, environ: Mapping[str, str]) -> str | None:
    name = task.milvus.token_env
    if name is None:
        return None
    if not environ.get(name):
        raise SourceMisconfigured(
            f"environment variable {name} (the Milvus token) is not set: the Job's pod takes it from the"
            " Secret the MigrationPlan names"
        )
    return environ[name]


def _finished_backup(filesystem: pa_fs.FileSystem, directory: str, task: BackupTask) -> ExportedBackup | None:
    """The backup already finished in ``directory`` (a restarted pod's), when it is one of this
    collection that verifies; None when there is none (or a broken one, removed here, so that the
    directory is an unfinished backup again). DestinationTaken when it is another collection's."""
    started = time.monotonic()
    if filesystem.get_file_info(posixpath.join(directory, MANIFEST_NAME)).type != pa_fs.FileType.File:
        return None
    try:
        manifest = read_manifest(filesystem, directory)
        if manifest.collection != task.collection.name:
            raise DestinationTaken(
                f"{task.destination.path} holds the backup of collection {manifest.collection}, not"
                f" {task.collection.name}: a backup never overwrites another one"
            )
        verified = verify_backup(filesystem, directory, task.collection)
    except (BackupCorrupted, BackupIncompatible) as error:
        log.warning(
            "%s holds a backup that does not verify (%s): exporting again", task.destination.path, error
        )
        filesystem.delete_file(posixpath.join(directory, MANIFEST_NAME))
        return None
    log.info(
        "%s already holds the finished backup of %s (%d rows, %s): nothing to export",
        task.destination.path, manifest.collection, manifest.rows, manifest.checksum,
    )  # fmt: skip
    return ExportedBackup(verified.manifest, task.destination.path, time.monotonic() - started, reused=True)


def _write_manifest(filesystem: pa_fs.FileSystem, directory: str, manifest: BackupManifest) -> None:
    """Writes ``manifest.json`` under a temporary name first and then moves it into place, so that
    a manifest that exists is complete."""
    final = posixpath.join(directory, MANIFEST_NAME)
    temporary = f"{final}.tmp"
    with filesystem.open_output_stream(temporary) as stream:
        stream.write(manifest.model_dump_json(by_alias=True, exclude_none=True, indent=2).encode() + b"\n")
    filesystem.move(temporary, final)


class _Export:
    """One export of ``task``'s collection into ``directory`` of ``filesystem``."""

    def __init__(
        self,
        task: BackupTask,
        plan: str,
        filesystem: pa_fs.FileSystem,
        directory: str,
        stop: threading.Event | None,
    ) -> None:
        self._task, self._plan, self._stop = task, plan, stop
        self._filesystem, self._directory = filesystem, directory

    def run(self, collection: MilvusCollection) -> ExportedBackup:
        task, name = self._task, self._task.collection.name
        started = time.monotonic()
        collection.verify()
        target = task.collection
        schema = backup_schema(
            key_type=target.primary_key.type,
            dimension=target.dimension,
            scalar_fields=target.scalar_fields,
            content_hash=collection.has_content_hash,
        )
        collection.flush()  # pages of sealed segments are read many times faster than of growing ones
        total = collection.count()
        log.info("exporting %d rows of %s to %s", total, name, task.destination.path)
        stale = set(glob_files(self._filesystem, posixpath.join(self._directory, PART_GLOB)))
        self._filesystem.create_dir(self._directory, recursive=True)
        files = self._write_parts(_record_batches(collection, schema, self._stop), schema, total)
        exported = sum(file.rows for file in files)
        if exported != total:
            raise MilvusUnavailable(
                f"exported {exported} rows of {name}, but count(*) said {total}: the collection changed"
                " during the export (writes through its alias?); the backup is unfinished and a retry"
                " exports it again"
            )
        for path in sorted(stale - {posixpath.join(self._directory, file.name) for file in files}):
            self._filesystem.delete_file(path)
        manifest = BackupManifest(
            created_at=datetime.now(UTC),
            plan=self._plan,
            origin=task.origin,
            collection=name,
            dimension=target.dimension,
            metric_type=target.metric_type,
            primary_key=target.primary_key,
            scalar_fields=target.scalar_fields,
            content_hash=collection.has_content_hash,
            index=task.index,
            model=task.model,
            rows=exported,
            files=files,
            checksum=files_checksum(files),
        )
        _write_manifest(self._filesystem, self._directory, manifest)
        seconds = time.monotonic() - started
        log.info(
            "exported %d rows of %s in %d files (%d bytes) in %.1f s (%.0f rows/s): %s",
            exported, name, len(files), sum(file.bytes for file in files), seconds,
            exported / max(seconds, 1e-9), manifest.checksum,
        )  # fmt: skip
        return ExportedBackup(manifest, task.destination.path, seconds)

    def _write_parts(
        self, batches: Iterator[pa.RecordBatch], schema: pa.Schema, total: int
    ) -> list[BackupFile]:
        files: list[BackupFile] = []
        part: _PartWriter | None = None
        progress = _Progress(self._task.collection.name, total)
        done = 0
        try:
            for group in row_groups(batches, self._task.rows_per_file):
                if part is None:
                    part = _PartWriter(self._filesystem, self._directory, part_name(len(files)), schema)
                part.write(group)
                done += group.num_rows
                progress.rows(done)
                if part.rows == self._task.rows_per_file:
                    files.append(part.close())
                    part = None
            if part is not None:
                files.append(part.close())
                part = None
        finally:
            if part is not None:
                part.abandon()
        return files


def export_backup(
    task: BackupTask,
    plan: str,
    environ: Mapping[str, str],
    stop: threading.Event | None = None,
) -> ExportedBackup:
    """Exports ``task.collection`` to ``task.destination`` (see the module's doc); ``plan`` is the
    MigrationPlan's name, recorded in the manifest. Between pages it stops when ``stop`` is set
    (ExportStopped). Raises CollectionMismatch, MilvusUnavailable, SourceMisconfigured,
    DestinationTaken, and SourceUnavailable when the destination cannot be read or written."""
    filesystem, directory = open_store(task.destination.path, task.destination.s3, environ)
    token = _milvus_token(task, environ)
    try:
        reused = _finished_backup(filesystem, directory, task)
        if reused is not None:
            return reused
        collection = MilvusCollection(task.milvus, task.collection, token)
        try:
            return _Export(task, plan, filesystem, directory, stop).run(collection)
        finally:
            collection.close()
    except OSError as error:
        raise SourceUnavailable(f"cannot write the backup to {task.destination.path}: {error}") from None

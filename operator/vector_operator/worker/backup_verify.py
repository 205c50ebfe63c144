"""Verifying a backup before anything trusts it: its manifest is read and checked against the
collection it will be restored into (dimension, metric, key, scalar fields), and every file it
lists is read again, streaming, and compared with the manifest (SHA-256, size, rows, columns).
A file missing, changed, or not in the manifest, a checksum that differs: the backup is corrupted
and a restore must not start. The export uses it too, to recognise a backup it already finished
(a Job pod restarted after writing the manifest)."""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import posixpath
import time
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq
from pydantic import ValidationError

from vector_operator.api.vectorcollection import DEFAULT_VARCHAR_KEY_LENGTH, PrimaryKeySpec, PrimaryKeyType
from vector_operator.contract.assignment import CollectionTarget, StorageAccess
from vector_operator.contract.backup_manifest import (
    MANIFEST_NAME,
    PART_GLOB,
    BackupFile,
    BackupManifest,
    files_checksum,
)
from vector_operator.sources import SourceUnavailable
from vector_operator.sources.object_store import glob_files, open_store
from vector_operator.worker.backup_schema import manifest_schema

log = logging.getLogger(__name__)

HASH_CHUNK_BYTES = 8 << 20
"""Bytes read at a time while hashing: memory stays flat whatever a file's size."""
MAX_MANIFEST_BYTES = 64 << 20


class BackupCorrupted(Exception):
    """A backup's manifest is missing or unreadable, or a file differs from it; permanent."""


class BackupIncompatible(Exception):
    """A backup's schema differs from the collection it is to be restored into; permanent."""


@dataclass(frozen=True)
class VerifiedBackup:
    """A backup whose every file matched its manifest."""

    manifest: BackupManifest
    location: str
    """The backup's directory as the task named it (a local path or s3://bucket/prefix)."""
    seconds: float
    """How long reading and hashing took."""

    @property
    def bytes(self) -> int:
        return sum(file.bytes for file in self.manifest.files)


def read_manifest(filesystem: pa_fs.FileSystem, directory: str) -> BackupManifest:
    """The manifest of the backup in ``directory``. BackupCorrupted when there is none or it is not
    a valid manifest; OSError when the store cannot be read."""
    path = posixpath.join(directory, MANIFEST_NAME)
    if filesystem.get_file_info(path).type != pa_fs.FileType.File:
        raise BackupCorrupted(f"no {MANIFEST_NAME} in {directory}: not a finished backup")
    with filesystem.open_input_stream(path) as stream:
        document = stream.read(MAX_MANIFEST_BYTES + 1)
    if len(document) > MAX_MANIFEST_BYTES:
        raise BackupCorrupted(f"{path} is larger than {MAX_MANIFEST_BYTES} bytes: not a backup manifest")
    try:
        return BackupManifest.model_validate_json(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise BackupCorrupted(
            f"{MANIFEST_NAME} in {directory} is not a valid backup manifest: {where}: {first['msg']}"
        ) from None


def _key_length(key: PrimaryKeySpec) -> int:
    return key.max_length or DEFAULT_VARCHAR_KEY_LENGTH


def schema_differences(manifest: BackupManifest, collection: CollectionTarget) -> list[str]:
    """How the backup's schema differs from ``collection``'s (empty when it can be restored there):
    dimension, metric, primary key type, scalar fields by name and type, and VARCHAR lengths that
    shrink (a longer value would be refused halfway through the restore)."""
    problems: list[str] = []
    if manifest.dimension != collection.dimension:
        problems.append(f"dimension {manifest.dimension}, the collection's {collection.dimension}")
    if manifest.metric_type != collection.metric_type:
        problems.append(f"metricType {manifest.metric_type}, the collection's {collection.metric_type}")
    key, target_key = manifest.primary_key, collection.primary_key
    if key.type != target_key.type:
        problems.append(f"primary key type {key.type}, the collection's {target_key.type}")
    elif key.type is PrimaryKeyType.VARCHAR and _key_length(key) > _key_length(target_key):
        problems.append(
            f"primary key maxLength {_key_length(key)}, longer than the collection's"
            f" {_key_length(target_key)}"
        )
    backed_up = {field.name: field for field in manifest.scalar_fields}
    wanted = {field.name: field for field in collection.scalar_fields}
    for name in sorted(backed_up.keys() - wanted.keys()):
        problems.append(f"scalar field {name}, which the collection does not have")
    for name in sorted(wanted.keys() - backed_up.keys()):
        problems.append(f"no scalar field {name}, which the collection has")
    for name in sorted(backed_up.keys() & wanted.keys()):
        field, target = backed_up[name], wanted[name]
        if field.type != target.type:
            problems.append(f"scalar field {name} of type {field.type}, the collection's {target.type}")
        elif field.max_length and target.max_length and field.max_length > target.max_length:
            problems.append(
                f"scalar field {name} of maxLength {field.max_length}, longer than the collection's"
                f" {target.max_length}"
            )
    return problems


def check_compatible(manifest: BackupManifest, collection: CollectionTarget) -> None:
    """BackupIncompatible naming every difference between the backup's schema and the collection's."""
    if problems := schema_differences(manifest, collection):
        raise BackupIncompatible(
            f"the backup of {manifest.collection} cannot be restored into {collection.name}: it has "
            + "; ".join(problems)
        )


def file_sha256(filesystem: pa_fs.FileSystem, path: str) -> tuple[str, int]:
    """The SHA-256 (hex) and size of the file ``path``, read as a stream."""
    digest = hashlib.sha256()
    size = 0
    with filesystem.open_input_stream(path) as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_manifest_itself(manifest: BackupManifest, directory: str, expected_checksum: str | None) -> None:
    """What the manifest must hold together before any file is read."""
    names = [file.name for file in manifest.files]
    if odd := [name for name in names if "/" in name or not fnmatch.fnmatch(name, PART_GLOB)]:
        raise BackupCorrupted(f"{MANIFEST_NAME} in {directory} lists files that are not backup parts: {odd}")
    if len(set(names)) != len(names):
        raise BackupCorrupted(f"{MANIFEST_NAME} in {directory} lists a file twice")
    if (listed := sum(file.rows for file in manifest.files)) != manifest.rows:
        raise BackupCorrupted(
            f"{MANIFEST_NAME} in {directory} says {manifest.rows} rows, but its files hold {listed}"
        )
    if (recomputed := files_checksum(manifest.files)) != manifest.checksum:
        raise BackupCorrupted(
            f"{MANIFEST_NAME} in {directory}: its checksum {manifest.checksum} does not match its file list"
            f" ({recomputed}): the manifest was changed"
        )
    if expected_checksum is not None and manifest.checksum != expected_checksum:
        raise BackupCorrupted(
            f"the backup in {directory} has checksum {manifest.checksum}, not the expected"
            f" {expected_checksum}: another backup was written there, or the files were replaced"
        )


def _check_file(filesystem: pa_fs.FileSystem, directory: str, file: BackupFile, schema: pa.Schema) -> None:
    path = posixpath.join(directory, file.name)
    if filesystem.get_file_info(path).type != pa_fs.FileType.File:
        raise BackupCorrupted(f"{file.name}: missing from {directory} (the manifest lists it)")
    sha256, size = file_sha256(filesystem, path)
    if sha256 != file.sha256 or size != file.bytes:
        raise BackupCorrupted(f"{file.name}: sha256 differs from the manifest (file changed or corrupted)")
    try:
        with filesystem.open_input_file(path) as handle:
            parquet = pq.ParquetFile(handle)
            rows, columns = parquet.metadata.num_rows, parquet.schema_arrow
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise BackupCorrupted(f"{file.name}: not a readable Parquet file ({error})") from None
    if rows != file.rows:
        raise BackupCorrupted(f"{file.name}: holds {rows} rows, the manifest says {file.rows}")
    if not columns.equals(schema):
        raise BackupCorrupted(
            f"{file.name}: its columns ({columns.to_string(show_schema_metadata=False)}) differ from the"
            f" manifest's ({schema.to_string(show_schema_metadata=False)})".replace("\n", ", ")
        )


def verify_backup(
    filesystem: pa_fs.FileSystem,
    directory: str,
    collection: CollectionTarget,
    expected_checksum: str | None = None,
    *,
    location: str | None = None,
) -> VerifiedBackup:
    """Verifies the backup in ``directory`` of ``filesystem`` (see the module's doc) for a restore
    into ``collection``; ``expected_checksum``, when given, is the checksum it must have.
    Raises BackupCorrupted, BackupIncompatible, or OSError when the store cannot be read."""
    started = time.monotonic()
    manifest = read_manifest(filesystem, directory)
    _check_manifest_itself(manifest, directory, expected_checksum)
    check_compatible(manifest, collection)
    listed = {file.name for file in manifest.files}
    present = {
        posixpath.basename(path) for path in glob_files(filesystem, posixpath.join(directory, PART_GLOB))
    }
    if extra := sorted(present - listed):
        raise BackupCorrupted(
            f"{', '.join(extra)}: in {directory} but not in its {MANIFEST_NAME} (files added after the"
            " backup)"
        )
    schema = manifest_schema(manifest)
    for number, file in enumerate(manifest.files, start=1):
        _check_file(filesystem, directory, file, schema)
        log.debug("verified %s (%d of %d)", file.name, number, len(manifest.files))
    return VerifiedBackup(manifest, location or directory, time.monotonic() - started)


def verify_stored_backup(
    storage: StorageAccess,
    collection: CollectionTarget,
    expected_checksum: str | None,
    environ: Mapping[str, str],
) -> VerifiedBackup:
    """:func:`verify_backup` of the backup directory ``storage`` names (local or s3://); a store
    that cannot be read raises SourceUnavailable naming the directory."""
    filesystem, directory = open_store(storage.path, storage.s3, environ)
    try:
        return verify_backup(filesystem, directory, collection, expected_checksum, location=storage.path)
    except OSError as error:
        raise SourceUnavailable(f"cannot read the backup in {storage.path}: {error}") from None

"""How a plan's Jobs reach its files and backups: the API's locations (a PersistentVolumeClaim
directory, an S3 prefix with a Secret's keys) as the worker's contract sees them (a path, the
names of the variables holding the keys), the Secret references the pod takes those variables
from, and the claims it mounts. Pure."""

from __future__ import annotations

import posixpath

from vector_operator.api.migration_storage import BackupSource, S3Storage, StorageLocation, VolumeClaimMount
from vector_operator.api.migrationplan import FileFormat, MigrationPlanSpec
from vector_operator.api.vectorcollection import PRIMARY_KEY_FIELD, VECTOR_FIELD, VectorCollectionSpec
from vector_operator.contract.assignment import (
    S3_ACCESS_KEY_ENV,
    S3_SECRET_KEY_ENV,
    FileSource,
    S3Access,
    StorageAccess,
)
from vector_operator.contract.backup_manifest import PART_GLOB
from vector_operator.migration.batch_jobs import ClaimMount, SecretEnv


def s3_access(s3: S3Storage | None) -> S3Access | None:
    return S3Access(endpoint=s3.endpoint, region=s3.region) if s3 is not None else None


def s3_secrets(s3: S3Storage | None) -> list[SecretEnv]:
    """The key pair's Secret references, as the variables the contract names."""
    if s3 is None:
        return []
    keys = s3.credentials
    return [
        SecretEnv(S3_ACCESS_KEY_ENV, keys.access_key_id.name, keys.access_key_id.key),
        SecretEnv(S3_SECRET_KEY_ENV, keys.secret_access_key.name, keys.secret_access_key.key),
    ]


def claim_mounts(claim: VolumeClaimMount | None, *, read_only: bool) -> tuple[ClaimMount, ...]:
    return (ClaimMount(claim.claim_name, claim.mount_path, read_only),) if claim is not None else ()


def backup_directory(destination: StorageLocation, plan: str, plan_uid: str) -> str:
    """Where a plan's backup goes: a directory of its own under the destination, named after the
    plan and its uid (a plan created again under the same name never overwrites the first's)."""
    return posixpath.join(destination.path, f"{plan}-{plan_uid[:8]}")


def location_access(location: StorageLocation, path: str | None = None) -> StorageAccess:
    """``path`` (default: the location's own) as the worker reaches it."""
    return StorageAccess(path=path or location.path, s3=s3_access(location.s3))


def restore_files(backup: BackupSource, collection: VectorCollectionSpec) -> FileSource:
    """A backup's Parquet files as a files source of precomputed vectors: every scalar field of the
    collection from its own column (the content hash comes along where the files carry it)."""
    fields = {field.name: field.name for field in collection.fields or []}
    return FileSource(
        format=FileFormat.PARQUET,
        path=posixpath.join(backup.location.path, PART_GLOB),
        id_field=PRIMARY_KEY_FIELD,
        vector_field=VECTOR_FIELD,
        fields=fields or None,
        s3=s3_access(backup.location.s3),
        keeps_content_hash=True,
    )


def source_store(spec: MigrationPlanSpec) -> tuple[S3Storage | None, VolumeClaimMount | None]:
    """The store the plan's source files live in (none for an SQL source)."""
    files, backup = spec.source.files, spec.source.backup
    if files is not None:
        return files.s3, files.persistent_volume_claim
    if backup is not None:
        return backup.location.s3, backup.location.persistent_volume_claim
    return None, None

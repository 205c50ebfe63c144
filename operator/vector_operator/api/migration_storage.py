"""Where a MigrationPlan's files live, and its backup: a directory on a PersistentVolumeClaim or
a prefix in an S3-compatible bucket, read and written by the plan's Jobs (never by the operator).

A backup is a directory of Parquet files (`part-00000.parquet`, ...: the primary key, the vector,
every scalar field) and a `manifest.json` written last, holding the collection's schema, index,
embedding model, row count and a SHA-256 checksum of every file; it is the input of a restore
(`source.backup`) as much as an output of a plan's preparation (`spec.backup`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from vector_operator.api.kubernetes_types import OBJECT_NAME_PATTERN, SecretKeyReference
from vector_operator.api.model import ApiModel, Rule, validations

CHECKSUM_PATTERN = r"^sha256:[0-9a-f]{64}$"


class VolumeClaimMount(ApiModel):
    """A PersistentVolumeClaim mounted into the plan's Job pods."""

    claim_name: str = Field(min_length=1, max_length=253, pattern=OBJECT_NAME_PATTERN)
    """Name of the PersistentVolumeClaim, in the plan's namespace."""
    mount_path: str = Field(
        default="/data",
        min_length=2,
        max_length=1024,
        json_schema_extra=validations(
            Rule(rule="self.startsWith('/')", message="mountPath must be an absolute path, e.g. /data")
        ),
    )
    """Where the claim is mounted in the worker container."""


class S3Credentials(ApiModel):
    """The access key pair, each from a Secret key (never in the spec, status or logs)."""

    access_key_id: SecretKeyReference
    """e.g. {name: backups-s3, key: accessKeyId}."""
    secret_access_key: SecretKeyReference
    """e.g. {name: backups-s3, key: secretAccessKey}."""


class S3Storage(ApiModel):
    """An S3-compatible object store (AWS S3, SeaweedFS, Ceph RGW ...), reached by the Jobs."""

    endpoint: str | None = Field(
        default=None,
        max_length=2048,
        json_schema_extra=validations(
            Rule(
                rule="self.startsWith('http://') || self.startsWith('https://')",
                message="s3.endpoint must be a URL such as https://s3.example.com:9000",
            )
        ),
    )
    """The server's URL, e.g. http://seaweedfs.storage.svc:8333; omitted: AWS S3 itself."""
    region: str = Field(default="us-east-1", min_length=1, max_length=64)
    """The bucket's region."""
    credentials: S3Credentials
    """The access key pair."""


def location_rules(where: str, example: str) -> list[Rule]:
    """CEL: one store (s3 or a claim), an s3:// path exactly with s3, a path under the claim."""
    return [
        Rule(
            rule="!has(self.s3) || !has(self.persistentVolumeClaim)",
            message=f"{where} names one store: s3 or persistentVolumeClaim, not both",
        ),
        Rule(
            rule="!has(self.s3) || self.path.startsWith('s3://')",
            message="with s3, path is an s3:// URL such as s3://backups/articles",
            field_path=".path",
        ),
        Rule(
            rule="has(self.s3) || !self.path.startsWith('s3://')",
            message="an s3:// path needs s3 (the endpoint and the credentials)",
            field_path=".path",
        ),
        Rule(
            rule="!has(self.persistentVolumeClaim) || "
            "self.path.startsWith(self.persistentVolumeClaim.mountPath + '/')",
            message=f"path must lie under persistentVolumeClaim.mountPath, e.g. {example}",
            field_path=".path",
        ),
    ]


class StorageLocation(ApiModel):
    """A directory on a PersistentVolumeClaim, or a prefix in an S3-compatible bucket."""

    model_config = ConfigDict(json_schema_extra=validations(*location_rules("a location", "/data/backups")))

    path: str = Field(
        min_length=2,
        max_length=1024,
        json_schema_extra=validations(
            Rule(
                rule="self.startsWith('/') || self.startsWith('s3://')",
                message="path must be an absolute path in the worker (e.g. /data/backups) or an s3:// URL",
            )
        ),
    )
    """An absolute directory under the claim's mountPath, or s3://bucket/prefix."""
    persistent_volume_claim: VolumeClaimMount | None = None
    """The claim holding the directory."""
    s3: S3Storage | None = None
    """The object store of an s3:// path."""


class BackupSpec(ApiModel):
    """Export the collection the plan is about to change before anything changes."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule="has(self.destination) != (has(self.skip) && self.skip)",
                message="backup sets a destination, or skip: true to go without one (not both)",
            )
        )
    )

    destination: StorageLocation | None = None
    """Where the backup goes: it is written to <path>/<plan>-<uid prefix>/ (Parquet files and a
    manifest.json), e.g. path: s3://backups/articles."""
    skip: bool = False
    """InPlace only: change the serving collection with no backup, hence no way back."""


class BackupSource(ApiModel):
    """A backup made by a plan (its status.backup.location), restored into a new physical
    collection: its manifest's checksum and row count are verified before any row is written."""

    location: StorageLocation
    """The backup's own directory (the one holding manifest.json)."""
    checksum: str | None = Field(default=None, pattern=CHECKSUM_PATTERN)
    """The checksum the backup must have (status.backup.checksum of the plan that made it);
    omitted: the manifest's own, which still guards every file."""


class BackupStatus(ApiModel):
    """The backup this plan exported before it changed anything."""

    location: str | None = Field(default=None, max_length=2048)
    """The backup's directory: a path on the claim, or s3://bucket/prefix/<plan>-<uid>."""
    collection: str | None = Field(default=None, max_length=255)
    """The physical collection exported."""
    rows: int | None = Field(default=None, ge=0)
    """Rows exported (the collection's count(*))."""
    files: int | None = Field(default=None, ge=0)
    """Parquet files written."""
    bytes: int | None = Field(default=None, ge=0)
    """Their size."""
    checksum: str | None = Field(default=None, pattern=CHECKSUM_PATTERN)
    """SHA-256 over the manifest's file list (each file's own SHA-256): what a restore checks."""
    rows_per_second: float | None = Field(default=None, ge=0)
    """How fast the export ran."""
    completed_at: datetime | None = None
    """When the manifest was written."""

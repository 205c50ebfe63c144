"""A backup's manifest: what a backup directory holds, written last (so a directory without one
is an unfinished backup) and read first by a restore.

A backup directory holds ``part-00000.parquet``, ``part-00001.parquet``, ... (columns: the
primary key ``id``, the ``vector`` as a fixed-size list of float32, every scalar field, and
``content_hash`` when the collection keeps one) and ``manifest.json``. The checksum is the SHA-256
of the file list, one line per file (``name<TAB>rows<TAB>sha256``), so it changes when any file's
bytes, any row count or the set of files changes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import Field

from vector_operator.api.model import ApiModel
from vector_operator.api.vectorcollection import (
    EmbeddingSpec,
    IndexSpec,
    MetricType,
    PrimaryKeySpec,
    ScalarField,
)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT: Literal["vectors.aios.dev/backup"] = "vectors.aios.dev/backup"
MANIFEST_VERSION: Literal[1] = 1
PART_GLOB = "part-*.parquet"


def part_name(number: int) -> str:
    """The name of a backup's ``number``-th Parquet file."""
    return f"part-{number:05d}.parquet"


class BackupFile(ApiModel):
    name: str = Field(min_length=1, max_length=255)
    """The file's name within the backup directory."""
    rows: int = Field(ge=0)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class CollectionOrigin(ApiModel):
    """Which VectorCollection the backup was taken of."""

    namespace: str = Field(default="", max_length=63)
    name: str = Field(min_length=1, max_length=253)
    alias: str = Field(min_length=1, max_length=255)
    """The Milvus alias applications query."""


class BackupManifest(ApiModel):
    format: Literal["vectors.aios.dev/backup"] = MANIFEST_FORMAT
    version: Literal[1] = MANIFEST_VERSION
    created_at: datetime
    plan: str = Field(default="", max_length=253)
    """The MigrationPlan that made it."""
    origin: CollectionOrigin
    collection: str = Field(min_length=1, max_length=255)
    """The physical collection exported."""
    dimension: int = Field(ge=1)
    metric_type: MetricType
    primary_key: PrimaryKeySpec
    scalar_fields: list[ScalarField] = Field(default_factory=list)
    content_hash: bool = False
    """Whether the files carry the content_hash column."""
    index: IndexSpec | None = None
    model: EmbeddingSpec
    rows: int = Field(ge=0)
    files: list[BackupFile]
    checksum: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")


def files_checksum(files: Sequence[BackupFile]) -> str:
    """``sha256:<hex>`` over the file list, in order."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\t{file.rows}\t{file.sha256}\n".encode())
    return f"sha256:{digest.hexdigest()}"

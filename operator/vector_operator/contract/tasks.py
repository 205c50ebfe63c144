"""A plan's one-off tasks, each one Job (`vector-operator task`): **Backup** exports a physical
collection to Parquet and a manifest; **Inventory** counts the records of a files source, or
verifies a backup (every file's checksum and row count against its manifest, the manifest's
schema against the collection) before a restore writes anything.

The controller hands the assignment over in ``$VO_TASK`` (JSON, camelCase) and reads the
:class:`TaskResult` from the pod's termination message, like a batch's. Credentials travel as the
names of environment variables, never as values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from vector_operator.api.model import ApiModel
from vector_operator.api.vectorcollection import EmbeddingSpec, IndexSpec
from vector_operator.contract.assignment import (
    BatchIdentity,
    CollectionTarget,
    FileSource,
    MilvusTarget,
    StorageAccess,
)
from vector_operator.contract.backup_manifest import CollectionOrigin
from vector_operator.contract.documents import load_document
from vector_operator.contract.result import (
    TERMINATION_MESSAGE_LIMIT,
    Reason,
    ResultModel,
    Status,
)

TASK_ENV = "VO_TASK"
TASK_VERSION: Literal[1] = 1
ROWS_PER_FILE = 100_000
"""Rows per Parquet file of a backup (each file one row group per 10,000 rows)."""


class TaskKind(StrEnum):
    BACKUP = "Backup"
    INVENTORY = "Inventory"


class BackupTask(ApiModel):
    """Export ``collection`` to ``destination`` (the backup's own directory)."""

    milvus: MilvusTarget
    collection: CollectionTarget
    """The physical collection to export, with the schema the plan pinned."""
    destination: StorageAccess
    origin: CollectionOrigin
    index: IndexSpec | None = None
    model: EmbeddingSpec
    rows_per_file: int = Field(default=ROWS_PER_FILE, ge=1, le=10_000_000)


class InventoryTask(ApiModel):
    """Count a files source's records, or verify a backup before it is restored."""

    files: FileSource | None = None
    backup: StorageAccess | None = None
    """A backup directory (holding manifest.json)."""
    expected_checksum: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    """The checksum the backup must have (else the manifest's own is checked against the files)."""
    collection: CollectionTarget | None = None
    """For a backup: the collection it will be restored into (its schema must match)."""

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.files is None) == (self.backup is None):
            raise ValueError("an inventory reads exactly one of files and backup")
        if self.backup is not None and self.collection is None:
            raise ValueError("a backup inventory needs the collection it will be restored into")
        return self


class TaskAssignment(ApiModel):
    version: Literal[1] = TASK_VERSION
    plan: BatchIdentity
    """The plan (index 0: a plan runs each task once)."""
    backup: BackupTask | None = None
    inventory: InventoryTask | None = None

    @model_validator(mode="after")
    def _one_task(self) -> Self:
        if (self.backup is None) == (self.inventory is None):
            raise ValueError("a task is exactly one of backup and inventory")
        return self

    @property
    def kind(self) -> TaskKind:
        return TaskKind.BACKUP if self.backup is not None else TaskKind.INVENTORY


class InvalidTask(Exception):
    """The task assignment is missing or does not validate."""


def load_task(path: Path | None, environ: Mapping[str, str]) -> TaskAssignment:
    """The task from ``path`` when given, else from ``$VO_TASK``."""
    return load_document(
        TaskAssignment, path, environ, env=TASK_ENV, what="task", versions=(1,), refused=InvalidTask
    )


class TaskResult(ResultModel):
    """What a task did; fits a termination message."""

    version: Literal[1] = 1
    kind: Literal["TaskResult"] = "TaskResult"
    task: TaskKind
    status: Status
    reason: Reason
    message: str = ""
    records: int = 0
    """Backup: rows exported. Inventory: records in the files, or rows in the backup."""
    files: int = 0
    bytes: int = 0
    checksum: str | None = None
    """The backup's checksum (written, or verified)."""
    location: str | None = None
    """The backup's directory."""
    records_per_second: float = 0.0
    completed_at: datetime | None = None

    def to_termination_message(self, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
        result = self.model_copy()
        while True:
            document = result.model_dump_json(by_alias=True, exclude_none=True)
            if len(document.encode("utf-8")) <= limit or not result.message:
                return document
            result.message = result.message[: len(result.message) // 2]

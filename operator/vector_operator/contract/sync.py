"""The contract between the MigrationPlan controller and its sync worker (``vector-operator sync``,
one replica of a Deployment the plan owns): the assignment it runs, and the state it keeps.

The assignment travels like a batch Job's (JSON in ``$VO_SYNC_ASSIGNMENT`` or a file; credentials
only by the name of the environment variable holding them). The state is durable where the data
is: a JSON property (:data:`SYNC_STATE_PROPERTY`) of the physical collection the worker writes.
The worker writes it after each pass's changes are in the collection, so a restarted worker (or
operator) resumes from it; a pass interrupted before that is applied again, and since every write
is an upsert by key or a delete by key, applying it twice gives the same collection.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, ValidationError, model_validator

from vector_operator.api.migration_sync import ChangeCapture
from vector_operator.api.migrationplan import EncodeBatching
from vector_operator.api.model import ApiModel
from vector_operator.api.vectorcollection import EmbeddingSpec
from vector_operator.contract.assignment import (
    CollectionTarget,
    EnvVarName,
    MilvusTarget,
    SqlSource,
    check_work_fits,
)
from vector_operator.contract.documents import load_document

SYNC_ASSIGNMENT_ENV = "VO_SYNC_ASSIGNMENT"
"""The environment variable that holds the sync assignment as JSON."""
SYNC_ASSIGNMENT_VERSION: Literal[1] = 1
SYNC_STATE_PROPERTY = "vectors.aios.dev/sync"
"""The physical collection's property holding the :class:`SyncState` as JSON."""
MAX_ERROR_CHARS = 1024

WatermarkKind = Literal["integer", "numeric", "text", "timestamp", "lsn"]


class Watermark(ApiModel):
    """A change column's value as it travels: typed, so that it binds back as the column's own
    type and the database compares it (a timestamp as a timestamp, text under its collation). With
    logical decoding, the slot's position (kind lsn)."""

    kind: WatermarkKind
    value: str = Field(max_length=256)

    @classmethod
    def of(cls, value: object) -> Watermark:
        """The watermark of a value a database returned."""
        if isinstance(value, bool):
            return cls(kind="integer", value=str(int(value)))
        if isinstance(value, int):
            return cls(kind="integer", value=str(value))
        if isinstance(value, Decimal):
            return cls(kind="numeric", value=format(value, "f"))
        if isinstance(value, float):
            return cls(kind="numeric", value=repr(value))
        if isinstance(value, datetime.datetime):
            return cls(kind="timestamp", value=value.isoformat())
        if isinstance(value, datetime.date):
            return cls(kind="timestamp", value=datetime.datetime.combine(value, datetime.time()).isoformat())
        return cls(kind="text", value=str(value))

    def python(self) -> int | Decimal | str | datetime.datetime:
        """The value to bind in a comparison with the change column."""
        if self.kind == "integer":
            return int(self.value)
        if self.kind == "numeric":
            return Decimal(self.value)
        if self.kind == "timestamp":
            return datetime.datetime.fromisoformat(self.value)
        return self.value

    def __str__(self) -> str:
        return self.value


_SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")


def slot_name(plan_uid: str) -> str:
    """The replication slot of the plan with Kubernetes uid ``plan_uid``: ``vo_`` and the uid
    without dashes. A uid (unlike a name) is never reused, so a plan recreated under the same name
    never inherits the position of the slot its predecessor left behind."""
    name = "vo_" + plan_uid.strip().lower().replace("-", "")
    if not _SLOT_NAME.fullmatch(name) or name == "vo_":
        raise ValueError(f"{plan_uid!r} is not a Kubernetes uid: a slot name needs [a-z0-9_], at most 63")
    return name


class PlanReference(ApiModel):
    """The plan this worker syncs for; echoed in its logs and its state."""

    namespace: str = Field(default="", max_length=63)
    name: str = Field(min_length=1, max_length=253)
    uid: str = Field(min_length=1, max_length=64)


class SyncSettings(ApiModel):
    """How changes are found and applied."""

    continuous: bool
    """True: follow the source for good (phase Syncing). False: a catch-up before the cutover; the
    worker runs until the operator stops it, like a continuous one."""
    capture: ChangeCapture = ChangeCapture.POLLING
    change_column: str | None = Field(default=None, max_length=255)
    """Polling: the column every write raises. None: every pass is a full check."""
    soft_delete_column: str | None = Field(default=None, max_length=255)
    """Rows with a value here are deleted from the collection."""
    slot: str | None = Field(default=None, max_length=63, pattern=r"^[a-z0-9_]+$")
    """LogicalDecoding: the replication slot the plan created when it planned."""
    interval_s: float = Field(gt=0, le=86400)
    """Seconds between the starts of two passes."""
    full_check_interval_s: float | None = Field(default=None, gt=0)
    """Seconds between full checks (besides the catch-up's first pass); None: never, unless there
    is no other way to find changes (no change column, no slot)."""
    delete_unknown_keys: bool = False
    """A full check deletes keys the collection holds and the source does not (hard deletes).
    Only when the collection holds this source alone (BlueGreen), never in a shared one."""
    coherence_sample: int = Field(default=16, ge=0, le=1000)
    """Re-embedded rows of each pass whose stored vector is compared with a reference encoding of
    their text (coherence, as a batch measures it); 0: none."""
    initial_watermark: Watermark | None = None
    """Where the first pass starts when the collection holds no state of this plan's: the change
    column's maximum when the plan planned (so writes made during the backfill are caught up)."""


class SyncAssignment(ApiModel):
    """What the sync worker runs."""

    version: Literal[1] = SYNC_ASSIGNMENT_VERSION
    plan: PlanReference
    milvus: MilvusTarget
    collection: CollectionTarget
    source: SqlSource
    model: EmbeddingSpec
    encode: EncodeBatching = Field(default_factory=EncodeBatching)
    sync: SyncSettings
    health_file: str | None = Field(default=None, max_length=1024)
    """Touched after every pass that reached the source and Milvus (a liveness probe may watch it)."""

    @property
    def soft_delete_column(self) -> str | None:
        """The soft-delete column, which the sync settings and the source may both name."""
        return self.sync.soft_delete_column or self.source.soft_delete_column

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        named = {self.sync.soft_delete_column, self.source.soft_delete_column} - {None}
        if len(named) > 1:
            raise ValueError(
                f"sync.softDeleteColumn ({self.sync.soft_delete_column}) and source.softDeleteColumn"
                f" ({self.source.soft_delete_column}) must name the same column"
            )
        check_work_fits(self.encode, self.model, self.collection, (self.source.fields or {}).keys())
        return self


class SyncState(ApiModel):
    """The sync's durable progress, kept in the physical collection's SYNC_STATE_PROPERTY."""

    plan_uid: str = Field(max_length=64)
    """The plan whose worker wrote it (a later plan's worker starts from its own watermark)."""
    watermark: Watermark | None = None
    """The change column's value (or the slot's LSN) up to which changes are applied."""
    synced_through: datetime.datetime | None = None
    """Every change committed before this moment is applied: the start of the last pass that
    completed."""
    passes: int = Field(default=0, ge=0)
    changes_applied: int = Field(default=0, ge=0)
    deletes_applied: int = Field(default=0, ge=0)
    reembedded: int = Field(default=0, ge=0)
    reused: int = Field(default=0, ge=0)
    skipped: int = Field(default=0, ge=0)
    busy_seconds: float = Field(default=0.0, ge=0)
    """Seconds spent in passes that applied at least one change (for the apply rate)."""
    full_check_at: datetime.datetime | None = None
    """When the last full check finished."""
    coherence: float | None = Field(default=None, ge=-1, le=1)
    """Mean coherence of the rows the last pass that re-embedded any sampled (-1..1)."""
    coherence_min: float | None = Field(default=None, ge=-1, le=1)
    """Their lowest coherence."""
    last_error: str | None = Field(default=None, max_length=MAX_ERROR_CHARS)
    """The last pass's error while passes fail; cleared by a pass that completes."""
    last_error_reason: str | None = Field(default=None, max_length=64)
    """SourceUnavailable, SourceMisconfigured, MilvusUnavailable, ..."""
    updated_at: datetime.datetime | None = None

    @property
    def records_per_second(self) -> float | None:
        applied = self.changes_applied + self.deletes_applied
        return round(applied / self.busy_seconds, 1) if self.busy_seconds > 0 else None

    def to_property(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    @classmethod
    def from_property(cls, text: str | None) -> SyncState | None:
        """The state in a collection property; None when absent or unreadable (a fresh start)."""
        if not text:
            return None
        try:
            return cls.model_validate(json.loads(text))
        except (ValueError, ValidationError):
            return None


class InvalidSyncAssignment(Exception):
    """The sync assignment is missing or does not validate; the message says what to fix."""


def load_sync_assignment(path: Path | None, environ: Mapping[str, str] | None) -> SyncAssignment:
    """The assignment from ``path`` when given, else from ``$VO_SYNC_ASSIGNMENT``."""
    return load_document(
        SyncAssignment,
        path,
        environ or {},
        env=SYNC_ASSIGNMENT_ENV,
        what="sync assignment",
        versions=(SYNC_ASSIGNMENT_VERSION,),
        refused=InvalidSyncAssignment,
    )


__all__ = [
    "SYNC_ASSIGNMENT_ENV",
    "SYNC_STATE_PROPERTY",
    "EnvVarName",
    "InvalidSyncAssignment",
    "PlanReference",
    "SyncAssignment",
    "SyncSettings",
    "SyncState",
    "Watermark",
    "load_sync_assignment",
    "slot_name",
]

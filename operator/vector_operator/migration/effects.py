"""What a MigrationPlan step decided: the new typed status, the effects to apply (in order, each
idempotent, all before the status is written), the Events to post once the status is written, and
whether to look again at once (the phase moved on). Plain data; adapters carry the effects out,
on the Milvus the plan's target names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vector_operator.api.migrationplan import MigrationPlanStatus
from vector_operator.api.rollbackpolicy import Execution
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection.milvus_layout import CollectionLayout
from vector_operator.collection.ownership import Owner
from vector_operator.contract.tasks import TaskKind
from vector_operator.migration.batch_plan import BatchPlan
from vector_operator.migration.history import BatchRecord


@dataclass(frozen=True)
class StoreBatchPlan:
    """Keep the batch boundaries in the plan's ConfigMap (created once, owned by the plan)."""

    plan: BatchPlan


@dataclass(frozen=True)
class PinTarget:
    """Keep the target's spec, as the plan will use it, in the plan's ConfigMap."""

    generation: int
    spec: VectorCollectionSpec


@dataclass(frozen=True)
class CreatePhysical:
    """Create (if missing) and load the physical collection the plan fills, owned by the target."""

    name: str
    layout: CollectionLayout
    owner: Owner


@dataclass(frozen=True)
class LaunchJob:
    """Create one batch's Job (an existing one of that name is adopted)."""

    index: int
    manifest: dict[str, Any]


@dataclass(frozen=True)
class LaunchTask:
    """Create the plan's Job of one task (backup, inventory); an existing one is adopted."""

    kind: TaskKind
    manifest: dict[str, Any]


@dataclass(frozen=True)
class CreatePlan:
    """Create a MigrationPlan (a restore of this plan's backup); an existing one is kept."""

    manifest: dict[str, Any]


@dataclass(frozen=True)
class DeleteJobs:
    names: tuple[str, ...]


@dataclass(frozen=True)
class SwingAlias:
    """Point the alias at ``to``, only if it points at ``expected`` (compare-and-swap)."""

    alias: str
    to: str
    expected: str | None


@dataclass(frozen=True)
class UpdateTarget:
    """Make the VectorCollection's status current at once: what the alias serves, what it served
    before, and the exact entity count of the collection it serves now."""

    physical: str
    previous: str | None


@dataclass(frozen=True)
class DropPhysical:
    """Drop a physical collection, only if ``owner`` owns it and the alias does not serve it."""

    alias: str
    name: str
    owner: Owner


@dataclass(frozen=True)
class RecordHistory:
    """Append finished batches to the plan's history (a ConfigMap it owns)."""

    records: tuple[BatchRecord, ...]


@dataclass(frozen=True)
class RunSyncWorker:
    """Create the plan's sync worker Deployment (owned by the plan) if missing, and set its replicas
    (0 while the sync is paused)."""

    manifest: dict[str, Any]
    replicas: int


@dataclass(frozen=True)
class StopSyncWorker:
    """Delete the plan's sync worker Deployment (and its pod); nothing when it is gone."""

    name: str


@dataclass(frozen=True)
class CreateChangeSlot:
    """Create the plan's PostgreSQL logical replication slot (kept if it exists), before any row
    is read, so that every change from then on is in it."""

    slot: str


@dataclass(frozen=True)
class RecordExecution:
    """Append an execution to a RollbackPolicy's status, once (optimistic concurrency)."""

    policy: str
    execution: Execution


Effect = (
    StoreBatchPlan
    | PinTarget
    | CreatePhysical
    | LaunchJob
    | LaunchTask
    | CreatePlan
    | DeleteJobs
    | SwingAlias
    | UpdateTarget
    | DropPhysical
    | RecordHistory
    | RecordExecution
    | RunSyncWorker
    | StopSyncWorker
    | CreateChangeSlot
)


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    warning: bool = False


@dataclass
class Decision:
    status: MigrationPlanStatus
    effects: list[Effect] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    again: bool = False

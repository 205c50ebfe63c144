"""What one step of a MigrationPlan sees: the plan, its typed status and everything the phase it is
in needs (the batch plan, the target, Milvus, its Jobs and their results, the policies guarding
it, the plans sharing its target), gathered by the controller's observer before anything is
decided. Plain data: the decisions read it, nothing here does I/O."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from vector_operator.api.conditions import Condition
from vector_operator.api.migrationplan import (
    MigrationPhase,
    MigrationPlanSpec,
    MigrationPlanStatus,
    Throughput,
)
from vector_operator.api.rollbackpolicy import RollbackPolicySpec
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection.ownership import Owner
from vector_operator.contract.result import WorkerResult
from vector_operator.contract.sync import SyncState
from vector_operator.contract.tasks import TaskKind, TaskResult
from vector_operator.migration.batch_plan import BatchPlan


@dataclass(frozen=True)
class PlanIdentity:
    namespace: str
    name: str
    uid: str
    generation: int | None
    created: datetime.datetime
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """Something observed that stops this step: a condition reason and a message for a human.
    ``warning`` False marks an expected wait (a Normal Event)."""

    reason: str
    message: str
    warning: bool = True


@dataclass(frozen=True)
class Target:
    """The VectorCollection the plan fills, as it is now."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: VectorCollectionSpec
    conditions: tuple[Condition, ...] = ()
    reindexing: str | None = None  # a re-index copying or validating now: what it builds

    @property
    def owner(self) -> Owner:
        return Owner(namespace=self.namespace, name=self.name, uid=self.uid)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


@dataclass(frozen=True)
class PinnedSpec:
    """The target's spec as the plan pinned it when it prepared (kept in the plan's ConfigMap)."""

    generation: int
    spec: VectorCollectionSpec


@dataclass(frozen=True)
class Probe:
    """Collection-level figures measured on one physical collection."""

    entities: int
    retrievability: float | None = None
    recall_at_k: float | None = None
    search_latency_p95_ms: float | None = None


@dataclass(frozen=True)
class MilvusView:
    """The alias and its physical collections on the target's Milvus."""

    alias_target: str | None
    physicals: Mapping[str, Owner | None]  # the alias's `<alias>__v<N>` collections and their owners
    probe: Probe | None = None  # of the plan's new collection, when the phase measures it


class JobState(StrEnum):
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"


@dataclass(frozen=True)
class BatchJob:
    """One of the plan's Jobs, with the result its last pod wrote."""

    name: str
    index: int
    round: int  # the spec.retry it was launched under
    state: JobState
    result: WorkerResult | None = None
    unschedulable: str | None = None  # the scheduler's message, for a pod left pending a while


@dataclass(frozen=True)
class TaskJob:
    """One of the plan's one-off task Jobs (backup, inventory), with the result its pod wrote."""

    kind: TaskKind
    name: str
    state: JobState
    result: TaskResult | None = None
    unschedulable: str | None = None


@dataclass(frozen=True)
class SyncView:
    """The sync worker as the step finds it: its Deployment, and the state its passes left in the
    physical collection (None before its first pass, or a state of another plan's worker)."""

    state: SyncState | None
    worker_exists: bool = False
    worker_replicas: int = 0  # as its spec asks
    worker_template_hash: str | None = None  # the pod template the operator last gave it
    worker_available: bool = False
    worker_message: str | None = None  # why its pod does not run, when Kubernetes says
    worker_failing: bool = False  # its pod waits on a failure (CrashLoopBackOff, an image pull ...)
    worker_since: datetime.datetime | None = None  # when its Deployment was created


@dataclass(frozen=True)
class GuardingPolicy:
    name: str
    spec: RollbackPolicySpec


@dataclass(frozen=True)
class SiblingPlan:
    """Another MigrationPlan with the same target."""

    name: str
    created: datetime.datetime
    phase: MigrationPhase | None
    retrying: bool = False  # a Failed plan whose spec.retry asks for another round
    ready: bool = True  # past its approval (or needs none): it would prepare now
    throughput: Throughput | None = None  # the pace its Jobs measured


@dataclass(frozen=True)
class Installation:
    """What the operator's installer decided: the worker image, command and the allow-lists plan
    authors are held to, and how Jobs are run."""

    worker_image: str
    worker_command: tuple[str, ...]
    allowed_images: frozenset[str]
    allowed_service_accounts: frozenset[str]
    default_milvus_uri: str | None = None
    worker_service_account: str | None = None  # Jobs run as this when a plan names none

    @property
    def sync_command(self) -> tuple[str, ...]:
        """The sync worker's command (same image, same entry point)."""
        return self._subcommand("sync")

    @property
    def task_command(self) -> tuple[str, ...]:
        """The command of a plan's one-off tasks (backup, inventory)."""
        return self._subcommand("task")

    def _subcommand(self, name: str) -> tuple[str, ...]:
        """The worker command with its subcommand ``worker`` replaced by ``name``."""
        if self.worker_command and self.worker_command[-1] == "worker":
            return (*self.worker_command[:-1], name)
        return (*self.worker_command, name)


@dataclass(frozen=True)
class PlanObservation:
    plan: PlanIdentity
    spec: MigrationPlanSpec
    status: MigrationPlanStatus
    now: datetime.datetime
    installation: Installation
    problem: Problem | None = None
    batch_plan: BatchPlan | None = None
    scanned: bool = False  # batch_plan comes from a scan of the source in this very step
    pinned: PinnedSpec | None = None
    target: Target | None = None
    milvus: MilvusView | None = None
    jobs: tuple[BatchJob, ...] = ()
    policies: tuple[GuardingPolicy, ...] = ()
    siblings: tuple[SiblingPlan, ...] = ()
    sync: SyncView | None = None
    tasks: Mapping[TaskKind, TaskJob] = field(default_factory=dict)
    schedulable_cpus: float | None = None
    """The allocatable CPUs of the Ready nodes a worker pod may run on; None when unknown."""

    @property
    def collection_spec(self) -> VectorCollectionSpec | None:
        """The spec the plan works with: the pinned one once it prepared."""
        if self.pinned is not None:
            return self.pinned.spec
        return self.target.spec if self.target is not None else None

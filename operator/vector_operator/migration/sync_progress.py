"""The sync worker, kept running and reported: its Deployment (created once, scaled to 0 while the
sync is paused), and what its passes left in the collection, copied into ``status.sync`` with the
lag computed now. Shared by the catch-up (CuttingOver) and phase Syncing."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from vector_operator.api.migration_sync import SyncStatus
from vector_operator.migration.effects import RunSyncWorker
from vector_operator.migration.job_launch import sync_manifest
from vector_operator.migration.observation import Problem
from vector_operator.migration.step import Step
from vector_operator.migration.sync_worker import TEMPLATE_HASH_ANNOTATION, deployment_name, max_lag_s

WORKER_DOWN = "SyncWorkerUnavailable"
WORKER_START_GRACE_S = 120.0
"""How long a new worker's pod may take to start (scheduling, the image, the model) before the
sync reports it unavailable; a pod that fails (CrashLoopBackOff ...) is reported at once."""


@dataclass(frozen=True)
class SyncReading:
    """What the sync shows now: None for lag before the worker's first pass of this plan."""

    lag_s: float | None
    max_lag_s: float
    error_reason: str | None
    error: str | None

    @property
    def caught_up(self) -> bool:
        return self.lag_s is not None and self.lag_s <= self.max_lag_s


def run_worker(step: Step, replicas: int = 1) -> bool:
    """The sync worker's Deployment with ``replicas``; False when the step is blocked instead."""
    status, spec = step.status, step.obs.collection_spec
    assert spec is not None  # the observer reports a missing target before these phases
    milvus_uri = spec.milvus.uri or step.obs.installation.default_milvus_uri
    if milvus_uri is None:
        step.blocked(Problem("MilvusNotConfigured", "no Milvus: set spec.milvus.uri or --milvus-uri"))
        return False
    try:
        manifest = sync_manifest(step.obs, status, spec, milvus_uri, replicas)
    except ValidationError as error:
        step.blocked(Problem("InvalidAssignment", f"cannot build the sync worker: {error}"))
        return False
    view = step.obs.sync
    if view is None or not view.worker_exists:
        step.event(
            "SyncWorkerStarted", f"Deployment {deployment_name(step.obs.plan.name)} applies the changes"
        )
    wanted = manifest["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]
    if view is not None and view.worker_exists and view.worker_template_hash != wanted:
        step.event(
            "SyncWorkerUpdated",
            "the sync settings or the worker image changed: the worker restarts with them",
        )
    if (
        view is None
        or not view.worker_exists
        or (view.worker_replicas, view.worker_template_hash) != (replicas, wanted)
    ):
        step.effect(RunSyncWorker(manifest, replicas))
    sync = status.sync or SyncStatus()
    sync.worker = deployment_name(step.obs.plan.name)
    status.sync = sync
    return True


def read_sync(step: Step) -> SyncReading:
    """Copies the worker's state into status.sync; the lag as of now."""
    limit = max_lag_s(step.spec.sync)
    view = step.obs.sync
    state = view.state if view is not None else None
    sync = step.status.sync or SyncStatus()
    step.status.sync = sync
    if state is None or state.plan_uid != step.obs.plan.uid:
        return SyncReading(None, limit, None, None)
    lag = None
    if state.synced_through is not None:
        lag = round(max(0.0, (step.obs.now - state.synced_through).total_seconds()), 1)
    sync.watermark = str(state.watermark) if state.watermark is not None else None
    sync.synced_through = state.synced_through.replace(microsecond=0) if state.synced_through else None
    sync.lag_seconds = lag
    sync.changes_applied, sync.deletes_applied = state.changes_applied, state.deletes_applied
    sync.reembedded, sync.reused, sync.skipped = state.reembedded, state.reused, state.skipped
    sync.records_per_second = state.records_per_second
    sync.coherence, sync.coherence_min = state.coherence, state.coherence_min
    sync.full_check_at = state.full_check_at.replace(microsecond=0) if state.full_check_at else None
    sync.last_error = state.last_error
    return SyncReading(lag, limit, state.last_error_reason, state.last_error)


def lag_problem(step: Step, reading: SyncReading) -> tuple[str, str]:
    """Why the sync is not caught up: a reason and a message for a human."""
    view = step.obs.sync
    if reading.error is not None:
        return reading.error_reason or "SyncFailing", f"the sync worker's passes fail: {reading.error}"
    if view is not None and view.worker_exists and not view.worker_available:
        age = (step.obs.now - view.worker_since).total_seconds() if view.worker_since else None
        if not view.worker_failing and age is not None and age < WORKER_START_GRACE_S:
            return "CatchingUp", f"the sync worker {deployment_name(step.obs.plan.name)} is starting"
        why = f": {view.worker_message}" if view.worker_message else ""
        return WORKER_DOWN, f"the sync worker {deployment_name(step.obs.plan.name)} is not running{why}"
    if reading.lag_s is None:
        return "CatchingUp", "waiting for the sync worker's first pass"
    return (
        "LagAboveMaxLag",
        f"the collection is {reading.lag_s:.0f}s behind its source, above maxLag ({step.spec.sync.max_lag})",
    )

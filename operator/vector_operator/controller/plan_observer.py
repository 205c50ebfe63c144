"""Observe: everything one MigrationPlan step needs, read fresh from the API server, Milvus and the
source, for the phase the plan is in and nothing more (a finished plan with nothing due reads
nothing). What cannot be read now becomes a Problem the decision reports."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from vector_operator.api.migrationplan import MigrationPhase
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.collection.milvus_layout import layout_of
from vector_operator.contract.result import Status
from vector_operator.contract.tasks import TaskKind
from vector_operator.controller.context import OperatorContext
from vector_operator.kube import jobs, nodes, plan_config, plans, policies, sync_workers, targets
from vector_operator.kube.secrets import SecretReader, SecretUnavailable
from vector_operator.migration import job_sizing, plan_tasks, schedule, sync_worker
from vector_operator.migration.batch_plan import BatchPlan
from vector_operator.migration.observation import JobState, MilvusView, PlanObservation, Probe, Problem
from vector_operator.milvus.collections import MilvusCollections
from vector_operator.milvus.connection import MilvusEndpoint, MilvusUnavailable
from vector_operator.milvus.endpoints import MilvusNotConfigured, endpoint_for
from vector_operator.sources import SourceMisconfigured, SourceUnavailable
from vector_operator.sources.sql_changes import change_watermark
from vector_operator.sources.sql_keys import PlanningRefused, plan_sql_batches

POST_CUTOVER_SAMPLE = 20
# errors an observation may meet: the plan waits, with the error class's name as its Progressing reason
REPORTED_BY_NAME = (
    SecretUnavailable,
    MilvusNotConfigured,
    MilvusUnavailable,
    SourceMisconfigured,
    SourceUnavailable,
)


class Unobservable(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass(frozen=True)
class Observed:
    plan: plans.StoredPlan
    observation: PlanObservation
    endpoint: MilvusEndpoint | None


class _Gatherer:
    def __init__(self, context: OperatorContext, plan: plans.StoredPlan, now: datetime.datetime) -> None:
        self.context, self.plan, self.now = context, plan, now
        self.namespace, self.name = plan.identity.namespace, plan.identity.name
        self.endpoint: MilvusEndpoint | None = None
        self.found: dict[str, Any] = {}

    def config(self) -> None:
        stored = plan_config.read_config(self.context.core, self.namespace, self.name)
        self.found.update(batch_plan=stored.batch_plan, pinned=stored.pinned)

    def target(self) -> None:
        found = targets.read_target(self.context.custom, self.namespace, self.plan.spec.target_ref.name)
        if found is None:
            name = self.plan.spec.target_ref.name
            message = (
                f"VectorCollection {name} does not exist in {self.namespace}: create it, or point"
                " targetRef at an existing one"
            )
            raise Unobservable(Problem("TargetNotFound", message))
        self.found["target"] = found

    def spec(self) -> VectorCollectionSpec:
        pinned, target = self.found.get("pinned"), self.found.get("target")
        if pinned is not None:
            return pinned.spec  # type: ignore[no-any-return]
        if target is None:
            self.target()
            target = self.found["target"]
        return target.spec  # type: ignore[no-any-return]

    def milvus(self, probe: str | None = None, sample: int = 0, flush: bool = False) -> None:
        spec = self.spec()
        reader = SecretReader(self.context.core, self.namespace)
        self.endpoint = endpoint_for(spec.milvus, self.context.settings.default_milvus_uri, reader)
        milvus = MilvusCollections(
            self.context.clients, self.endpoint, self.context.metrics.observe_milvus_call
        )
        observed = milvus.observe(spec.collection_name)
        measured = None
        if probe is not None and probe in observed.physicals:
            if flush:
                milvus.flush(probe)
            figures = milvus.validation_probe(probe, layout_of(spec), sample)
            measured = Probe(
                figures.entities, figures.retrievability, figures.recall_at_k, figures.search_latency_p95_ms
            )
        owners = {name: physical.owner for name, physical in observed.physicals.items()}
        self.found["milvus"] = MilvusView(observed.alias_target, owners, measured)

    def jobs(self) -> None:
        identity = self.plan.identity
        self.found["jobs"] = jobs.observe_jobs(
            self.context.batch, self.context.core, self.namespace, identity.name, identity.uid, self.now
        )

    def policies(self) -> None:
        self.found["policies"] = policies.guarding_policies(
            self.context.custom, self.namespace, self.name, self.plan.identity.labels
        )

    def siblings(self) -> None:
        self.found["siblings"] = tuple(plans.siblings(self.context.custom, self.plan))

    def nodes(self) -> None:
        template = self.plan.spec.batching.pod_template
        selector = (template.node_selector if template is not None else None) or {}
        self.found["schedulable_cpus"] = nodes.schedulable_cpus(self.context.core, selector)

    def tasks(self) -> None:
        identity = self.plan.identity
        self.found["tasks"] = jobs.observe_tasks(
            self.context.batch, self.context.core, self.namespace, identity.name, identity.uid, self.now
        )

    def scan(self) -> None:
        """The source's batches, when the ConfigMap does not hold them yet: a scan of the table, or
        the count of the plan's inventory Job (files and backups live where only Jobs reach)."""
        self.config()
        if self.found["batch_plan"] is not None:
            return
        batching, status = self.plan.spec.batching, self.plan.status
        jobs_at_once = job_sizing.concurrency(batching, self.found.get("schedulable_cpus"))
        pace = job_sizing.pace(batching, job_sizing.measured_pace(status.throughput, self.found["siblings"]))

        def size(records: int) -> int:
            return job_sizing.records_per_job(batching, records, jobs_at_once, pace)

        sql = self.plan.spec.source.sql
        if sql is None:
            self.target()
            self.tasks()
            inventory = self.found["tasks"].get(TaskKind.INVENTORY)
            result = inventory.result if inventory is not None else None
            if (
                result is not None
                and result.status is Status.SUCCEEDED
                and inventory.state is JobState.COMPLETE
            ):
                counted = BatchPlan.of_records(result.records, size(result.records))
                self.found.update(batch_plan=counted, scanned=True)
            return
        url = SecretReader(self.context.core, self.namespace)(sql.url_secret_ref)

        timeouts = self.context.settings.source_timeouts
        watermark = None
        if sync_worker.needs_watermark(self.plan.spec):  # before the scan: a change after it is caught up
            assert self.plan.spec.sync.change_column is not None
            watermark = change_watermark(url, sql.table, self.plan.spec.sync.change_column, timeouts)
        batches = plan_sql_batches(url, sql.table, sql.primary_key, size, timeouts)
        self.found.update(batch_plan=dataclasses.replace(batches, watermark=watermark), scanned=True)

    def sync(self) -> None:
        """The sync worker's Deployment, and the state its passes left in the collection."""
        physical = self.plan.status.new_physical_collection
        state = None
        if self.endpoint is not None and physical is not None:
            milvus = MilvusCollections(
                self.context.clients, self.endpoint, self.context.metrics.observe_milvus_call
            )
            state = milvus.sync_state(physical)
        worker = sync_workers.observe(
            self.context.apps, self.context.core, self.namespace, sync_worker.deployment_name(self.name)
        )
        self.found["sync"] = dataclasses.replace(worker, state=state)


def _reads(gatherer: _Gatherer) -> list[Callable[[], object]]:
    """What the plan's phase reads, in order."""
    spec, status, now, g = gatherer.plan.spec, gatherer.plan.status, gatherer.now, gatherer
    phase, new = status.phase or MigrationPhase.PENDING, status.new_physical_collection
    if schedule.abort_requested(spec, status):
        return []  # recorded first, run on the next round
    if schedule.rollback_running(status):
        # Milvus only where there is a collection of this plan's to revert from or drop
        fills = new is not None and new != status.previous_physical_collection
        return [g.config, g.target, g.milvus, g.jobs] if fills else [g.jobs]
    if phase in (MigrationPhase.PENDING, MigrationPhase.PLANNING):
        return [g.siblings, g.nodes, g.scan]  # the Jobs' size depends on the other two
    if phase is MigrationPhase.PREPARING:
        backup = (
            [g.tasks]
            if plan_tasks.backup_wanted(spec) and not (status.backup and status.backup.completed_at)
            else []
        )
        return [g.config, g.target, g.milvus, g.siblings, *backup]
    if phase in (MigrationPhase.GENERATING, MigrationPhase.PAUSED):
        return [g.config, g.spec, g.jobs, g.policies]
    if phase is MigrationPhase.VALIDATING:
        return [g.config, partial(g.milvus, new, spec.quality.sample_size, flush=True), g.policies, g.jobs]
    if phase is MigrationPhase.CUTTING_OVER:
        reads: list[Callable[[], object]] = [g.config, g.milvus, g.policies]
        return [*reads, g.sync] if sync_worker.needs_sync(spec) else reads
    if phase is MigrationPhase.SYNCING:
        probe = new if schedule.probe_due(status, now, g.context.settings.probe_interval_s) else None
        return [g.config, g.target, partial(g.milvus, probe, POST_CUTOVER_SAMPLE), g.policies, g.sync]
    if schedule.retry_requested(spec, status):
        return [g.config, g.siblings]
    if schedule.window_open(status, now) or schedule.retirement_due(spec, status, now):
        probe = new if schedule.probe_due(status, now, g.context.settings.probe_interval_s) else None
        return [g.config, g.target, partial(g.milvus, probe, POST_CUTOVER_SAMPLE), g.policies]
    return []


def observe(context: OperatorContext, namespace: str, name: str) -> Observed | None:
    """The plan and what its phase needs; None when the plan is gone or being deleted."""
    body = plans.read_plan(context.custom, namespace, name)
    if body is None:
        return None
    plan = plans.parse_plan(body)
    if plan.deleting:
        return None
    now = datetime.datetime.now(datetime.UTC)
    base = PlanObservation(plan.identity, plan.spec, plan.status, now, context.settings.installation())
    gatherer = _Gatherer(context, plan, now)
    try:
        for read in _reads(gatherer):
            read()
    except Unobservable as error:
        return Observed(plan, dataclasses.replace(base, problem=error.problem), gatherer.endpoint)
    except PlanningRefused as error:
        return Observed(plan, dataclasses.replace(base, problem=Problem(error.reason, str(error))), None)
    except REPORTED_BY_NAME as error:
        problem = Problem(type(error).__name__, str(error))
        return Observed(plan, dataclasses.replace(base, problem=problem), gatherer.endpoint)
    return Observed(plan, dataclasses.replace(base, **gatherer.found), gatherer.endpoint)

"""Apply: carries a decision's effects out, in order, through the adapters. Every effect is
idempotent, so a step repeated after a crash (or a conflict on the status write) does no harm."""

from __future__ import annotations

from collections.abc import Sequence

from vector_operator.controller.context import OperatorContext
from vector_operator.kube import jobs, plan_config, plan_history, plans, policies, sync_workers, targets
from vector_operator.kube.plans import StoredPlan
from vector_operator.kube.secrets import SecretReader
from vector_operator.migration.effects import (
    CreateChangeSlot,
    CreatePhysical,
    CreatePlan,
    DeleteJobs,
    DropPhysical,
    Effect,
    LaunchJob,
    LaunchTask,
    PinTarget,
    RecordExecution,
    RecordHistory,
    RunSyncWorker,
    StopSyncWorker,
    StoreBatchPlan,
    SwingAlias,
    UpdateTarget,
)
from vector_operator.milvus.collections import AliasMoved, MilvusCollections
from vector_operator.milvus.connection import MilvusEndpoint
from vector_operator.sources import pg_logical


class EffectRefused(Exception):
    """An effect cannot be carried out as decided; ``reason`` goes to the Progressing condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _milvus(context: OperatorContext, endpoint: MilvusEndpoint | None) -> MilvusCollections:
    if endpoint is None:  # the observer reaches Milvus in every phase that decides a Milvus effect
        raise EffectRefused("MilvusNotObserved", "a Milvus effect was decided without observing Milvus")
    return MilvusCollections(context.clients, endpoint, context.metrics.observe_milvus_call)


def _apply_one(
    context: OperatorContext, plan: StoredPlan, endpoint: MilvusEndpoint | None, effect: Effect
) -> None:
    namespace, name, uid = plan.identity.namespace, plan.identity.name, plan.identity.uid
    match effect:
        case StoreBatchPlan(batch_plan):
            try:
                plan_config.store_batch_plan(context.core, namespace, name, uid, batch_plan)
            except plan_config.BatchPlanTooLarge as error:
                raise EffectRefused("TooManyBatches", str(error)) from None
        case PinTarget(generation, spec):
            plan_config.pin_target(context.core, namespace, name, generation, spec)
        case CreatePhysical(physical, layout, owner):
            _milvus(context, endpoint).create(physical, layout, owner)
        case LaunchJob(_, manifest) | LaunchTask(_, manifest):
            jobs.create_job(context.batch, namespace, manifest)
        case CreatePlan(manifest):
            plans.create_plan(context.custom, namespace, manifest)
        case DeleteJobs(names):
            jobs.delete_jobs(context.batch, namespace, names)
        case SwingAlias(alias, to, expected):
            try:
                _milvus(context, endpoint).swing_alias(alias, to, expected)
            except AliasMoved as error:
                raise EffectRefused("AliasMoved", str(error)) from None
        case UpdateTarget(physical, previous):
            entities = _milvus(context, endpoint).count(physical)
            targets.update_target_status(
                context.custom, namespace, plan.spec.target_ref.name, physical, previous, entities
            )
        case DropPhysical(alias, physical, owner):
            milvus = _milvus(context, endpoint)
            if milvus.alias_target(alias) != physical:  # never what applications query
                milvus.drop(physical, owner)
        case RecordExecution(policy, execution):
            policies.record_execution(context.custom, namespace, policy, execution)
        case RecordHistory(records):
            plan_history.record_history(context.core, namespace, name, uid, records)
        case RunSyncWorker(manifest, replicas):
            sync_workers.run(context.apps, namespace, manifest, replicas)
        case StopSyncWorker(worker):
            sync_workers.stop(context.apps, namespace, worker)
        case CreateChangeSlot(slot):
            sql = plan.spec.source.sql
            if sql is None:
                raise EffectRefused("UnsupportedSource", "logical decoding needs source.sql")
            url = SecretReader(context.core, namespace)(sql.url_secret_ref)
            try:
                pg_logical.create_slot(url, slot, context.settings.source_timeouts)
            except pg_logical.LogicalDecodingUnavailable as error:
                raise EffectRefused("LogicalDecodingUnavailable", str(error)) from None


def apply_effects(
    context: OperatorContext, plan: StoredPlan, endpoint: MilvusEndpoint | None, effects: Sequence[Effect]
) -> None:
    for effect in effects:
        _apply_one(context, plan, endpoint, effect)

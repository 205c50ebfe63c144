"""The plan's sync worker: one replica of an apps/v1 Deployment the plan owns, running
``vector-operator sync`` from the Jobs' image with their security context and credentials, on the
physical collection the plan fills. A Deployment, not a Job per tick: the model loads once.

``strategy: Recreate`` so that two workers never apply changes to one collection at once (an old
pod is gone before a new one starts)."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from vector_operator.api.migration_sync import ChangeCapture, SyncMode, SyncSpec
from vector_operator.api.migrationplan import MigrationMode, MigrationPlanSpec
from vector_operator.api.resource import API_VERSION
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.contract.sync import (
    SYNC_ASSIGNMENT_ENV,
    PlanReference,
    SyncAssignment,
    SyncSettings,
    Watermark,
    slot_name,
)
from vector_operator.migration.assignments import collection_target, milvus_target, sql_source
from vector_operator.migration.batch_jobs import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MAX_NAME,
    PLAN_LABEL,
    JobSettings,
    SecretEnv,
    plan_label_value,
    worker_container,
    worker_pod_spec,
)
from vector_operator.rollback.triggers import parse_duration

TEMPLATE_HASH_ANNOTATION = "vectors.aios.dev/template-hash"
"""The hash of the pod template the operator last gave the Deployment: a plan whose sync settings
changed (or an operator with another worker image) rolls the worker once, by it."""
COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENT = "sync-worker"
SUFFIX = "-sync"
COHERENCE_SAMPLE = 16
"""At most this many re-embedded rows per pass are checked for coherence (quality.sampleSize if
smaller): a pass's check costs a reference encoding of them."""
DEFAULT_RESOURCES: dict[str, Any] = {"requests": {"cpu": "500m"}}
"""The sync worker's resources when the plan sets none: it waits most of the time, so it holds half
a CPU rather than the one a batch Job does (which the auto sizing of other plans' Jobs counts)."""


def needs_sync(spec: MigrationPlanSpec) -> bool:
    """Whether the plan runs a sync worker: an SQL source, and a catch-up or a continuous sync."""
    return spec.source.sql is not None and (spec.sync.mode is SyncMode.CONTINUOUS or spec.sync.catch_up)


def continuous(spec: MigrationPlanSpec) -> bool:
    return spec.source.sql is not None and spec.sync.mode is SyncMode.CONTINUOUS


def needs_watermark(spec: MigrationPlanSpec) -> bool:
    """Whether planning records the change column's maximum for the catch-up to start from."""
    return (
        needs_sync(spec)
        and spec.sync.capture is ChangeCapture.POLLING
        and spec.sync.change_column is not None
    )


def needs_slot(spec: MigrationPlanSpec) -> bool:
    return needs_sync(spec) and spec.sync.capture is ChangeCapture.LOGICAL_DECODING


def deployment_name(plan: str) -> str:
    """`<plan>-sync`, cut and made unique with a hash when too long for a label value."""
    if len(plan) + len(SUFFIX) <= MAX_NAME:
        return plan + SUFFIX
    digest = hashlib.sha256(plan.encode()).hexdigest()[:8]
    return f"{plan[: MAX_NAME - len(SUFFIX) - 9].rstrip('-.')}-{digest}{SUFFIX}"


def max_lag_s(sync: SyncSpec) -> float:
    return parse_duration(sync.max_lag).total_seconds()


def _settings(spec: MigrationPlanSpec, plan_uid: str, initial: Watermark | None) -> SyncSettings:
    sync = spec.sync
    deletes = sync.deletes
    full_check = deletes.full_check_interval if deletes is not None else None
    return SyncSettings(
        continuous=sync.mode is SyncMode.CONTINUOUS,
        capture=sync.capture,
        change_column=sync.change_column,
        soft_delete_column=deletes.soft_delete_column if deletes is not None else None,
        slot=slot_name(plan_uid) if sync.capture is ChangeCapture.LOGICAL_DECODING else None,
        interval_s=max(parse_duration(sync.interval).total_seconds(), 1.0),
        full_check_interval_s=parse_duration(full_check).total_seconds() if full_check else None,
        delete_unknown_keys=spec.mode is MigrationMode.BLUE_GREEN,
        coherence_sample=min(spec.quality.sample_size, COHERENCE_SAMPLE),
        initial_watermark=initial,
    )


def sync_assignment(
    *,
    namespace: str,
    plan: str,
    plan_uid: str,
    plan_spec: MigrationPlanSpec,
    collection_spec: VectorCollectionSpec,
    milvus_uri: str,
    physical: str,
    initial_watermark: Watermark | None,
) -> dict[str, Any]:
    sql = plan_spec.source.sql
    assert sql is not None  # needs_sync
    assignment = SyncAssignment(
        plan=PlanReference(namespace=namespace, name=plan, uid=plan_uid),
        milvus=milvus_target(collection_spec, milvus_uri),
        collection=collection_target(collection_spec, physical),
        source=sql_source(plan_spec, sql),
        model=collection_spec.embedding,
        encode=plan_spec.batching.encode,
        sync=_settings(plan_spec, plan_uid, initial_watermark),
    )
    validated = SyncAssignment.model_validate(assignment.model_dump(mode="json", by_alias=True))
    out: dict[str, Any] = validated.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def sync_deployment(
    *,
    plan: str,
    plan_uid: str,
    assignment: dict[str, Any],
    secrets: list[SecretEnv],
    settings: JobSettings,
    plan_spec: MigrationPlanSpec,
    replicas: int,
) -> dict[str, Any]:
    labels = {MANAGED_BY_LABEL: MANAGED_BY, PLAN_LABEL: plan_label_value(plan), COMPONENT_LABEL: COMPONENT}
    owner = {"apiVersion": API_VERSION, "kind": "MigrationPlan", "name": plan, "uid": plan_uid}
    container = worker_container(assignment, secrets, settings, assignment_env=SYNC_ASSIGNMENT_ENV)
    container["resources"] = copy.deepcopy(DEFAULT_RESOURCES)  # the plan's podTemplate.resources win
    pod_spec = worker_pod_spec(container, settings, plan_spec.batching.pod_template, restart_policy="Always")
    pod_spec["terminationGracePeriodSeconds"] = 30
    template = {"metadata": {"labels": labels}, "spec": pod_spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(plan),
            "labels": labels,
            "annotations": {TEMPLATE_HASH_ANNOTATION: template_hash(template)},
            "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {PLAN_LABEL: labels[PLAN_LABEL], COMPONENT_LABEL: COMPONENT}},
            "template": template,
        },
    }


def template_hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]

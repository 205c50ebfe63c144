"""The Job manifest of one batch, from the observation: the plan's assignment over the pinned
target spec, credentials by Secret reference, the admitted image, the installation's command."""

from __future__ import annotations

import dataclasses
from typing import Any

from vector_operator.api.migrationplan import MigrationPlanStatus
from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.migration import admission
from vector_operator.migration.assignments import batch_assignment
from vector_operator.migration.batch_jobs import (
    MILVUS_TOKEN_ENV,
    SOURCE_URL_ENV,
    ClaimMount,
    JobSettings,
    SecretEnv,
    batch_job,
)
from vector_operator.migration.batch_plan import BatchPlan
from vector_operator.migration.observation import PlanObservation
from vector_operator.migration.storage_access import claim_mounts, s3_secrets, source_store
from vector_operator.migration.sync_worker import sync_assignment, sync_deployment


def milvus_secrets(collection: VectorCollectionSpec) -> list[SecretEnv]:
    """The Milvus token's Secret reference, when the collection names one."""
    ref = collection.milvus.secret_ref
    return [SecretEnv(MILVUS_TOKEN_ENV, ref.name, ref.key)] if ref is not None else []


def source_secrets(observation: PlanObservation) -> list[SecretEnv]:
    """The source's credentials: the database URL, or the S3 key pair of the files or backup."""
    sql = observation.spec.source.sql
    if sql is not None:
        return [SecretEnv(SOURCE_URL_ENV, sql.url_secret_ref.name, sql.url_secret_ref.key)]
    return s3_secrets(source_store(observation.spec)[0])


def _secrets(observation: PlanObservation, collection: VectorCollectionSpec) -> list[SecretEnv]:
    return [*source_secrets(observation), *milvus_secrets(collection)]


def job_settings(
    observation: PlanObservation, collection: VectorCollectionSpec, claims: tuple[ClaimMount, ...]
) -> JobSettings:
    """How the plan's Jobs run: the admitted image and service account, the Milvus CA, ``claims``."""
    tls = collection.milvus.tls
    return JobSettings(
        image=admission.worker_image(observation.spec, observation.installation),
        command=observation.installation.worker_command,
        service_account=admission.service_account(observation.spec, observation.installation),
        backoff_limit=observation.spec.batching.backoff_limit,
        milvus_ca=tls.ca_secret_ref if tls is not None else None,
        claims=claims,
    )


def _settings(observation: PlanObservation, collection: VectorCollectionSpec) -> JobSettings:
    claim = source_store(observation.spec)[1]
    return job_settings(observation, collection, claim_mounts(claim, read_only=True))


def batch_manifest(
    observation: PlanObservation,
    status: MigrationPlanStatus,
    batches: BatchPlan,
    index: int,
    collection: VectorCollectionSpec,
    milvus_uri: str,
) -> dict[str, Any]:
    """The Job of batch ``index``. Raises pydantic's ValidationError when the assignment cannot be
    built."""
    plan, physical = observation.plan, status.new_physical_collection
    assert physical is not None  # named when the plan prepared
    assignment = batch_assignment(
        namespace=plan.namespace,
        plan=plan.name,
        index=index,
        plan_spec=observation.spec,
        collection_spec=collection,
        milvus_uri=milvus_uri,
        physical=physical,
        key_range=batches.key_range(index),
        start_batch_size=status.throughput.encode_batch_size if status.throughput is not None else None,
    )
    return batch_job(
        plan=plan.name,
        plan_uid=plan.uid,
        index=index,
        round_=status.observed_retry or 0,
        assignment=assignment,
        secrets=_secrets(observation, collection),
        settings=_settings(observation, collection),
        overrides=observation.spec.batching.pod_template,
    )


def sync_manifest(
    observation: PlanObservation,
    status: MigrationPlanStatus,
    collection: VectorCollectionSpec,
    milvus_uri: str,
    replicas: int,
) -> dict[str, Any]:
    """The plan's sync worker Deployment, on the collection the plan fills. Raises pydantic's
    ValidationError when the assignment cannot be built."""
    plan, physical = observation.plan, status.new_physical_collection
    assert physical is not None  # named when the plan prepared
    batches = observation.batch_plan
    assignment = sync_assignment(
        namespace=plan.namespace,
        plan=plan.name,
        plan_uid=plan.uid,
        plan_spec=observation.spec,
        collection_spec=collection,
        milvus_uri=milvus_uri,
        physical=physical,
        initial_watermark=batches.watermark if batches is not None else None,
    )
    settings = dataclasses.replace(
        _settings(observation, collection), command=observation.installation.sync_command
    )
    return sync_deployment(
        plan=plan.name,
        plan_uid=plan.uid,
        assignment=assignment,
        secrets=_secrets(observation, collection),
        settings=settings,
        plan_spec=observation.spec,
        replicas=replicas,
    )

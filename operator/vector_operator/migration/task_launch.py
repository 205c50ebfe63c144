"""The Jobs of a plan's one-off tasks (`vector-operator task`): the inventory of a files or backup
source (counted, or verified, before the plan is split into batches) and the backup of the
collection the plan is about to change. One Job per task and plan, named `<plan>-inventory` and
`<plan>-backup`, owned by the plan, with the batches' image, security context and pod overrides.
Pure."""

from __future__ import annotations

import dataclasses
from typing import Any

from vector_operator.api.vectorcollection import VectorCollectionSpec
from vector_operator.contract.assignment import BatchIdentity
from vector_operator.contract.backup_manifest import CollectionOrigin
from vector_operator.contract.tasks import TASK_ENV, BackupTask, InventoryTask, TaskAssignment, TaskKind
from vector_operator.migration.assignments import collection_target, milvus_target, plan_source
from vector_operator.migration.batch_jobs import (
    CONTAINER,
    TASK_LABEL,
    JobSettings,
    bounded_name,
    plan_job,
    worker_container,
)
from vector_operator.migration.job_launch import job_settings, milvus_secrets, source_secrets
from vector_operator.migration.observation import PlanObservation
from vector_operator.migration.storage_access import (
    backup_directory,
    claim_mounts,
    location_access,
    s3_secrets,
    source_store,
)

TASK_BACKOFF_LIMIT = 3
EXIT_PERMANENT = 2
"""The worker's exit code for a failure only a change to the spec or the data fixes."""


def task_job_name(plan: str, kind: TaskKind) -> str:
    return bounded_name(plan, f"-{kind.value.lower()}")


def _task_job(
    observation: PlanObservation,
    kind: TaskKind,
    assignment: TaskAssignment,
    secrets: list[Any],
    settings: JobSettings,
) -> dict[str, Any]:
    plan = observation.plan
    settings = dataclasses.replace(
        settings, command=observation.installation.task_command, backoff_limit=TASK_BACKOFF_LIMIT
    )
    document = assignment.model_dump(mode="json", by_alias=True, exclude_none=True)
    job = plan_job(
        name=task_job_name(plan.name, kind),
        plan=plan.name,
        plan_uid=plan.uid,
        labels={TASK_LABEL: kind.value.lower()},
        container=worker_container(document, secrets, settings, assignment_env=TASK_ENV),
        settings=settings,
        overrides=observation.spec.batching.pod_template,
    )
    # A task that failed for good (a corrupted backup, a wrong path) is not tried again.
    job["spec"]["podFailurePolicy"] = {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [EXIT_PERMANENT]},
            }
        ]
    }
    return job


def inventory_job(observation: PlanObservation, collection: VectorCollectionSpec) -> dict[str, Any]:
    """The Job that counts a files source's records, or verifies a backup (every file's checksum
    and rows, its schema against ``collection``) before anything is created."""
    spec, plan = observation.spec, observation.plan
    backup = spec.source.backup
    if backup is not None:
        inventory = InventoryTask(
            backup=location_access(backup.location),
            expected_checksum=backup.checksum,
            collection=collection_target(collection, collection.collection_name),
        )
    else:
        inventory = InventoryTask(files=plan_source(spec, collection).files)
    assignment = TaskAssignment(
        plan=BatchIdentity(namespace=plan.namespace, plan=plan.name, index=0), inventory=inventory
    )
    claim = source_store(spec)[1]
    settings = job_settings(observation, collection, claim_mounts(claim, read_only=True))
    return _task_job(observation, TaskKind.INVENTORY, assignment, source_secrets(observation), settings)


def backup_job(
    observation: PlanObservation, collection: VectorCollectionSpec, serving: str, milvus_uri: str
) -> dict[str, Any]:
    """The Job that exports ``serving`` (what the alias serves now) to the plan's backup directory."""
    spec, plan, target = observation.spec, observation.plan, observation.target
    assert target is not None  # Preparing observes it
    destination = spec.backup.destination if spec.backup is not None else None
    assert destination is not None  # backup_wanted
    task = BackupTask(
        milvus=milvus_target(collection, milvus_uri),
        collection=collection_target(collection, serving),
        destination=location_access(destination, backup_directory(destination, plan.name, plan.uid)),
        origin=CollectionOrigin(namespace=plan.namespace, name=target.name, alias=collection.collection_name),
        index=collection.index,
        model=collection.embedding,
    )
    assignment = TaskAssignment(
        plan=BatchIdentity(namespace=plan.namespace, plan=plan.name, index=0), backup=task
    )
    secrets = [*s3_secrets(destination.s3), *milvus_secrets(collection)]
    settings = job_settings(
        observation, collection, claim_mounts(destination.persistent_volume_claim, read_only=False)
    )
    return _task_job(observation, TaskKind.BACKUP, assignment, secrets, settings)

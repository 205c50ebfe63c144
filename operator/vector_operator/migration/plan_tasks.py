"""A plan's one-off tasks, decided: the inventory that counts a files source's records (or verifies
a backup) before the plan is split into batches, and the backup of the serving collection before
the plan changes anything. Each runs one Job; its failure fails the plan with nothing changed.
Pure."""

from __future__ import annotations

from pydantic import ValidationError

from vector_operator.api.migration_storage import BackupStatus
from vector_operator.api.migrationplan import MigrationPlanSpec
from vector_operator.contract.result import Status
from vector_operator.contract.tasks import TaskKind, TaskResult
from vector_operator.migration.effects import LaunchTask
from vector_operator.migration.observation import JobState, Problem, TaskJob
from vector_operator.migration.step import Step
from vector_operator.migration.storage_access import backup_directory
from vector_operator.migration.task_launch import backup_job, inventory_job


def _failure(job: TaskJob) -> tuple[str, str]:
    """Why a finished task Job failed: its worker's reason and message, or the Job's own."""
    result = job.result
    if result is not None and result.status is Status.FAILED:
        return result.reason.value, result.message
    if result is None:
        return "TaskFailed", f"Job {job.name} failed without a result (see kubectl logs job/{job.name})"
    return "", ""


def _running(step: Step, job: TaskJob, reason: str, message: str) -> None:
    if job.unschedulable is not None:
        step.blocked(Problem("Unschedulable", job.unschedulable))
    else:
        step.progressing(reason, message)


def take_inventory(step: Step) -> None:
    """Planning a files or backup source: the inventory Job counts (or verifies) what there is;
    its result becomes the batch plan on a later look (the observer reads it)."""
    collection = step.obs.collection_spec
    assert collection is not None  # the observer reads the target for a files or backup source
    backup = step.spec.source.backup
    what = (
        f"verifying the backup at {backup.location.path}"
        if backup is not None
        else "counting the files' records"
    )
    job = step.obs.tasks.get(TaskKind.INVENTORY)
    if job is None:
        try:
            manifest = inventory_job(step.obs, collection)
        except ValidationError as error:
            step.blocked(Problem("InvalidAssignment", f"cannot build the inventory Job: {error}"))
            return
        step.effect(LaunchTask(TaskKind.INVENTORY, manifest))
        step.event("Inventory", f"{what} (Job {manifest['metadata']['name']})")
        step.progressing("Inventory", what)
        return
    if job.state is JobState.RUNNING:
        _running(step, job, "Inventory", what)
        return
    reason, message = _failure(job)
    if reason:
        step.fail(reason, f"the inventory found the source unusable: {message}; nothing was created")
    # Succeeded: the observer turns its count into the batch plan on the next look.


def backup_wanted(spec: MigrationPlanSpec) -> bool:
    return spec.backup is not None and spec.backup.destination is not None


def backed_up(step: Step, serving: str, milvus_uri: str | None) -> bool:
    """Exports ``serving`` before the plan changes anything (when its spec asks for a backup);
    True once the backup is done or none is wanted."""
    if not backup_wanted(step.spec) or (step.status.backup is not None and step.status.backup.completed_at):
        return True
    collection = step.obs.collection_spec
    assert collection is not None  # Preparing observes the target
    assert step.spec.backup is not None
    assert step.spec.backup.destination is not None
    directory = backup_directory(step.spec.backup.destination, step.obs.plan.name, step.obs.plan.uid)
    job = step.obs.tasks.get(TaskKind.BACKUP)
    if job is None:
        if milvus_uri is None:
            step.blocked(Problem("MilvusNotConfigured", "no Milvus: set spec.milvus.uri or --milvus-uri"))
            return False
        try:
            manifest = backup_job(step.obs, collection, serving, milvus_uri)
        except ValidationError as error:
            step.blocked(Problem("InvalidAssignment", f"cannot build the backup Job: {error}"))
            return False
        step.effect(LaunchTask(TaskKind.BACKUP, manifest))
        step.status.backup = BackupStatus(location=directory, collection=serving)
        step.event("BackupStarted", f"exporting {serving} to {directory} before anything changes")
        step.progressing("BackingUp", f"exporting {serving} to {directory}")
        return False
    if job.state is JobState.RUNNING:
        _running(step, job, "BackingUp", f"exporting {serving} to {directory}")
        return False
    reason, message = _failure(job)
    if reason:
        step.fail(
            "BackupFailed",
            f"the backup of {serving} to {directory} failed ({reason}: {message}); nothing was changed:"
            " fix the destination and create the plan again",
        )
        return False
    result = job.result
    assert result is not None  # _failure reports a Job without one
    step.status.backup = _recorded(result, directory, serving, step)
    step.event(
        "BackupCompleted",
        f"exported {result.records} rows of {serving} to {directory} ({result.files} files, checksum"
        f" {result.checksum})",
    )
    step.again = True
    return False


def _recorded(result: TaskResult, directory: str, serving: str, step: Step) -> BackupStatus:
    return BackupStatus(
        location=result.location or directory,
        collection=serving,
        rows=result.records,
        files=result.files,
        bytes=result.bytes,
        checksum=result.checksum,
        rows_per_second=result.records_per_second,
        completed_at=result.completed_at or step.obs.now.replace(microsecond=0),
    )

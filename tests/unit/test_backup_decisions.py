"""Backups, restores and files sources, decided: the inventory Job that plans a files or backup
source, the backup Job an InPlace plan runs before it changes anything, the RestoreBackup action,
and the Jobs' manifests (claims mounted, S3 keys by Secret reference only)."""

from __future__ import annotations

import json
from typing import Any

from plan_observations import (
    ALIAS,
    NOW,
    TARGET_SPEC,
    condition,
    generating_status,
    job,
    milvus_view,
    plan_spec,
    policy,
    reasons,
    result,
    status,
    step,
)

from vector_operator.api.migrationplan import MigrationPlanSpec
from vector_operator.api.rollbackpolicy import RollbackAction, StepResult
from vector_operator.contract.tasks import TaskAssignment, TaskKind, TaskResult
from vector_operator.migration.batch_plan import BatchPlan
from vector_operator.migration.effects import CreatePhysical, CreatePlan, LaunchJob, LaunchTask, PinTarget
from vector_operator.migration.observation import JobState, TaskJob
from vector_operator.migration.restore_plan import RESTORE_OF_LABEL

S3 = {
    "endpoint": "http://seaweedfs.storage:8333",
    "credentials": {
        "accessKeyId": {"name": "backups-s3", "key": "accessKeyId"},
        "secretAccessKey": {"name": "backups-s3", "key": "secretAccessKey"},
    },
}
BACKUP_DIR = "s3://backups/articles/backfill-plan-uid"
CHECKSUM = "sha256:" + "ab" * 32


def in_place(**changes: Any) -> MigrationPlanSpec:
    return plan_spec(
        mode="InPlace", backup={"destination": {"path": "s3://backups/articles", "s3": S3}}, **changes
    )


def files_spec(**files: Any) -> MigrationPlanSpec:
    source = {
        "format": "Parquet",
        "path": "/data/vectors/*.parquet",
        "idField": "id",
        "textFields": ["text"],
        "vectorField": "embedding",
        "persistentVolumeClaim": {"claimName": "corpus", "mountPath": "/data"},
        **files,
    }
    return plan_spec(source={"files": source, "sql": None})


def restore_spec(checksum: str | None = CHECKSUM) -> MigrationPlanSpec:
    backup: dict[str, Any] = {"location": {"path": BACKUP_DIR, "s3": S3}}
    if checksum:
        backup["checksum"] = checksum
    return plan_spec(source={"backup": backup, "sql": None})


def task(kind: TaskKind, state: JobState, **result: Any) -> TaskJob:
    outcome = None
    if state is not JobState.RUNNING:
        outcome = TaskResult.model_validate(
            {"task": kind.value, "status": "Succeeded", "reason": "Completed", **result}
        )
    return TaskJob(kind=kind, name=f"backfill-{kind.value.lower()}", state=state, result=outcome)


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = manifest["spec"]["template"]["spec"]["containers"][0]
    return found


def task_assignment(manifest: dict[str, Any]) -> TaskAssignment:
    env = {item["name"]: item for item in container(manifest)["env"]}
    return TaskAssignment.model_validate(json.loads(env["VO_TASK"]["value"]))


# --- planning a files or backup source -----------------------------------------------------------


def test_a_files_source_is_planned_by_an_inventory_job_that_mounts_the_claim() -> None:
    decision = step(status(phase="Planning"), files_spec(), batch_plan=None)
    launches = [e for e in decision.effects if isinstance(e, LaunchTask)]
    assert [e.kind for e in launches] == [TaskKind.INVENTORY]
    manifest = launches[0].manifest
    assert manifest["metadata"]["name"] == "backfill-inventory"
    assert manifest["metadata"]["labels"]["vectors.aios.dev/task"] == "inventory"
    assert container(manifest)["command"] == ["vector-operator", "task"]
    pod = manifest["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "data-0", "persistentVolumeClaim": {"claimName": "corpus"}}]
    assert container(manifest)["volumeMounts"] == [{"name": "data-0", "mountPath": "/data", "readOnly": True}]
    rule = manifest["spec"]["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"]["values"] == [2]
    files = task_assignment(manifest).inventory
    assert files is not None
    assert files.files is not None
    assert files.files.vector_field == "embedding"
    assert condition(decision, "Progressing").reason == "Inventory"
    assert decision.status.phase is not None
    assert decision.status.phase.value == "Planning"


def test_a_running_inventory_is_waited_for_and_a_failed_one_fails_the_plan() -> None:
    waiting = step(
        status(phase="Planning"),
        files_spec(),
        batch_plan=None,
        tasks={TaskKind.INVENTORY: task(TaskKind.INVENTORY, JobState.RUNNING)},
    )
    assert not waiting.effects
    assert condition(waiting, "Progressing").reason == "Inventory"
    failed_job = TaskJob(
        kind=TaskKind.INVENTORY,
        name="backfill-inventory",
        state=JobState.FAILED,
        result=TaskResult.model_validate(
            {
                "task": "Inventory",
                "status": "Failed",
                "reason": "BackupCorrupted",
                "message": "part-00001.parquet: sha256 differs from the manifest",
            }
        ),
    )
    failed = step(
        status(phase="Planning"), restore_spec(), batch_plan=None, tasks={TaskKind.INVENTORY: failed_job}
    )
    assert failed.status.phase is not None
    assert failed.status.phase.value == "Failed"
    assert condition(failed, "Failed").reason == "BackupCorrupted"
    assert "part-00001.parquet" in condition(failed, "Failed").message
    assert not [e for e in failed.effects if isinstance(e, CreatePhysical | LaunchJob)]


def test_the_counted_records_become_batches_of_record_numbers() -> None:
    plan = BatchPlan.of_records(120, 50)
    assert plan.batches == 3
    assert [plan.key_range(i) for i in range(3)] == [(None, 50), (50, 100), (100, None)]
    assert BatchPlan.of_records(0, 50).batches == 0


def test_a_restore_verifies_the_backup_against_the_collection_and_its_checksum() -> None:
    decision = step(status(phase="Planning"), restore_spec(), batch_plan=None)
    (launch,) = [e for e in decision.effects if isinstance(e, LaunchTask)]
    inventory = task_assignment(launch.manifest).inventory
    assert inventory is not None
    assert inventory.backup is not None
    assert inventory.backup.path == BACKUP_DIR
    assert inventory.expected_checksum == CHECKSUM
    assert inventory.collection is not None
    assert inventory.collection.dimension == 384
    env = {item["name"]: item for item in container(launch.manifest)["env"]}
    assert env["VO_S3_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {
        "name": "backups-s3",
        "key": "accessKeyId",
    }
    assert "value" not in env["VO_S3_SECRET_ACCESS_KEY"]


def test_restore_batches_import_the_backups_vectors_without_embedding() -> None:
    decision = step(
        generating_status(), restore_spec(), batch_plan=BatchPlan.of_records(120, 50), milvus=milvus_view()
    )
    (first, *_) = [e for e in decision.effects if isinstance(e, LaunchJob)]
    env = {item["name"]: item for item in container(first.manifest)["env"]}
    files = json.loads(env["VO_ASSIGNMENT"]["value"])["source"]["files"]
    assert files["path"] == f"{BACKUP_DIR}/part-*.parquet"
    assert files["vectorField"] == "vector"
    assert files["idField"] == "id"
    assert json.loads(env["VO_ASSIGNMENT"]["value"])["keyRange"] == {"end": 50}


# --- the backup before an InPlace plan changes anything ------------------------------------------


def preparing(spec: MigrationPlanSpec, **fields: Any) -> Any:
    return step(
        status(phase="Preparing"),
        spec,
        pinned=None,
        milvus=milvus_view(f"{ALIAS}__v1", f"{ALIAS}__v1"),
        **fields,
    )


def test_an_in_place_plan_backs_up_the_serving_collection_first() -> None:
    decision = preparing(in_place())
    (launch,) = [e for e in decision.effects if isinstance(e, LaunchTask)]
    assert launch.kind is TaskKind.BACKUP
    assert not [e for e in decision.effects if isinstance(e, PinTarget | CreatePhysical)]
    backup = task_assignment(launch.manifest).backup
    assert backup is not None
    assert backup.collection.name == f"{ALIAS}__v1"
    assert backup.destination.path == "s3://backups/articles/backfill-plan-uid"
    assert backup.model.model == TARGET_SPEC.embedding.model
    assert decision.status.backup is not None
    assert decision.status.backup.location == "s3://backups/articles/backfill-plan-uid"
    assert decision.status.backup.completed_at is None
    assert "BackupStarted" in reasons(decision)
    assert condition(decision, "Progressing").reason == "BackingUp"


def test_a_failed_backup_fails_the_plan_with_nothing_changed() -> None:
    failed = TaskJob(
        kind=TaskKind.BACKUP,
        name="backfill-backup",
        state=JobState.FAILED,
        result=TaskResult.model_validate(
            {
                "task": "Backup",
                "status": "Failed",
                "reason": "StorageUnavailable",
                "message": "bucket backups: 403",
            }
        ),
    )
    decision = preparing(in_place(), tasks={TaskKind.BACKUP: failed})
    assert decision.status.phase is not None
    assert decision.status.phase.value == "Failed"
    assert condition(decision, "Failed").reason == "BackupFailed"
    assert "nothing was changed" in condition(decision, "Failed").message
    assert not [e for e in decision.effects if isinstance(e, PinTarget | CreatePhysical | LaunchJob)]


def test_a_finished_backup_is_recorded_then_the_plan_prepares() -> None:
    done = task(
        TaskKind.BACKUP,
        JobState.COMPLETE,
        records=200,
        files=1,
        bytes=400_000,
        checksum=CHECKSUM,
        location="s3://backups/articles/backfill-plan-uid",
        recordsPerSecond=5000.0,
    )
    decision = preparing(in_place(), tasks={TaskKind.BACKUP: done})
    backup = decision.status.backup
    assert backup is not None
    assert (backup.rows, backup.files, backup.checksum) == (200, 1, CHECKSUM)
    assert backup.completed_at is not None
    assert "BackupCompleted" in reasons(decision)
    after = step(decision.status, in_place(), pinned=None, milvus=milvus_view(f"{ALIAS}__v1", f"{ALIAS}__v1"))
    assert after.status.phase is not None
    assert after.status.phase.value == "Generating"
    assert not [e for e in after.effects if isinstance(e, LaunchTask)]


def test_a_blue_green_plan_without_backup_runs_no_backup() -> None:
    decision = preparing(plan_spec())
    assert not [e for e in decision.effects if isinstance(e, LaunchTask)]


# --- RestoreBackup ------------------------------------------------------------------------------


def backed_up_status(**fields: Any) -> Any:
    return status(
        phase="Succeeded",
        previousPhysicalCollection=f"{ALIAS}__v1",
        newPhysicalCollection=f"{ALIAS}__v1",
        completedAt=NOW.isoformat(),
        backup={
            "location": "s3://backups/articles/backfill-plan-uid",
            "collection": f"{ALIAS}__v1",
            "rows": 200,
            "checksum": CHECKSUM,
            "completedAt": NOW.isoformat(),
        },
        **fields,
    )


def test_a_manual_rollback_of_an_in_place_plan_restores_its_backup() -> None:
    spec = in_place(rollback=True)
    started = step(backed_up_status(), spec, milvus=milvus_view(f"{ALIAS}__v1", f"{ALIAS}__v1"))
    assert started.status.rollback is not None
    assert started.status.rollback.actions == [RollbackAction.RESTORE_BACKUP]
    done = step(started.status, spec, milvus=milvus_view(f"{ALIAS}__v1", f"{ALIAS}__v1"))
    (create,) = [e for e in done.effects if isinstance(e, CreatePlan)]
    manifest = create.manifest
    assert manifest["metadata"]["name"] == "backfill-restore"
    assert manifest["metadata"]["labels"] == {RESTORE_OF_LABEL: "backfill"}
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == "plan-uid"
    restored = MigrationPlanSpec.model_validate(manifest["spec"])
    assert restored.mode.value == "BlueGreen"
    assert restored.source.backup is not None
    assert restored.source.backup.location.path == "s3://backups/articles/backfill-plan-uid"
    assert restored.source.backup.checksum == CHECKSUM
    assert done.status.rollback is not None
    (record,) = done.status.rollback.steps
    assert record.result is StepResult.SUCCEEDED
    assert "backfill-restore" in record.message


def test_restore_backup_is_skipped_for_a_plan_that_made_no_backup() -> None:
    guard = policy("restore", [{"metric": "coherence", "below": 0.95}], ["Abort", "RestoreBackup"])
    low = result(coherence=0.9)
    seen = [step(generating_status(), jobs=(job(0, outcome=low),), policies=(guard,), milvus=milvus_view())]
    while seen[-1].status.rollback is not None and not seen[-1].status.rollback.completed and len(seen) < 6:
        seen.append(step(seen[-1].status, policies=(guard,), milvus=milvus_view()))
    record = seen[-1].status.rollback
    assert record is not None
    assert record.completed
    assert record.actions == [RollbackAction.ABORT, RollbackAction.RESTORE_BACKUP]
    restore_step = record.steps[-1]
    assert restore_step.result is StepResult.SKIPPED
    assert "no backup" in restore_step.message
    assert not [e for d in seen for e in d.effects if isinstance(e, CreatePlan)]

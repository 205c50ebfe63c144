"""The MigrationPlan that restores a plan's backup (a RollbackPolicy's RestoreBackup): the same
target, mode BlueGreen, source.backup at the directory and checksum the plan's status recorded,
the plan's pod settings; owned by the plan it undoes. Pure."""

from __future__ import annotations

from typing import Any

from vector_operator.api.migration_storage import BackupSource, BackupStatus
from vector_operator.api.migrationplan import MigrationMode, MigrationPlanSpec, MigrationSource
from vector_operator.api.resource import API_VERSION
from vector_operator.migration.batch_jobs import bounded_name, plan_label_value
from vector_operator.migration.observation import PlanIdentity

RESTORE_OF_LABEL = "vectors.aios.dev/restore-of"


def restore_plan_name(plan: str) -> str:
    return bounded_name(plan, "-restore")


def restore_plan(plan: PlanIdentity, spec: MigrationPlanSpec, backup: BackupStatus) -> dict[str, Any] | None:
    """The restore plan's manifest; None when the plan has no finished backup to restore."""
    destination = spec.backup.destination if spec.backup is not None else None
    if destination is None or backup.location is None or backup.completed_at is None:
        return None
    source = MigrationSource(
        backup=BackupSource(
            location=destination.model_copy(update={"path": backup.location}), checksum=backup.checksum
        )
    )
    owner = {"apiVersion": API_VERSION, "kind": "MigrationPlan", "name": plan.name, "uid": plan.uid}
    return {
        "apiVersion": API_VERSION,
        "kind": "MigrationPlan",
        "metadata": {
            "name": restore_plan_name(plan.name),
            "namespace": plan.namespace,
            "labels": {RESTORE_OF_LABEL: plan_label_value(plan.name)},
            "ownerReferences": [{**owner, "blockOwnerDeletion": False}],
        },
        "spec": {
            "targetRef": spec.target_ref.model_dump(mode="json", by_alias=True),
            "mode": MigrationMode.BLUE_GREEN.value,
            "source": source.model_dump(mode="json", by_alias=True, exclude_none=True),
            "batching": spec.batching.model_dump(mode="json", by_alias=True, exclude_none=True),
        },
    }

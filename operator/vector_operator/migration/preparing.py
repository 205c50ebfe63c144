"""Preparing: the target must be Ready, owned by the plan's VectorCollection and free of other
plans; the serving collection is backed up first when the plan asks (nothing else happens until
the backup is done, and a failed backup fails the plan with nothing changed); the plan records
what it rolls back to, pins the target's spec, names its new physical collection (written before
it is created, so a restart never creates a second), creates it."""

from __future__ import annotations

from vector_operator.api.migrationplan import MigrationMode, MigrationPhase, PinnedTarget
from vector_operator.collection.milvus_layout import layout_of
from vector_operator.collection.physical_names import next_physical_name
from vector_operator.migration import admission, target_lock
from vector_operator.migration.effects import CreatePhysical, PinTarget
from vector_operator.migration.observation import Problem
from vector_operator.migration.plan_tasks import backed_up
from vector_operator.migration.step import Step


def _readiness(step: Step) -> Problem | None:
    target, milvus = step.obs.target, step.obs.milvus
    assert target is not None
    assert milvus is not None
    ready = target.condition("Ready")
    if ready is None or ready.status.value != "True":
        why = ready.reason if ready is not None else "no status yet"
        return Problem("WaitingForTarget", f"VectorCollection {target.name} is not Ready yet ({why})", False)
    if foreign := sorted(
        n for n, owner in milvus.physicals.items() if owner is not None and owner != target.owner
    ):
        return Problem(
            "Conflict",
            f"{', '.join(foreign)} belong to another VectorCollection: this plan fills none of them",
        )
    if milvus.alias_target is None:
        alias = target.spec.collection_name
        return Problem("WaitingForTarget", f"alias {alias} points at no collection yet", False)
    up_to_date, indexed = target.condition("UpToDate"), target.condition("Indexed")
    if target.reindexing is not None or (up_to_date is not None and up_to_date.reason == "Reindexing"):
        building = target.reindexing or (up_to_date.message if up_to_date is not None else "")
        return Problem(
            "TargetReindexing",
            f"VectorCollection {target.name} is being re-indexed onto a copy ({building}): this plan"
            " prepares once the copy serves",
            False,
        )
    if indexed is not None and indexed.reason == "IndexTypeUnsupported":
        return Problem("IndexTypeUnsupported", f"VectorCollection {target.name}: {indexed.message}")
    if (
        step.spec.mode is MigrationMode.IN_PLACE
        and up_to_date is not None
        and up_to_date.reason == "MigrationRequired"
    ):
        return Problem(
            "InPlaceCannotMigrate",
            f"{up_to_date.message}; InPlace writes into the serving collection, which keeps the old vector"
            " space: use mode: BlueGreen",
        )
    return admission.refusal(step.spec, step.obs.installation) or target_lock.busy(step.obs)


def _milvus_uri(step: Step) -> str | None:
    spec = step.obs.collection_spec
    return (spec.milvus.uri if spec is not None else None) or step.obs.installation.default_milvus_uri


def preparing(step: Step) -> None:
    if (problem := _readiness(step)) is not None:
        step.blocked(problem)
        return
    target, milvus, status = step.obs.target, step.obs.milvus, step.status
    assert target is not None
    assert milvus is not None
    alias = target.spec.collection_name
    serving = milvus.alias_target
    assert serving is not None  # _readiness waits for the alias
    if not backed_up(step, status.previous_physical_collection or serving, _milvus_uri(step)):
        return
    status.previous_physical_collection = status.previous_physical_collection or milvus.alias_target
    if step.spec.mode is MigrationMode.IN_PLACE:
        status.new_physical_collection = status.previous_physical_collection
    elif status.new_physical_collection is None:  # named first, created on the next look
        status.new_physical_collection = next_physical_name(alias, milvus.physicals)
        step.again = True
        return
    new, previous = status.new_physical_collection, status.previous_physical_collection
    assert new is not None  # named above (BlueGreen) or the serving collection (InPlace)
    step.effect(PinTarget(target.generation, target.spec))
    status.target = PinnedTarget(
        uid=target.uid, generation=target.generation, pinned_at=step.obs.now.replace(microsecond=0)
    )
    if step.spec.mode is MigrationMode.BLUE_GREEN:
        step.effect(CreatePhysical(new, layout_of(target.spec), target.owner))
        if new not in milvus.physicals:
            step.event("CollectionCreated", f"created {new} to fill; {alias} keeps serving {previous}")
    status.started_at = step.obs.now.replace(microsecond=0)
    step.event("Generating", f"filling {new}; rollback target is {previous}")
    step.progressing("Generating", f"launching embedding Jobs into {new}")
    step.move_to(MigrationPhase.GENERATING)

"""CuttingOver: catch up with the writes made to the source during the backfill (the sync worker,
until the new collection is within maxLag of its source), swing the alias to the new collection as
a compare-and-swap (only from the collection it served when the plan prepared), make the
VectorCollection's status current at once, and start the policies' post-cutover windows. A
Continuous plan then stays in phase Syncing; any other stops its sync worker and ends."""

from __future__ import annotations

from vector_operator.api.migrationplan import Cutover, MigrationMode, MigrationPhase, PostCutoverFigures
from vector_operator.migration.effects import SwingAlias, UpdateTarget
from vector_operator.migration.observation import Problem
from vector_operator.migration.progress import progress_of
from vector_operator.migration.step import Step
from vector_operator.migration.sync_progress import WORKER_DOWN, lag_problem, read_sync, run_worker
from vector_operator.migration.sync_worker import continuous, needs_sync
from vector_operator.rollback.guard import guard, last_window_end


def _swing(step: Step, alias: str, new: str) -> bool:
    """BlueGreen: the alias moves to ``new`` only from the collection it served when the plan
    prepared; False when the step waits (manual cutover) or the plan ends (the alias moved)."""
    milvus, previous = step.obs.milvus, step.status.previous_physical_collection
    assert milvus is not None  # the observer reports Milvus's absence
    if step.spec.cutover is Cutover.MANUAL and not step.spec.cutover_approved:
        message = f"{new} is validated: set spec.cutoverApproved: true to swing {alias} to it"
        step.progressing("AwaitingCutoverApproval", message)
        return False
    if milvus.alias_target not in (previous, new):
        step.fail(
            "AliasMoved",
            f"alias {alias} serves {milvus.alias_target}, not {previous} as when this plan prepared (another"
            f" plan or a human moved it): {alias} was left as it is; {new} is validated but not served",
        )
        return False
    if milvus.alias_target != new:
        step.effect(SwingAlias(alias, to=new, expected=previous))
        step.event("CutOver", f"alias {alias} now serves {new} (was {previous})")
    step.status.cut_over_at = step.status.cut_over_at or step.obs.now.replace(microsecond=0)
    ends = last_window_end(step.obs.policies, step.obs.now.replace(microsecond=0))
    step.status.post_cutover = PostCutoverFigures(window_ends_at=ends)
    return True


def _caught_up(step: Step) -> bool:
    """Whether the sync worker has brought the new collection within maxLag of its source."""
    if not run_worker(step):
        return False
    reading = read_sync(step)
    if reading.caught_up:
        step.condition("InSync", True, "CaughtUp", f"{reading.lag_s:.0f}s behind the source at most")
        return True
    reason, message = lag_problem(step, reading)
    step.condition("InSync", False, reason, message)
    if reading.error is not None or reason == WORKER_DOWN:
        step.blocked(Problem(reason, f"catching up before the cutover: {message}"))
    else:
        step.progressing("CatchingUp", f"catching up before the cutover: {message}")
    return False


def cutting_over(step: Step) -> None:
    if guard(step, MigrationPhase.CUTTING_OVER.value):
        return
    if step.paused:
        step.progressing("Paused", "paused before the cutover: resume to go on", holds=False)
        return
    spec, status = step.obs.collection_spec, step.status
    assert spec is not None  # the observer reports the target's absence
    alias, new = spec.collection_name, status.new_physical_collection
    assert new is not None
    if needs_sync(step.spec) and not _caught_up(step):
        return
    blue_green = step.spec.mode is MigrationMode.BLUE_GREEN
    if blue_green and not _swing(step, alias, new):
        return
    step.effect(UpdateTarget(new, status.previous_physical_collection if blue_green else None))
    progress = progress_of(status)
    message = (
        f"{progress.records_done or 0} records embedded, {progress.records_skipped or 0} skipped"
        f" ({progress.skipped_by_reason or {}}), of {progress.records_read or 0} read; {alias} serves {new}"
    )
    if continuous(step.spec):
        status.phase = MigrationPhase.SYNCING
        step.condition("Complete", True, "Syncing", f"{message}; following the source's changes")
        step.progressing("Syncing", f"{alias} serves {new}, which follows the source's changes")
        step.event("Syncing", f"{message}; the sync worker keeps it in step with the source")
        return
    step.finish(MigrationPhase.SUCCEEDED)
    if needs_sync(step.spec):
        sync = status.sync
        message += (
            f"; caught up {sync.changes_applied or 0} changes and {sync.deletes_applied or 0} deletes"
            if sync
            else ""
        )
    step.condition("Complete", True, "Succeeded", message)
    step.progressing("Succeeded", message, holds=False)
    step.event("Succeeded", message)

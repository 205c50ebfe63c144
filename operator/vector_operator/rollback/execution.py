"""Running a rollback, one action per step. Pure: each step decides one action's effects and the
result it records; the controller applies the effects and writes the record before the next
step decides the next action. So every action is persisted before the next one runs, and an
operator restarted in the middle finishes the rest without repeating what is recorded (an action
whose effect landed but whose record did not is found done, and recorded, on the next look).
"""

from __future__ import annotations

from vector_operator.api.migrationplan import (
    MigrationMode,
    MigrationPhase,
    MigrationPlanSpec,
    OperatorPause,
    PlanRollback,
)
from vector_operator.api.rollbackpolicy import (
    ActionStep,
    Execution,
    GuardedPhase,
    RollbackAction,
    StepResult,
    TriggerMetric,
)
from vector_operator.migration.effects import (
    CreatePlan,
    DeleteJobs,
    DropPhysical,
    Effect,
    RecordExecution,
    SwingAlias,
    UpdateTarget,
)
from vector_operator.migration.observation import JobState
from vector_operator.migration.restore_plan import restore_plan
from vector_operator.migration.step import Step
from vector_operator.rollback.triggers import Firing

MANUAL = "manual"
ABORT_REQUESTED = "spec.abort: true"
ROLLBACK_REQUESTED = "spec.rollback: true"
Outcome = tuple[StepResult, str, list[Effect]]


def manual_rollback_actions(spec: MigrationPlanSpec) -> list[RollbackAction]:
    """What spec.rollback: true does: an InPlace plan with a backup restores it (there is no other
    collection to point the alias back at); any other plan points the alias back."""
    if (
        spec.mode is MigrationMode.IN_PLACE
        and spec.backup is not None
        and spec.backup.destination is not None
    ):
        return [RollbackAction.RESTORE_BACKUP]
    return [RollbackAction.REVERT_ALIAS]


def start_rollback(step: Step, firing: Firing, actions: list[RollbackAction], phase: str) -> None:
    """Records the execution (no action run yet) and looks again at once to run the first one."""
    manual = firing.policy == MANUAL
    step.status.rollback = PlanRollback(
        policy=firing.policy,
        trigger=firing.trigger,
        metric=None if manual else firing.metric,
        threshold=None if manual else firing.threshold,
        observed_value=None if manual else round(firing.observed, 6),
        phase=phase,
        actions=actions,
        steps=[],
        executed_at=step.obs.now.replace(microsecond=0),
    )
    if firing.trigger == ABORT_REQUESTED:
        message = (
            "abort requested (spec.abort: true): stopping the Jobs, dropping the collection being filled"
        )
    elif manual and actions == [RollbackAction.RESTORE_BACKUP]:
        message = "rollback requested (spec.rollback: true): restoring the backup taken before the plan"
    elif manual:
        message = "rollback requested (spec.rollback: true): pointing the alias back"
    else:
        message = (
            f"RollbackPolicy {firing.policy}: {firing.trigger} (observed {firing.observed:.4g}) in {phase};"
            f" running {', '.join(a.value for a in actions)}"
        )
    step.event("RollbackStarted", message, warning=True)
    step.again = True


def continue_rollback(step: Step) -> None:
    """Runs the next action not recorded yet, or finishes the execution."""
    record = step.status.rollback
    assert record is not None
    assert not record.completed
    if len(record.steps) == len(record.actions):
        _finish(step, record)
        return
    action = record.actions[len(record.steps)]
    result, message, effects = _run(action, step, record)
    step.effects.extend(effects)
    record.steps = [*record.steps, ActionStep(action=action, result=result, message=message[:1024])]
    step.again = True


def _run(action: RollbackAction, step: Step, record: PlanRollback) -> Outcome:
    if action is RollbackAction.PAUSE:
        step.status.pause = OperatorPause(
            by=f"RollbackPolicy/{record.policy}",
            message="set spec.paused to true and back to false, or remove status.pause, to resume",
            since=step.obs.now.replace(microsecond=0),
        )
        return StepResult.SUCCEEDED, "paused in status.pause: no new Jobs until a human resumes", []
    if action is RollbackAction.ABORT:
        running = tuple(job.name for job in step.obs.jobs if job.state is JobState.RUNNING)
        return (
            StepResult.SUCCEEDED,
            f"stopped {len(running)} running Job(s); the plan launches no more",
            [DeleteJobs(running)] if running else [],
        )
    if action is RollbackAction.REVERT_ALIAS:
        return _revert(step, record)
    if action is RollbackAction.RESTORE_BACKUP:
        return _restore(step)
    return _drop_partial(step)


def _restore(step: Step) -> Outcome:
    backup = step.status.backup
    manifest = restore_plan(step.obs.plan, step.spec, backup) if backup is not None else None
    if manifest is None or backup is None:
        return StepResult.SKIPPED, "this plan made no backup (spec.backup) to restore", []
    name = manifest["metadata"]["name"]
    return (
        StepResult.SUCCEEDED,
        f"created MigrationPlan {name}: it restores {backup.rows} rows from {backup.location}"
        f" (checksum {backup.checksum}) into a new collection and swings the alias to it",
        [CreatePlan(manifest)],
    )


def _revert(step: Step, record: PlanRollback) -> Outcome:
    previous, new = step.status.previous_physical_collection, step.status.new_physical_collection
    milvus, spec = step.obs.milvus, step.obs.collection_spec
    if not previous or previous == new or new is None:
        return StepResult.SKIPPED, "no previous collection to return to (InPlace, or the first fill)", []
    assert milvus is not None
    assert spec is not None
    alias, serving = spec.collection_name, milvus.alias_target
    after_cutover = record.phase in ("PostCutover", "Syncing") or record.policy == MANUAL
    if serving == previous and not after_cutover:
        return StepResult.SKIPPED, f"alias {alias} never left {previous}: nothing to revert", []
    if serving not in (previous, new):
        return StepResult.SKIPPED, f"alias {alias} serves {serving}, not {new}: nothing to revert", []
    if previous not in milvus.physicals:
        return StepResult.FAILED, f"{previous} is gone (retention passed?): the alias stays on {new}", []
    # Also when it already serves `previous` (swung by this action before its record was written):
    # the compare-and-swap leaves it as it is then, and the record catches up.
    return (
        StepResult.SUCCEEDED,
        f"alias {alias} serves {previous} again",
        [SwingAlias(alias, to=previous, expected=new), UpdateTarget(previous, new)],
    )


def _drop_partial(step: Step) -> Outcome:
    previous, new = step.status.previous_physical_collection, step.status.new_physical_collection
    milvus, spec, target = step.obs.milvus, step.obs.collection_spec, step.obs.target
    if not new or new == previous:
        return StepResult.SKIPPED, "this plan fills no collection of its own", []
    assert milvus is not None
    assert spec is not None
    assert target is not None
    if milvus.alias_target == new:
        return (
            StepResult.FAILED,
            f"{new} still serves {spec.collection_name}: not dropped (put RevertAlias first)",
            [],
        )
    if new not in milvus.physicals:
        return StepResult.SKIPPED, f"{new} was already gone", []
    return StepResult.SUCCEEDED, f"dropped {new}", [DropPhysical(spec.collection_name, new, target.owner)]


def _finish(step: Step, record: PlanRollback) -> None:
    record.completed = True
    summary = "; ".join(f"{s.action.value}: {s.result.value} ({s.message})" for s in record.steps)
    undone = any(
        s.action is not RollbackAction.PAUSE and s.result is StepResult.SUCCEEDED for s in record.steps
    )
    manual = record.policy == MANUAL
    if undone or RollbackAction.ABORT in record.actions:
        why = record.trigger if manual else f"RollbackPolicy {record.policy} fired on {record.trigger}"
        observed = f" (observed {record.observed_value:.4g})" if record.observed_value is not None else ""
        message = f"{why}{observed} in {record.phase}: {summary}"
        step.finish(MigrationPhase.ROLLED_BACK)
        step.status.pause = None
        reason = (
            "PolicyFired"
            if not manual
            else "AbortRequested"
            if record.trigger == ABORT_REQUESTED
            else "RollbackRequested"
        )
        step.condition("RolledBack", True, reason, message)
        step.progressing("RolledBack", message, holds=False)
        step.event("RolledBack", message, warning=True)
    elif step.status.pause is not None:
        step.event("RollbackPaused", f"paused by RollbackPolicy {record.policy}: {summary}", warning=True)
    else:
        step.event(
            "RollbackSkipped", f"RollbackPolicy {record.policy} changed nothing: {summary}", warning=True
        )
    if not manual:
        _record_in_policy(step, record)


def _record_in_policy(step: Step, record: PlanRollback) -> None:
    """The execution joins the policy's own history (once: the adapter checks)."""
    if record.metric is None or record.threshold is None:
        return
    step.effect(
        RecordExecution(
            record.policy,
            Execution(
                plan=step.obs.plan.name,
                phase=GuardedPhase(record.phase),
                trigger=record.trigger,
                metric=TriggerMetric(record.metric),
                threshold=record.threshold,
                observed_value=record.observed_value or 0.0,
                steps=record.steps,
                executed_at=record.executed_at,
            ),
        )
    )

"""What each plugin action changes on a MigrationPlan, decided from the plan as it is: idempotent
(a second approve, or an abort of an aborted plan, says so and changes nothing), refused with one
line when it cannot apply, and otherwise the smallest patch that says what a human wants. Pure.

The actions write the spec fields a human owns (approved, cutoverApproved, paused, abort, retry,
rollback). With a GitOps tool that owns the spec, make the same change in Git (or let the tool
ignore these fields); `resume` also lifts a RollbackPolicy's pause, which lives in status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vector_operator.api.migrationplan import (
    Approval,
    Cutover,
    MigrationMode,
    MigrationPhase,
    MigrationPlanSpec,
    MigrationPlanStatus,
)
from vector_operator.plugin.cluster import PluginError
from vector_operator.rollback.execution import ROLLBACK_REQUESTED

ENDED = frozenset({MigrationPhase.SUCCEEDED, MigrationPhase.FAILED, MigrationPhase.ROLLED_BACK})
ACTIONS = ("approve", "promote", "pause", "resume", "abort", "retry", "rollback")


@dataclass(frozen=True)
class Change:
    message: str
    spec: dict[str, Any] | list[dict[str, Any]] | None = None
    status: dict[str, Any] | None = None


def _running(name: str, status: MigrationPlanStatus, what: str, instead: str) -> None:
    if status.phase in ENDED:
        raise PluginError(f"{name} has ended ({status.phase.value}): nothing to {what}{instead}")


def _approve(name: str, spec: MigrationPlanSpec, status: MigrationPlanStatus) -> Change:
    if spec.approval is Approval.AUTOMATIC:
        return Change(f"{name} needs no approval (approval: Automatic)")
    if spec.approved:
        return Change(f"{name} is already approved")
    return Change(f"approved {name}: it starts once planned", {"spec": {"approved": True}})


def _promote(name: str, spec: MigrationPlanSpec, status: MigrationPlanStatus) -> Change:
    if spec.mode is MigrationMode.IN_PLACE or spec.cutover is Cutover.AUTOMATIC:
        return Change(f"{name} needs no promotion (it cuts over on its own)")
    if spec.cutover_approved:
        return Change(f"{name} is already promoted")
    return Change(
        f"promoted {name}: the alias swings once validation passed", {"spec": {"cutoverApproved": True}}
    )


def _pause(name: str, spec: MigrationPlanSpec, status: MigrationPlanStatus) -> Change:
    _running(name, status, "pause", "")
    if spec.paused:
        return Change(f"{name} is already paused")
    return Change(f"paused {name}: no new Jobs; running Jobs finish", {"spec": {"paused": True}})


def _resume(name: str, spec: MigrationPlanSpec, status: MigrationPlanStatus) -> Change:
    _running(name, status, "resume", "")
    if not spec.paused and status.pause is None:
        return Change(f"{name} is not paused")
    lifted = (
        f" (the pause {status.pause.by} decided is lifted; its policies guard the plan again)"
        if status.pause
        else ""
    )
    return Change(
        f"resumed {name}{lifted}",
        {"spec": {"paused": False}} if spec.paused else None,
        {"status": {"pause": None}} if status.pause is not None else None,
    )


def _abort(name: str, spec: MigrationPlanSpec, status: MigrationPlanStatus) -> Change:
    if spec.abort and status.phase is MigrationPhase.ROLLED_BACK:
        return Change(f"{name} is already aborted")
    _running(name, status, "abort", ": kubectl vector rollback undoes a cutover")
    if spec.abort:
        return Change(f"{name} is already aborting")
    return Change(
        f"aborting {name}: its Jobs stop and the collection it was filling is dropped; the alias stays",
        {"spec": {"abort": True}},
    )


def _retry(name: str, spec: MigrationPlanSpec, status: MigrationPlanStatus) -> Change:
    if status.phase is not MigrationPhase.FAILED:
        raise PluginError(
            f"retry runs a Failed plan's failed batches again; {name} is {(status.phase or 'Pending')}"
        )
    if spec.retry > (status.observed_retry or 0):
        return Change(f"{name} already has retry {spec.retry} requested")
    patch = [
        {"op": "test", "path": "/spec/retry", "value": spec.retry},
        {"op": "replace", "path": "/spec/retry", "value": spec.retry + 1},
    ]
    ranges = status.failed_ranges or "every batch not done"
    return Change(f"retrying {name}: batches {ranges} run again (retry {spec.retry + 1})", patch)


def _rollback(name: str, spec: MigrationPlanSpec, status: MigrationPlanStatus) -> Change:
    if spec.rollback and status.phase is MigrationPhase.ROLLED_BACK:
        return Change(f"{name} is already rolled back")
    if status.phase not in (MigrationPhase.SUCCEEDED, MigrationPhase.SYNCING):
        raise PluginError(
            f"rollback undoes a Succeeded (or Syncing) plan's cutover; {name} is"
            f" {(status.phase or 'Pending')}"
            " (kubectl vector abort stops a running one)"
        )
    record = status.rollback
    if spec.rollback and record is not None and record.completed and record.trigger == ROLLBACK_REQUESTED:
        steps = "; ".join(f"{s.action.value}: {s.result.value} ({s.message})" for s in record.steps)
        raise PluginError(f"the rollback requested earlier changed nothing: {steps}")
    if spec.rollback:
        return Change(f"{name} is already rolling back")
    previous, new = status.previous_physical_collection, status.new_physical_collection
    if not previous or previous == new:
        raise PluginError(
            f"{name} filled its target's first collection (or ran InPlace): nothing to return to"
        )
    if status.previous_retired_at is not None:
        raise PluginError(
            f"{previous} was dropped at {status.previous_retired_at:%Y-%m-%d %H:%M:%S} UTC, when"
            " spec.previousCollectionRetention passed: nothing to return to"
        )
    return Change(f"rolling back {name}: the alias returns to {previous}", {"spec": {"rollback": True}})


_DECIDE = {
    "approve": _approve,
    "promote": _promote,
    "pause": _pause,
    "resume": _resume,
    "abort": _abort,
    "retry": _retry,
    "rollback": _rollback,
}


def decide(action: str, name: str, spec: MigrationPlanSpec, status: MigrationPlanStatus) -> Change:
    return _DECIDE[action](name, spec, status)

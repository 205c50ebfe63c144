"""Who holds a pause. A human pauses with spec.paused; a RollbackPolicy's Pause is recorded in
status.pause, never written into the spec, so a GitOps tool that owns the spec cannot undo it.
A human takes a policy's pause over by setting spec.paused (then resumes by clearing it), or
resumes at once by removing status.pause. Once resumed, the policies guard the plan again, over
the batches taken in from then on."""

from __future__ import annotations

from vector_operator.api.rollbackpolicy import RollbackAction
from vector_operator.migration.step import Step


def settle_pauses(step: Step) -> None:
    status = step.status
    if status.pause is not None and step.spec.paused:
        step.event(
            "PauseTakenOver",
            f"spec.paused takes over the pause of {status.pause.by}: set it to false to resume",
        )
        status.pause = None
    record = status.rollback
    if (
        record is not None
        and record.completed
        and record.resumed_at is None
        and any(s.action is RollbackAction.PAUSE for s in record.steps)
        and status.pause is None
        and not step.spec.paused
    ):
        record.resumed_at = step.obs.now.replace(microsecond=0)
        status.guard_armed_after = status.batches_folded or 0
        step.event(
            "PoliciesArmed",
            f"resumed after RollbackPolicy {record.policy} paused the plan: the policies guard it again,"
            " from the next finished batch on",
        )

"""RollbackPolicies watching a VectorCollection's re-index (spec.collectionNames): when one of their
searchLatencyP95Ms or recallAtK triggers fires on the new index's validation, the copy is dropped
before it serves (Abort, DropPartialCollection, or RevertAlias: the alias stays); when one fires on
a canary probe within the policy's postCutoverWindow after the swing, RevertAlias points the alias
back at the collection the re-index replaced (it is kept at least that long). Each firing is
recorded once, in the policy's status and in ``status.reindex.fired``. Pure: the controller
observes and acts."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vector_operator.api.rollbackpolicy import (
    ActionStep,
    Execution,
    GuardedPhase,
    RollbackAction,
    RollbackPolicySpec,
    StepResult,
    TriggerMetric,
)
from vector_operator.rollback.triggers import crosses, describe, parse_duration

REINDEX_METRICS = (TriggerMetric.SEARCH_LATENCY_P95_MS, TriggerMetric.RECALL_AT_K)
STOPS_THE_COPY = (RollbackAction.ABORT, RollbackAction.DROP_PARTIAL_COLLECTION, RollbackAction.REVERT_ALIAS)
"""Before the swing, RevertAlias means what it means after: the alias stays where it was."""


@dataclass(frozen=True)
class Guard:
    """A RollbackPolicy that names the collection in spec.collectionNames."""

    name: str
    spec: RollbackPolicySpec


@dataclass(frozen=True)
class Firing:
    guard: Guard
    trigger: str  # described, e.g. "recallAtK below 0.95"
    metric: TriggerMetric
    threshold: float
    observed: float
    phase: GuardedPhase

    def summary(self) -> str:
        return f"RollbackPolicy {self.guard.name}: {self.trigger} (observed {self.observed:g})"

    def wants(self, action: RollbackAction) -> bool:
        return action in self.guard.spec.actions


def firing(
    guards: Sequence[Guard], phase: GuardedPhase, figures: Mapping[TriggerMetric, float | None]
) -> Firing | None:
    """The first trigger (policies by name, triggers in order) that the figures cross in ``phase``."""
    for guard in sorted(guards, key=lambda g: g.name):
        for trigger in guard.spec.triggers:
            value = figures.get(trigger.metric)
            if trigger.metric not in REINDEX_METRICS or value is None:
                continue
            if trigger.phases is not None and phase not in trigger.phases:
                continue
            if crosses(trigger, value):
                threshold = trigger.below if trigger.below is not None else trigger.above
                assert threshold is not None
                return Firing(guard, describe(trigger), trigger.metric, threshold, value, phase)
    return None


def armed_after_swing(
    guards: Sequence[Guard], swung_at: datetime.datetime, now: datetime.datetime
) -> list[Guard]:
    """The guards whose postCutoverWindow is still open."""
    return [g for g in guards if now < swung_at + parse_duration(g.spec.post_cutover_window)]


def steps_before_swing(fired: Firing) -> list[ActionStep]:
    """What each of the policy's actions did when it fired on the validation of the copy."""
    steps = []
    for action in fired.guard.spec.actions:
        if action is RollbackAction.REVERT_ALIAS:
            result, message = StepResult.SUCCEEDED, "the alias stays where it was"
        elif action in STOPS_THE_COPY:
            result, message = StepResult.SUCCEEDED, "the copy was dropped before it served"
        else:
            result, message = StepResult.SKIPPED, "a re-index does not pause"
        steps.append(ActionStep(action=action, result=result, message=message))
    return steps


def steps_after_swing(fired: Firing, reverted: str | None, dropped: str | None) -> list[ActionStep]:
    """What each action did when the policy fired after the swing (``reverted``: the collection
    the alias points at again, or why not; ``dropped``: the copy dropped, or None)."""
    steps = []
    for action in fired.guard.spec.actions:
        if action is RollbackAction.REVERT_ALIAS:
            steps.append(
                ActionStep(
                    action=action,
                    result=StepResult.SUCCEEDED if reverted else StepResult.FAILED,
                    message=reverted or "the alias could not be moved back",
                )
            )
        elif action is RollbackAction.DROP_PARTIAL_COLLECTION and dropped is not None:
            steps.append(ActionStep(action=action, result=StepResult.SUCCEEDED, message=f"dropped {dropped}"))
        else:
            steps.append(
                ActionStep(action=action, result=StepResult.SKIPPED, message="nothing to do after the swing")
            )
    return steps


def execution(fired: Firing, collection: str, steps: list[ActionStep], now: datetime.datetime) -> Execution:
    return Execution(
        collection=collection,
        phase=fired.phase,
        trigger=fired.trigger,
        metric=fired.metric,
        threshold=fired.threshold,
        observed_value=fired.observed,
        steps=steps,
        executed_at=now.replace(microsecond=0),
    )

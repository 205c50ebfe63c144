"""One step's working state: a copy of the plan's typed status that the phase decisions change,
the effects and Events they decide, and the helpers they share (conditions, phase moves, failing
the plan). Pure: :meth:`Step.decision` hands the result to the controller, which applies it."""

from __future__ import annotations

from vector_operator.api.conditions import Condition
from vector_operator.api.migrationplan import MigrationPhase, MigrationPlanSpec, MigrationPlanStatus
from vector_operator.migration.effects import Decision, DeleteJobs, Effect, Event, StopSyncWorker
from vector_operator.migration.observation import PlanObservation, Problem
from vector_operator.status_conditions import ConditionUpdate, merge_conditions


class Step:
    def __init__(self, observation: PlanObservation) -> None:
        self.obs = observation
        self.status: MigrationPlanStatus = observation.status.model_copy(deep=True)
        self.effects: list[Effect] = []
        self.events: list[Event] = []
        self.again = False
        self._conditions: list[ConditionUpdate] = []

    @property
    def spec(self) -> MigrationPlanSpec:
        return self.obs.spec

    @property
    def phase(self) -> MigrationPhase:
        return self.status.phase or MigrationPhase.PENDING

    def previous_condition(self, type_: str) -> Condition | None:
        """The condition as the observed status had it."""
        return next((c for c in self.obs.status.conditions or [] if c.type == type_), None)

    def condition(self, type_: str, holds: bool, reason: str, message: str = "") -> None:
        self._conditions.append(ConditionUpdate.of(type_, holds, reason, message))

    def progressing(self, reason: str, message: str, holds: bool = True) -> None:
        self.condition("Progressing", holds, reason, message)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event(reason, message[:1024], warning))

    def effect(self, effect: Effect) -> None:
        self.effects.append(effect)

    def move_to(self, phase: MigrationPhase) -> None:
        """Enter ``phase`` and look again at once."""
        self.status.phase = phase
        self.again = True

    def finish(self, phase: MigrationPhase) -> None:
        """The plan ends in ``phase``: every Job of it still there is deleted (running or finished:
        one that finished in the step that ended the plan would never be taken in, nor deleted, by
        a plan that no longer looks), and its sync worker, if it runs one, stops."""
        self.status.phase = phase
        self.status.completed_at = self.obs.now.replace(microsecond=0)
        deleting = {name for e in self.effects if isinstance(e, DeleteJobs) for name in e.names}
        if leftover := tuple(job.name for job in self.obs.jobs if job.name not in deleting):
            self.effect(DeleteJobs(leftover))
        if self.status.sync is not None and self.status.sync.worker:
            self.effect(StopSyncWorker(self.status.sync.worker))
            self.status.sync.worker = None

    def fail(self, reason: str, message: str) -> None:
        """The plan ends Failed; the alias keeps serving what it served."""
        self.finish(MigrationPhase.FAILED)
        self.condition("Failed", True, reason, message)
        self.progressing(reason, message, holds=False)
        self.event(reason, message, warning=True)

    def blocked(self, problem: Problem) -> None:
        """The step cannot go on now: Progressing says why; an Event when the reason is new."""
        self.progressing(problem.reason, problem.message, holds=False)
        previous = self.previous_condition("Progressing")
        if previous is None or previous.reason != problem.reason:
            self.event(problem.reason, problem.message, warning=problem.warning)

    @property
    def paused(self) -> bool:
        """Paused by a human (spec.paused) or by a RollbackPolicy (status.pause)."""
        return self.spec.paused or self.status.pause is not None

    def decision(self) -> Decision:
        status = self.status
        status.phase = status.phase or MigrationPhase.PENDING
        status.observed_generation = self.obs.plan.generation
        if self._conditions:
            status.conditions = merge_conditions(
                status.conditions, self._conditions, self.obs.plan.generation, self.obs.now
            )
        return Decision(status=status, effects=self.effects, events=self.events, again=self.again)

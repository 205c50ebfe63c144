"""The MigrationPlan controller's decision: from one observation, the new typed status, the
effects and the Events. One function per phase; an abort, a rollback under way or a finished plan
first.

    Pending -> Planning -> Preparing -> Generating <-> Paused -> Validating -> CuttingOver -> Succeeded
                                        \\-> Failed (-> spec.retry -> Generating)          |  \\-> RolledBack
                                                                         Syncing <-/ (Continuous)
"""

from __future__ import annotations

from collections.abc import Callable

from vector_operator.api.migrationplan import MigrationPhase
from vector_operator.api.rollbackpolicy import RollbackAction
from vector_operator.migration.cutover import cutting_over
from vector_operator.migration.effects import Decision
from vector_operator.migration.finished import finished
from vector_operator.migration.generating import generating
from vector_operator.migration.observation import PlanObservation
from vector_operator.migration.pauses import settle_pauses
from vector_operator.migration.planning import planning
from vector_operator.migration.preparing import preparing
from vector_operator.migration.schedule import TERMINAL, abort_requested
from vector_operator.migration.step import Step
from vector_operator.migration.syncing import syncing
from vector_operator.migration.validating import validating
from vector_operator.rollback.execution import ABORT_REQUESTED, MANUAL, continue_rollback, start_rollback
from vector_operator.rollback.triggers import Firing

PHASES: dict[MigrationPhase, Callable[[Step], None]] = {
    MigrationPhase.PENDING: planning,
    MigrationPhase.PLANNING: planning,
    MigrationPhase.PREPARING: preparing,
    MigrationPhase.GENERATING: generating,
    MigrationPhase.PAUSED: generating,
    MigrationPhase.VALIDATING: validating,
    MigrationPhase.CUTTING_OVER: cutting_over,
    MigrationPhase.SYNCING: syncing,
}


def decide(observation: PlanObservation) -> Decision:
    step = Step(observation)
    record = observation.status.rollback
    if abort_requested(observation.spec, observation.status):
        abort = Firing(MANUAL, ABORT_REQUESTED, MANUAL, 0.0, 0.0)
        actions = [RollbackAction.ABORT, RollbackAction.DROP_PARTIAL_COLLECTION]
        start_rollback(step, abort, actions, step.phase.value)
    elif observation.problem is not None:
        step.blocked(observation.problem)
    elif record is not None and not record.completed:
        continue_rollback(step)
    elif step.phase in TERMINAL:
        finished(step)
    else:
        settle_pauses(step)
        PHASES[step.phase](step)
    return step.decision()

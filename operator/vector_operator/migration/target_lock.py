"""One plan at a time per VectorCollection. Two plans filling one target at once would pick the
same next physical collection, or swing the alias under each other. A plan may prepare (or run a
retry) only when no other plan for its target is active and no earlier plan is ready to go first;
everyone decides from the same facts (phase, creation order), so no lock object is needed."""

from __future__ import annotations

from vector_operator.api.migrationplan import MigrationPhase
from vector_operator.migration.observation import PlanObservation, Problem, SiblingPlan

ACTIVE = frozenset(
    {
        MigrationPhase.PREPARING,
        MigrationPhase.GENERATING,
        MigrationPhase.PAUSED,
        MigrationPhase.VALIDATING,
        MigrationPhase.CUTTING_OVER,
    }
)
WAITING = frozenset({MigrationPhase.PENDING, MigrationPhase.PLANNING})


def _goes_first(sibling: SiblingPlan, observation: PlanObservation) -> bool:
    if sibling.phase in ACTIVE or sibling.retrying:
        return True
    waiting = sibling.phase is None or sibling.phase in WAITING
    return (
        waiting
        and sibling.ready
        and (sibling.created, sibling.name)
        < (
            observation.plan.created,
            observation.plan.name,
        )
    )


def busy(observation: PlanObservation) -> Problem | None:
    """Why the plan must wait for another one, or None."""
    first = [s for s in observation.siblings if _goes_first(s, observation)]
    if not first:
        return None
    other = min(first, key=lambda s: (s.created, s.name))
    return Problem(
        "TargetBusy",
        f"MigrationPlan {other.name} ({other.phase or 'Pending'}) fills VectorCollection"
        f" {observation.spec.target_ref.name} first: one plan at a time per collection; this plan"
        " starts when that one has finished",
        warning=False,
    )

"""The Tuned condition of a VectorCollection with spec.tuning, from its latest study."""

from __future__ import annotations

from vector_operator.api.collection_tuning import TuningState, TuningStatus
from vector_operator.status_conditions import ConditionUpdate


def tuned_condition(status: TuningStatus | None, trials: int) -> ConditionUpdate:
    if status is None:
        return ConditionUpdate.of(
            "Tuned", False, "TuningPending", "no study has run yet: it starts once the collection serves"
        )
    if status.state is TuningState.RUNNING:
        return ConditionUpdate.of(
            "Tuned",
            False,
            "TuningRunning",
            status.message or f"trial {status.trials_done}/{trials} of the study",
        )
    if status.state is TuningState.FAILED:
        return ConditionUpdate.of("Tuned", False, "TuningFailed", status.message or "the study failed")
    decision = status.decision.value if status.decision is not None else "KeptCurrent"
    return ConditionUpdate.of("Tuned", True, decision, status.message or decision)

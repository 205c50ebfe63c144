"""The Tuned condition of a VectorCollection with spec.tuning, from its latest study."""

from __future__ import annotations

from vector_operator.api.collection_reindex import ReindexState, ReindexStatus
from vector_operator.api.collection_tuning import TuningDecision, TuningState, TuningStatus
from vector_operator.status_conditions import ConditionUpdate

AFTER_REINDEX = {
    ReindexState.SUCCEEDED: "Reindexed",
    ReindexState.FAILED: "ReindexFailed",
    ReindexState.ROLLED_BACK: "ReindexRolledBack",
}


def tuned_condition(
    status: TuningStatus | None, trials: int, reindex: ReindexStatus | None = None
) -> ConditionUpdate:
    """From the latest study; for a study that re-indexes, how that re-index went."""
    if status is None:
        return ConditionUpdate.of(
            "Tuned",
            False,
            "TuningPending",
            "no study has run yet: it starts once the collection serves and holds enough vectors",
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
    started = reindex.started_at if reindex is not None else None
    applied_by_it = started is not None and status.finished_at is not None and started >= status.finished_at
    if status.decision is TuningDecision.REINDEXING and reindex is not None and applied_by_it:
        decision = AFTER_REINDEX.get(reindex.state, decision)
    return ConditionUpdate.of("Tuned", True, decision, status.message or decision)

"""What a finished study leads to: keep the current parameters, recommend the best, serve with its
search parameters, or re-index with its build parameters."""

from __future__ import annotations

from dataclasses import dataclass

from vector_operator.api.collection_tuning import (
    TunedParameters,
    TuningApply,
    TuningDecision,
    TuningSpec,
    TuningTrial,
)
from vector_operator.tuning.scoring import improves
from vector_operator.tuning.search_space import Candidate


@dataclass(frozen=True)
class Outcome:
    decision: TuningDecision
    applied: TunedParameters | None
    message: str
    event: str  # the Event's reason


def candidate_of(trial: TuningTrial | TunedParameters) -> Candidate:
    return Candidate(trial.index_type, dict(trial.params), dict(trial.search_params))


def _figures(parameters: TunedParameters) -> str:
    return f"recall@k {parameters.recall_at_k}, p95 {parameters.search_latency_p95_ms} ms"


def conclude(spec: TuningSpec, current: TunedParameters, best: TunedParameters | None, k: int) -> Outcome:
    """``best`` and ``current`` as measured side by side at the end (``best`` None: no trial
    stayed within the latency budget, or the current parameters were the best)."""
    if best is None:
        return Outcome(
            TuningDecision.KEPT_CURRENT,
            None,
            f"kept the current parameters ({_figures(current)}): no trial did better within"
            f" p95 {spec.objective.max_search_p95_ms} ms",
            "TuningKeptCurrent",
        )
    why_not = improves(best, current, spec.objective.max_search_p95_ms, spec.latency_tolerance)
    if why_not is not None:
        return Outcome(
            TuningDecision.KEPT_CURRENT,
            None,
            f"kept the current parameters ({_figures(current)}): the best trial,"
            f" {candidate_of(best).describe()}, measured side by side: {why_not}",
            "TuningKeptCurrent",
        )
    summary = (
        f"{candidate_of(best).describe()}: recall@{k} {best.recall_at_k} (current {current.recall_at_k}),"
        f" p95 {best.search_latency_p95_ms} ms (current {current.search_latency_p95_ms} ms),"
        " measured side by side"
    )
    if spec.apply is TuningApply.RECOMMEND:
        return Outcome(TuningDecision.RECOMMENDED, None, f"recommends {summary}", "TuningRecommendation")
    same_index = (best.index_type, best.params) == (current.index_type, current.params)
    if spec.apply is TuningApply.SEARCH_PARAMS or same_index:
        applied = best.model_copy(update={"index_type": current.index_type, "params": dict(current.params)})
        return Outcome(
            TuningDecision.APPLIED_SEARCH_PARAMS,
            applied,
            f"serves with the search parameters of {summary}",
            "TuningApplied",
        )
    return Outcome(TuningDecision.REINDEXING, best, f"re-indexes to {summary}", "TuningApplied")

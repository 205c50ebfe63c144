"""How good a set of parameters is: recall@k against exact search, latency, feasibility within the
budget, the best trial, the Pareto front, and whether a result beats the current parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vector_operator.api.collection_tuning import TunedParameters, TuningTrial

RECALL_TIE = 0.001
"""Recalls this close count as equal; the lower latency wins then."""
LATENCY_SLACK_MS = 0.5
"""Added to the relative tolerance when latencies are compared side by side."""

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Measurement:
    recall_at_k: float | None
    p50_ms: float | None
    p95_ms: float | None
    failure: str | None = None


def exact_neighbours(sample: Vectors, queries: Vectors, metric: str, k: int) -> npt.NDArray[np.int64]:
    """For each query, the row numbers of its k nearest sample vectors under ``metric``."""
    if metric == "L2":
        scores = -(
            (queries**2).sum(axis=1, keepdims=True)
            - 2 * queries @ sample.T
            + (sample**2).sum(axis=1)[None, :]
        )
    elif metric == "COSINE":
        unit = sample / np.maximum(np.linalg.norm(sample, axis=1, keepdims=True), 1e-12)
        scores = queries @ unit.T
    else:  # IP
        scores = queries @ sample.T
    k = min(k, sample.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return top.astype(np.int64)


def recall(found: Sequence[Sequence[int]], exact: npt.NDArray[np.int64]) -> float:
    """Mean share of each query's exact neighbours among the ones the index returned."""
    shares = [
        len(set(hits) & set(truth.tolist())) / len(truth) for hits, truth in zip(found, exact, strict=True)
    ]
    return float(np.mean(shares)) if shares else 0.0


def feasible(measured: TunedParameters, budget_ms: float) -> bool:
    return measured.search_latency_p95_ms is not None and measured.search_latency_p95_ms <= budget_ms


def _rank(trial: TunedParameters) -> tuple[float, float, float]:
    recall_value = trial.recall_at_k or 0.0
    search_cost = sum(trial.search_params.values())  # nprobe or ef: what each query pays for
    return (round(recall_value / RECALL_TIE), -search_cost, -(trial.search_latency_p95_ms or float("inf")))


def best_trial(trials: Sequence[TuningTrial], budget_ms: float) -> TuningTrial | None:
    """The highest recall within the latency budget; among equal recalls (within RECALL_TIE) the
    smallest search parameter (nprobe, ef: latency grows with it, where single measurements are
    noise), then the lower p95."""
    candidates = [
        t for t in trials if t.failure is None and t.recall_at_k is not None and feasible(t, budget_ms)
    ]
    return max(candidates, key=_rank) if candidates else None


def pareto_front(trials: Sequence[TuningTrial]) -> list[int]:
    """The numbers of the trials no other trial beats on both recall and p95."""
    measured = [
        t for t in trials if t.failure is None and t.recall_at_k is not None and t.search_latency_p95_ms
    ]
    front = []
    for trial in measured:
        assert trial.recall_at_k is not None
        assert trial.search_latency_p95_ms is not None
        dominated = any(
            other.recall_at_k is not None
            and other.search_latency_p95_ms is not None
            and other.recall_at_k >= trial.recall_at_k
            and other.search_latency_p95_ms <= trial.search_latency_p95_ms
            and (
                other.recall_at_k > trial.recall_at_k
                or other.search_latency_p95_ms < trial.search_latency_p95_ms
            )
            for other in measured
        )
        if not dominated:
            front.append(trial.number)
    return sorted(front)


def no_worse_latency(candidate_ms: float, current_ms: float, tolerance: float) -> bool:
    return candidate_ms <= current_ms * (1 + tolerance) + LATENCY_SLACK_MS


def improves(
    best: TunedParameters, current: TunedParameters, budget_ms: float, tolerance: float
) -> str | None:
    """Why ``best`` (measured side by side with ``current``) does not improve on it, or None
    when it does: a higher recall at a latency no worse, or the same recall faster."""
    if best.recall_at_k is None or best.search_latency_p95_ms is None:
        return "the best trial could not be measured again"
    if current.recall_at_k is None or current.search_latency_p95_ms is None:
        return None if feasible(best, budget_ms) else "the best trial is over the latency budget"
    if not feasible(best, budget_ms):
        return (
            f"measured again, its p95 {best.search_latency_p95_ms:.2f} ms is over the {budget_ms} ms budget"
        )
    if best.recall_at_k + RECALL_TIE < current.recall_at_k:
        return f"its recall@k {best.recall_at_k:.3f} is below the current {current.recall_at_k:.3f}"
    if not no_worse_latency(best.search_latency_p95_ms, current.search_latency_p95_ms, tolerance):
        return (
            f"its p95 {best.search_latency_p95_ms:.2f} ms is worse than the current"
            f" {current.search_latency_p95_ms:.2f} ms"
        )
    faster = best.search_latency_p95_ms < current.search_latency_p95_ms
    if best.recall_at_k <= current.recall_at_k + RECALL_TIE and not faster:
        return "it is no better than the current parameters"
    return None
